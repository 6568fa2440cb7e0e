#!/usr/bin/env bash
# Runs a single-node Apache Kafka (KRaft) broker on loopback for the
# integration tests, from Kafka's own jars fetched from Maven Central.
#
#   scripts/kafka.sh fetch               resolve the jars into .kafka/jars-VERSION (cached)
#   scripts/kafka.sh start [DIR]         start a broker on free ports; prints KAFKA_BROKERS=...
#   scripts/kafka.sh stop [DIR]          stop it (SIGTERM, then SIGKILL after 30 s)
#   scripts/kafka.sh restart [DIR]       stop it (as stop) and start it again on the same
#                                        ports and data (the chaos program's broker restart);
#                                        after halt or kill, only the start
#   scripts/kafka.sh halt [DIR]          stop it as stop does (SIGTERM: a clean shutdown) but
#                                        keep its data and ports for restart: a broker outage
#   scripts/kafka.sh kill [DIR]          the same with SIGKILL (a crash), waiting until it is gone
#   scripts/kafka.sh run [DIR] -- CMD... start, run CMD with KAFKA_BROKERS set, always stop
#   scripts/kafka.sh start-secure [DIR]  start a secured broker (below); prints its env;
#                                        stop it with stop DIR (restart does not
#                                        apply to it)
#   scripts/kafka.sh run-secure [DIR] -- CMD...
#                                        start a secured broker, run CMD with the
#                                        KAFKA_SECURE_* variables set, always stop
#   scripts/kafka.sh compat ARGS...      run compat/java/ReadWithKafkaStreams with ARGS: the
#                                        kafka-streams jars are fetched into
#                                        .kafka/streams-jars-VERSION and the program compiled
#                                        into .kafka/compat-classes (both cached)
#   scripts/kafka.sh java CLASS ARGS...  run the compat/java program CLASS (compiled as for
#                                        compat) with ARGS
#   scripts/kafka.sh describe OUTDIR     run compat/java/DescribeTopologies (compiled as for
#                                        compat): writes Kafka Streams' describe() of each of
#                                        its pipelines to OUTDIR/<name>.txt
#
# The secured broker (start-secure, run-secure; DIR defaults to .kafka/secure)
# authenticates and authorizes every client. Its certificates are made with
# openssl on each start (installed with apt-get when missing): a self-signed
# CA and a broker certificate for localhost and 127.0.0.1, in a PKCS12
# keystore. Its listeners:
#   SASL_SSL   KAFKA_SECURE_BROKERS: TLS plus SASL PLAIN, SCRAM-SHA-256 and
#              SCRAM-SHA-512 (also the inter-broker listener)
#   SSL        KAFKA_SECURE_TLS_BROKERS: TLS only; a client is User:ANONYMOUS
#   CONTROLLER SASL_PLAINTEXT with PLAIN, for the KRaft controller only
# ACLs are enforced by KRaft's StandardAuthorizer with
# allow.everyone.if.no.acl.found=false: a principal may do only what an ACL
# allows. User:admin (KAFKA_SECURE_ADMIN_USER/_PASSWORD, PLAIN) is the super
# user, which creates topics, users and ACLs for the tests. The user alice
# (KAFKA_SECURE_USER/_PASSWORD) exists for PLAIN and both SCRAM mechanisms
# (SCRAM credentials made at format time) and has no ACL. KAFKA_SECURE_CA is
# the CA certificate (PEM). Passwords are random per start.
#
# DIR defaults to .kafka/run and is wiped on start. Readiness is probed with a
# real request (Kafka's own topic tool, each attempt bounded) under a 60 s
# deadline, never by reading the log. DIR/broker.log is the broker's log,
# DIR/tools.log that of the format and probe tools.
set -euo pipefail

KAFKA_VERSION=4.3.1
ROOT=$(cd "$(dirname "$0")/.." && pwd)
HOME_DIR="$ROOT/.kafka"
JARS="$HOME_DIR/jars-$KAFKA_VERSION"
START_TIMEOUT=60

die() { echo "kafka.sh: $*" >&2; exit 1; }

