#!/usr/bin/env bash
# Runs a single-node Apache Kafka (KRaft) broker on loopback for the
# integration tests, from Kafka's own jars fetched from Maven Central.
#
#   scripts/kafka.sh fetch               resolve the jars into .kafka/jars (cached)
#   scripts/kafka.sh start [DIR]         start a broker on free ports; prints KAFKA_BROKERS=...
#   scripts/kafka.sh stop [DIR]          stop it (SIGTERM, then SIGKILL after 30 s)
#   scripts/kafka.sh run [DIR] -- CMD... start, run CMD with KAFKA_BROKERS set, always stop
#
# DIR defaults to .kafka/run. Readiness is probed with a real request
# (Kafka's own topic tool) under a deadline, never by reading the log; the
# broker log is in DIR/broker.log for diagnosis.
set -euo pipefail

KAFKA_VERSION=4.3.1
ROOT=$(cd "$(dirname "$0")/.." && pwd)
HOME_DIR="$ROOT/.kafka"
JARS="$HOME_DIR/jars-$KAFKA_VERSION"

die() { echo "kafka.sh: $*" >&2; exit 1; }

fetch() {
	[ -f "$JARS/.complete" ] && return 0
	command -v mvn >/dev/null || die "maven (mvn) is needed to fetch Kafka's jars"
	command -v java >/dev/null || die "java is needed to run Kafka"
	mkdir -p "$HOME_DIR"
	cat >"$HOME_DIR/pom.xml" <<POM
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>sluice</groupId><artifactId>kafka-broker</artifactId><version>1</version>
  <dependencies>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId><version>$KAFKA_VERSION</version></dependency>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka-tools</artifactId><version>$KAFKA_VERSION</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-slf4j-impl</artifactId><version>2.25.4</version></dependency>
  </dependencies>
</project>
POM
	rm -rf "$JARS"
	echo "kafka.sh: fetching Apache Kafka $KAFKA_VERSION jars from Maven Central..." >&2
	mvn -q -B -f "$HOME_DIR/pom.xml" dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$JARS" >&2 \
		|| die "mvn could not resolve Kafka $KAFKA_VERSION"
	ls "$JARS"/kafka_2.13-*.jar >/dev/null 2>&1 || die "no kafka_2.13 jar after fetching"
	touch "$JARS/.complete"
}

free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

start() {
	local dir=${1:-$HOME_DIR/run}
	fetch
	if [ -f "$dir/env" ]; then stop "$dir"; fi
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
log.dirs=$dir/logs
num.partitions=1
auto.create.topics.enable=false
offsets.topic.replication.factor=1
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=4
group.initial.rebalance.delay.ms=0
PROPS
	cat >"$dir/log4j2.properties" <<LOG
status = error
appender.file.type = File
appender.file.name = file
appender.file.fileName = $dir/broker.log
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = info
rootLogger.appenderRef.file.ref = file
LOG
	local cp="$JARS/*"
	local uuid
	uuid=$(java -cp "$cp" kafka.tools.StorageTool random-uuid 2>/dev/null | tail -1)
	java -cp "$cp" -Dlog4j2.configurationFile="$dir/log4j2.properties" \
		kafka.tools.StorageTool format --standalone -t "$uuid" -c "$dir/server.properties" >"$dir/format.log" 2>&1 \
		|| { cat "$dir/format.log" >&2; die "formatting the storage failed"; }
	nohup java -Xmx1g -cp "$cp" -Dlog4j2.configurationFile="$dir/log4j2.properties" \
		kafka.Kafka "$dir/server.properties" >"$dir/stdout.log" 2>&1 &
	local pid=$!
	echo "$pid" >"$dir/pid"
	local deadline=$((SECONDS + 60))
	until java -cp "$cp" -Dlog4j2.configurationFile="$dir/log4j2.properties" \
		org.apache.kafka.tools.TopicCommand --bootstrap-server "127.0.0.1:$port" --list >/dev/null 2>&1; do
		if ! kill -0 "$pid" 2>/dev/null; then
			tail -30 "$dir/broker.log" "$dir/stdout.log" >&2 || true
			die "the broker exited during start-up"
		fi
		if [ $SECONDS -ge $deadline ]; then
			tail -30 "$dir/broker.log" "$dir/stdout.log" >&2 || true
			kill "$pid" 2>/dev/null || true
			die "the broker did not answer within 60 s"
		fi
		sleep 0.5
	done
	printf 'KAFKA_BROKERS=127.0.0.1:%s\nKAFKA_PID=%s\n' "$port" "$pid" >"$dir/env"
	echo "KAFKA_BROKERS=127.0.0.1:$port"
}

stop() {
	local dir=${1:-$HOME_DIR/run}
	[ -f "$dir/pid" ] || return 0
	local pid
	pid=$(cat "$dir/pid")
	if kill -0 "$pid" 2>/dev/null; then
		kill -TERM "$pid" 2>/dev/null || true
		local deadline=$((SECONDS + 30))
		while kill -0 "$pid" 2>/dev/null; do
			if [ $SECONDS -ge $deadline ]; then
				kill -KILL "$pid" 2>/dev/null || true
				break
			fi
			sleep 0.2
		done
	fi
	rm -f "$dir/pid" "$dir/env"
}

run() {
	RUN_DIR=$HOME_DIR/run
	if [ $# -gt 0 ] && [ "$1" != "--" ]; then RUN_DIR=$1; shift; fi
	[ "${1:-}" = "--" ] && shift
	[ $# -gt 0 ] || die "run: no command"
	local line
	line=$(start "$RUN_DIR" | tail -1)
	export "${line?}"
	trap 'stop "$RUN_DIR"' EXIT
	trap 'exit 130' INT TERM
	echo "kafka.sh: Apache Kafka $KAFKA_VERSION at $KAFKA_BROKERS" >&2
	set +e
	"$@"
	local rc=$?
	set -e
	return $rc
}

cmd=${1:-}
[ $# -gt 0 ] && shift
case "$cmd" in
fetch) fetch ;;
start) start "$@" ;;
stop) stop "$@" ;;
run) run "$@" ;;
*) die "usage: $0 fetch | start [DIR] | stop [DIR] | run [DIR] -- CMD..." ;;
esac