# The broker (kafka_2.13) plus the class used to probe readiness,
# org.apache.kafka.tools.TopicCommand, which lives in kafka-tools; kafka-tools'
# own dependencies (Connect runtime, Jetty, Jersey: 47 jars) are not needed by
# the topic and console tools, so they are excluded. kafka_2.13 brings
# log4j-core but no SLF4J binding (slf4j-api 1.7.x), hence log4j-slf4j-impl:
# without it the broker logs nothing.
pom() {
	cat <<POM
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>sluice</groupId><artifactId>kafka-broker</artifactId><version>1</version>
  <dependencies>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId><version>$KAFKA_VERSION</version></dependency>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka-tools</artifactId><version>$KAFKA_VERSION</version>
      <exclusions><exclusion><groupId>*</groupId><artifactId>*</artifactId></exclusion></exclusions></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-slf4j-impl</artifactId><version>2.25.4</version></dependency>
  </dependencies>
</project>
POM
}

# fetch_jars POM_FUNCTION DIR: resolve the dependencies of the pom printed by
# POM_FUNCTION into DIR, unless DIR holds them already (DIR/.complete holds
# the pom's hash).
fetch_jars() {
	local pomf=$1 dir=$2 want
	want=$($pomf | sha256sum | cut -d' ' -f1)
	[ "$(cat "$dir/.complete" 2>/dev/null)" = "$want" ] && return 0
	command -v mvn >/dev/null || die "maven (mvn) is needed to fetch Kafka's jars"
	command -v java >/dev/null || die "java is needed to run Kafka"
	mkdir -p "$HOME_DIR"
	# Two concurrent starts on a clean machine must not fetch into one directory.
	exec 9>"$HOME_DIR/.fetch.lock"
	flock 9
	if [ "$(cat "$dir/.complete" 2>/dev/null)" != "$want" ]; then
		local name
		name=$(basename "$dir")
		$pomf >"$HOME_DIR/$name.pom.xml"
		rm -rf "$dir" "$dir.tmp"
		echo "kafka.sh: fetching $name from Maven Central..." >&2
		# Debian's mvn 3.8 prints ANSI resets even with -B -q: keep its output in a log.
		if ! mvn -q -B -f "$HOME_DIR/$name.pom.xml" dependency:copy-dependencies -DincludeScope=runtime \
			-DoutputDirectory="$dir.tmp" >"$HOME_DIR/mvn.log" 2>&1; then
			tail -n 40 "$HOME_DIR/mvn.log" >&2
			die "mvn could not resolve $name (log: $HOME_DIR/mvn.log)"
		fi
		echo "$want" >"$dir.tmp/.complete"
		mv "$dir.tmp" "$dir"
	fi
	exec 9>&-
}

fetch() {
	fetch_jars pom "$JARS"
	ls "$JARS"/kafka_2.13-*.jar "$JARS"/kafka-tools-[0-9]*.jar >/dev/null 2>&1 || die "Kafka jars missing after fetching"
}

# The Kafka Streams library, for compat/java. RocksDB's JNI jar (the larger
# part of the download) is left out: the program opens no state store.
STREAMS_JARS="$HOME_DIR/streams-jars-$KAFKA_VERSION"
streams_pom() {
	cat <<POM
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>sluice</groupId><artifactId>kafka-streams-compat</artifactId><version>1</version>
  <dependencies>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka-streams</artifactId><version>$KAFKA_VERSION</version>
      <exclusions><exclusion><groupId>org.rocksdb</groupId><artifactId>rocksdbjni</artifactId></exclusion></exclusions></dependency>
  </dependencies>
</project>
POM
}

# compile_compat: compile compat/java (again when its sources change) into
# .kafka/compat-classes against the kafka-streams jars.
COMPAT_CLASSES="$HOME_DIR/compat-classes"
compile_compat() {
	command -v javac >/dev/null || die "javac (a JDK) is needed to compile compat/java"
	fetch_jars streams_pom "$STREAMS_JARS"
	ls "$STREAMS_JARS"/kafka-streams-"$KAFKA_VERSION".jar >/dev/null 2>&1 || die "kafka-streams jar missing after fetching"
	local src="$ROOT/compat/java" want
	want=$(cat "$src"/*.java | sha256sum | cut -d' ' -f1)
	if [ "$(cat "$COMPAT_CLASSES/.complete" 2>/dev/null)" != "$want" ]; then
		rm -rf "$COMPAT_CLASSES"
		mkdir -p "$COMPAT_CLASSES"
		javac -Xlint:unchecked -d "$COMPAT_CLASSES" -cp "$STREAMS_JARS/*" "$src"/*.java || die "compiling $src failed"
		echo "$want" >"$COMPAT_CLASSES/.complete"
	fi
}

# compat ARGS...: run ReadWithKafkaStreams with ARGS.
compat() {
	compile_compat
	exec java -cp "$COMPAT_CLASSES:$STREAMS_JARS/*" ReadWithKafkaStreams "$@"
}

# java CLASS ARGS...: run the compat/java program CLASS with ARGS.
java_class() {
	[ $# -ge 1 ] || die "usage: $0 java CLASS ARGS..."
	compile_compat
	exec java -cp "$COMPAT_CLASSES:$STREAMS_JARS/*" "$@"
}

# describe OUTDIR: run DescribeTopologies, writing OUTDIR/<pipeline>.txt.
describe() {
	[ $# -eq 1 ] || die "usage: $0 describe OUTDIR"
	compile_compat
	exec java -cp "$COMPAT_CLASSES:$STREAMS_JARS/*" DescribeTopologies "$1"
}

free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# A cluster id as Kafka makes them: 16 random bytes, base64url without padding,
# not starting with '-' (which would read as an option).
cluster_id() {
	python3 -c 'import uuid,base64
while True:
    s=base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
    if not s.startswith("-"): print(s); break'
}

rundir() {
	local dir
	dir=$(realpath -m "${1:-$HOME_DIR/run}")
	case "$dir" in / | "$ROOT" | "$HOME_DIR" | "$HOME") die "refusing to use $dir as a run directory" ;; esac
	echo "$dir"
}

# kill_wait PID: SIGTERM, wait up to 30 s, then SIGKILL.
kill_wait() {
	local pid=$1
	kill -0 "$pid" 2>/dev/null || return 0
	kill -TERM "$pid" 2>/dev/null || true
	local deadline=$((SECONDS + 30))
	while kill -0 "$pid" 2>/dev/null; do
		if [ $SECONDS -ge $deadline ]; then
			kill -KILL "$pid" 2>/dev/null || true
			sleep 0.2
			break
		fi
		sleep 0.2
	done
}

# broker_props DIR prints the settings every broker of this script shares
# (plain and secured): one node, its logs in DIR, the internal topics
# sized for one broker, no auto-created topics, no rebalance delay, and a
# deleted topic's files removed after a second rather than a minute (the
# benchmarks delete each run's topics, whose gigabytes would otherwise be
# written back to disk during the next runs).
broker_props() {
	local dir=$1
	cat <<PROPS
log.dirs=$dir/logs
num.partitions=1
auto.create.topics.enable=false
offsets.topic.replication.factor=1
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=4
group.initial.rebalance.delay.ms=0
log.segment.delete.delay.ms=1000
PROPS
}

# log_configs DIR: the log4j configurations of the broker (DIR/broker.log)
# and of the tools (DIR/tools.log), and the probe's client settings.
log_configs() {
	local dir=$1
	local name file level
	for name in broker tools; do
		file=$dir/$name.log level=info
		[ $name = tools ] && level=warn
		cat >"$dir/$name-log4j2.properties" <<LOG
status = error
appender.file.type = File
appender.file.name = file
appender.file.fileName = $file
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = $level
rootLogger.appenderRef.file.ref = file
LOG
	done
	# Each probe gives up after a few seconds (the admin client's default is 60 s),
	# so the deadline holds and a broker that died is noticed at once.
	printf 'default.api.timeout.ms=5000\nrequest.timeout.ms=3000\n' >>"$dir/probe.properties"
}

start() {
	local dir
	dir=$(rundir "${1:-}")
	fetch
	# A pid file without env is a start that was interrupted: stop that broker too.
	if [ -f "$dir/pid" ]; then stop "$dir"; fi
	rm -rf "$dir"
	mkdir -p "$dir/logs"
	local port cport
	port=$(free_port)
	cport=$(free_port)
	while [ "$cport" = "$port" ]; do cport=$(free_port); done
	cat >"$dir/server.properties" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers=127.0.0.1:$cport
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport
advertised.listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
PROPS
	broker_props "$dir" >>"$dir/server.properties"
	log_configs "$dir"
	local cp="$JARS/*" tools=(-Dlog4j2.configurationFile="$dir/tools-log4j2.properties")
	java -cp "$cp" "${tools[@]}" kafka.tools.StorageTool format --standalone -t "$(cluster_id)" \
		-c "$dir/server.properties" >"$dir/format.log" 2>&1 \
		|| { cat "$dir/format.log" >&2; die "formatting the storage failed"; }
	launch "$dir" "$port"
}

# launch DIR PORT [VAR]: start the broker configured in DIR (formatted
# already) and wait until it answers on PORT (with DIR/probe.properties);
# writes DIR/pid and DIR/env, whose first line is VAR=127.0.0.1:PORT (VAR
# defaults to KAFKA_BROKERS).
launch() {
	local dir=$1 port=$2 var=${3:-KAFKA_BROKERS}
	local cp="$JARS/*" tools=(-Dlog4j2.configurationFile="$dir/tools-log4j2.properties")
	nohup java -Xmx1g -cp "$cp" -Dlog4j2.configurationFile="$dir/broker-log4j2.properties" \
		kafka.Kafka "$dir/server.properties" >"$dir/stdout.log" 2>&1 &
	local pid=$!
	echo "$pid" >"$dir/pid"
	local deadline=$((SECONDS + START_TIMEOUT)) why=
	until java -cp "$cp" "${tools[@]}" org.apache.kafka.tools.TopicCommand \
		--bootstrap-server "127.0.0.1:$port" --command-config "$dir/probe.properties" --list >/dev/null 2>>"$dir/tools.log"; do
		if ! kill -0 "$pid" 2>/dev/null; then
			why="the broker exited during start-up"
		elif [ $SECONDS -ge $deadline ]; then
			why="the broker did not answer within $START_TIMEOUT s"
		fi
		if [ -n "$why" ]; then
			kill_wait "$pid"
			rm -f "$dir/pid"
			tail -n 40 "$dir/broker.log" "$dir/stdout.log" >&2 || true
			die "$why (logs in $dir)"
		fi
		sleep 0.5
	done
	printf '%s=127.0.0.1:%s\nKAFKA_PID=%s\n' "$var" "$port" "$pid" >"$dir/env"
	echo "$var=127.0.0.1:$port"
}

# need_openssl: install openssl when it is missing (Debian: apt-get).
need_openssl() {
	command -v openssl >/dev/null && return 0
	command -v apt-get >/dev/null || die "openssl is needed to make the secured broker's certificates"
	echo "kafka.sh: installing openssl..." >&2
	local sudo=
	[ "$(id -u)" = 0 ] || sudo=sudo
	{ $sudo apt-get update -qq && $sudo apt-get install -y -qq openssl; } >"$HOME_DIR/apt.log" 2>&1 \
		|| { tail -n 20 "$HOME_DIR/apt.log" >&2; die "could not install openssl (log: $HOME_DIR/apt.log)"; }
}

# certificates DIR PASSWORD: a self-signed CA (DIR/ca.crt) and a broker
# certificate it signed, for localhost and 127.0.0.1, with its key in the
# PKCS12 keystore DIR/broker.p12 (Java 17 reads PKCS12).
certificates() {
	local dir=$1 pass=$2
	mkdir -p "$dir"
	(
		cd "$dir"
		openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=sluice-test-ca" \
			-keyout ca.key -out ca.crt
		openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" -keyout broker.key -out broker.csr
		printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n' >broker.ext
		openssl x509 -req -in broker.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 \
			-extfile broker.ext -out broker.crt
		openssl pkcs12 -export -in broker.crt -inkey broker.key -certfile ca.crt -name broker \
			-passout "pass:$pass" -out broker.p12
		rm -f ca.key broker.csr broker.ext
	) >"$dir/openssl.log" 2>&1 || { cat "$dir/openssl.log" >&2; die "making the certificates failed"; }
}

# start_secure [DIR]: start the secured broker described at the top; writes
# DIR/env (the KAFKA_SECURE_* variables) and prints it.
start_secure() {
	local dir
	dir=$(rundir "${1:-$HOME_DIR/secure}")
	fetch
	need_openssl
	if [ -f "$dir/pid" ]; then stop "$dir"; fi
	rm -rf "$dir"
	mkdir -p "$dir/logs"
	chmod 700 "$dir"
	local sport tport cport
	sport=$(free_port)
	tport=$(free_port)
	cport=$(free_port)
	while [ "$tport" = "$sport" ]; do tport=$(free_port); done
	while [ "$cport" = "$sport" ] || [ "$cport" = "$tport" ]; do cport=$(free_port); done
	local storepw adminpw alicepw
	storepw=$(openssl rand -hex 16)
	adminpw=$(openssl rand -hex 16)
	alicepw=$(openssl rand -hex 16)
	certificates "$dir/tls" "$storepw"
	local plain=org.apache.kafka.common.security.plain.PlainLoginModule
	local scram=org.apache.kafka.common.security.scram.ScramLoginModule
	cat >"$dir/server.properties" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers=127.0.0.1:$cport
listeners=SASL_SSL://127.0.0.1:$sport,SSL://127.0.0.1:$tport,CONTROLLER://127.0.0.1:$cport
advertised.listeners=SASL_SSL://127.0.0.1:$sport,SSL://127.0.0.1:$tport,CONTROLLER://127.0.0.1:$cport
controller.listener.names=CONTROLLER
inter.broker.listener.name=SASL_SSL
listener.security.protocol.map=SASL_SSL:SASL_SSL,SSL:SSL,CONTROLLER:SASL_PLAINTEXT
sasl.mechanism.inter.broker.protocol=PLAIN
sasl.mechanism.controller.protocol=PLAIN
listener.name.controller.sasl.enabled.mechanisms=PLAIN
listener.name.controller.plain.sasl.jaas.config=$plain required username="admin" password="$adminpw" user_admin="$adminpw";
listener.name.sasl_ssl.sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-256,SCRAM-SHA-512
listener.name.sasl_ssl.plain.sasl.jaas.config=$plain required username="admin" password="$adminpw" user_admin="$adminpw" user_alice="$alicepw";
listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config=$scram required;
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=$scram required;
ssl.keystore.type=PKCS12
ssl.keystore.location=$dir/tls/broker.p12
ssl.keystore.password=$storepw
ssl.key.password=$storepw
ssl.truststore.type=PEM
ssl.truststore.location=$dir/tls/ca.crt
ssl.client.auth=none
authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
super.users=User:admin
allow.everyone.if.no.acl.found=false
PROPS
	broker_props "$dir" >>"$dir/server.properties"
	# The probe talks to the SASL_SSL listener as admin: a broker that
	# answers it has TLS, SASL and the authorizer working.
	cat >"$dir/probe.properties" <<PROBE
security.protocol=SASL_SSL
sasl.mechanism=PLAIN
sasl.jaas.config=$plain required username="admin" password="$adminpw";
ssl.truststore.type=PEM
ssl.truststore.location=$dir/tls/ca.crt
PROBE
	log_configs "$dir"
	local cp="$JARS/*" tools=(-Dlog4j2.configurationFile="$dir/tools-log4j2.properties")
	java -cp "$cp" "${tools[@]}" kafka.tools.StorageTool format --standalone -t "$(cluster_id)" \
		-c "$dir/server.properties" \
		--add-scram "SCRAM-SHA-256=[name=alice,password=$alicepw]" \
		--add-scram "SCRAM-SHA-512=[name=alice,password=$alicepw]" >"$dir/format.log" 2>&1 \
		|| { cat "$dir/format.log" >&2; die "formatting the storage failed"; }
	launch "$dir" "$sport" KAFKA_SECURE_BROKERS >/dev/null
	cat >>"$dir/env" <<ENV
KAFKA_SECURE_TLS_BROKERS=127.0.0.1:$tport
KAFKA_SECURE_CA=$dir/tls/ca.crt
KAFKA_SECURE_ADMIN_USER=admin
KAFKA_SECURE_ADMIN_PASSWORD=$adminpw
KAFKA_SECURE_USER=alice
KAFKA_SECURE_PASSWORD=$alicepw
ENV
	cat "$dir/env"
}

# run_secure [DIR] -- CMD...: as run, with the secured broker.
run_secure() {
	RUN_DIR=
	if [ $# -gt 0 ] && [ "$1" != "--" ]; then RUN_DIR=$1; shift; fi
	RUN_DIR=$(rundir "${RUN_DIR:-$HOME_DIR/secure}")
	[ "${1:-}" = "--" ] && shift
	[ $# -gt 0 ] || die "run-secure: no command"
	trap 'stop "$RUN_DIR"' EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
	start_secure "$RUN_DIR" >/dev/null
	local line
	while IFS= read -r line; do export "${line?}"; done <"$RUN_DIR/env"
	echo "kafka.sh: Apache Kafka $KAFKA_VERSION (SASL_SSL, ACLs enforced) at $KAFKA_SECURE_BROKERS" >&2
	run_child "$@"
}

# restart [DIR]: stop the broker started in DIR (SIGTERM: a clean shutdown)
# and start it again on the same ports with the same data, as an operator's
# rolling restart does; the chaos program's broker restart.
restart() {
	local dir port
	dir=$(rundir "${1:-}")
	[ -f "$dir/env" ] || die "restart: no broker started in $dir"
	port=$(sed -n 's/^KAFKA_BROKERS=.*:\([0-9]*\)$/\1/p' "$dir/env")
	[ -n "$port" ] || die "restart: no port in $dir/env"
	fetch
	[ -f "$dir/pid" ] && kill_wait "$(cat "$dir/pid")"
	launch "$dir" "$port"
}

# halt [DIR] / kill [DIR]: stop the broker started in DIR, with SIGTERM as
# stop (halt) or SIGKILL (kill), keeping DIR/env, its data and ports, so
# that restart brings it back: a broker outage for tests.
halt() {
	local dir
	dir=$(rundir "${1:-}")
	[ -f "$dir/env" ] || die "halt: no broker started in $dir"
	[ -f "$dir/pid" ] || return 0
	kill_wait "$(cat "$dir/pid")"
	rm -f "$dir/pid"
}

kill9() {
	local dir pid
	dir=$(rundir "${1:-}")
	[ -f "$dir/env" ] || die "kill: no broker started in $dir"
	[ -f "$dir/pid" ] || return 0
	pid=$(cat "$dir/pid")
	kill -KILL "$pid" 2>/dev/null || true
	while kill -0 "$pid" 2>/dev/null; do sleep 0.05; done
	rm -f "$dir/pid"
}

stop() {
	local dir
	dir=$(rundir "${1:-}")
	[ -f "$dir/pid" ] || return 0
	kill_wait "$(cat "$dir/pid")"
	rm -f "$dir/pid" "$dir/env"
}

run() {
	RUN_DIR=
	if [ $# -gt 0 ] && [ "$1" != "--" ]; then RUN_DIR=$1; shift; fi
	RUN_DIR=$(rundir "$RUN_DIR")
	[ "${1:-}" = "--" ] && shift
	[ $# -gt 0 ] || die "run: no command"
	trap 'stop "$RUN_DIR"' EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
	local line
	line=$(start "$RUN_DIR" | tail -n 1)
	export "${line?}"
	echo "kafka.sh: Apache Kafka $KAFKA_VERSION at $KAFKA_BROKERS" >&2
	run_child "$@"
}

# run_child CMD...: run CMD and return its exit status.
run_child() {
	# CMD runs as a job in its own process group, and this shell waits for it,
	# so a SIGTERM (CI timeouts) or SIGINT reaching this script is handled at once
	# and passed on to CMD and all its children before the broker is stopped.
	set -m
	"$@" &
	CHILD=$!
	set +m
	trap 'kill -TERM -- -$CHILD 2>/dev/null || true' TERM
	trap 'kill -INT -- -$CHILD 2>/dev/null || true' INT
	local rc=0
	wait "$CHILD" || rc=$?
	while kill -0 "$CHILD" 2>/dev/null; do rc=0; wait "$CHILD" || rc=$?; done
	return $rc
}

cmd=${1:-}
[ $# -gt 0 ] && shift
case "$cmd" in
fetch) fetch ;;
start) start "$@" ;;
stop) stop "$@" ;;
restart) restart "$@" ;;
halt) halt "$@" ;;
kill) kill9 "$@" ;;
run) run "$@" ;;
start-secure) start_secure "$@" ;;
run-secure) run_secure "$@" ;;
compat) compat "$@" ;;
java) java_class "$@" ;;
describe) describe "$@" ;;
*) die "usage: $0 fetch | start [DIR] | stop [DIR] | restart [DIR] | halt [DIR] | kill [DIR] | run [DIR] -- CMD... | start-secure [DIR] | run-secure [DIR] -- CMD... | compat ARGS... | java CLASS ARGS... | describe OUTDIR" ;;
esac
