// StreamJoinOracle runs the inputs of a stream-stream join data file
// through Kafka Streams' own TopologyTestDriver and writes the file back
// with, after each command, the records Kafka Streams wrote for it. The
// random_*.txt files of dsl/testdata/streamjoins were made with it, from
// random inputs, and any file of build, left and right commands (without
// headers) can be checked with it:
//
//	# JARS: org.apache.kafka:kafka-streams-test-utils:4.3.1 and its
//	# dependencies (kafka-streams, kafka-clients, rocksdbjni, ...), e.g.
//	# mvn dependency:copy-dependencies -DoutputDirectory=JARS on a pom
//	# naming it.
//	javac -cp 'JARS/*' -d /tmp/oracle StreamJoinOracle.java
//	java -cp "JARS/*:/tmp/oracle" StreamJoinOracle < random_1.txt > out.txt
//	diff random_1.txt out.txt
//
// The commands are those of streamjoin_data_test.go: comment lines (#),
// "build join|left|outer|self [diff=MS] [before=MS] [after=MS]
// [grace=MS]" and "left|right <key>=<value>@<ts>..." with int keys,
// string values and <null> for a Kafka null; the expected output of each
// (a "----" line, then lines up to a blank line) is replaced. Everything runs with Kafka Streams' defaults (RocksDB
// stores, no topology optimization); the joiner is
// MockValueJoiner.TOSTRING_JOINER's "<left>+<right>".
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.time.Duration;
import java.util.Properties;

import org.apache.kafka.common.header.Headers;
import org.apache.kafka.common.serialization.IntegerDeserializer;
import org.apache.kafka.common.serialization.IntegerSerializer;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.TestInputTopic;
import org.apache.kafka.streams.TestOutputTopic;
import org.apache.kafka.streams.TopologyTestDriver;
import org.apache.kafka.streams.kstream.Consumed;
import org.apache.kafka.streams.kstream.JoinWindows;
import org.apache.kafka.streams.kstream.KStream;
import org.apache.kafka.streams.kstream.Produced;
import org.apache.kafka.streams.kstream.StreamJoined;
import org.apache.kafka.streams.test.TestRecord;

public class StreamJoinOracle {
    static long arg(String[] f, String name, long def) {
        for (String s : f) {
            if (s.startsWith(name + "=")) {
                return Long.parseLong(s.substring(name.length() + 1));
            }
        }
        return def;
    }

    static boolean has(String[] f, String name) {
        for (String s : f) {
            if (s.startsWith(name + "=")) {
                return true;
            }
        }
        return false;
    }

    public static void main(String[] args) throws Exception {
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in));
        StringBuilder out = new StringBuilder();
        TopologyTestDriver driver = null;
        TestInputTopic<Integer, String> left = null, right = null;
        TestOutputTopic<Integer, String> output = null;
        String line;
        while ((line = in.readLine()) != null) {
            String t = line.trim();
            if (t.equals("----")) {
                // An expected output: replaced by Kafka Streams' own.
                while ((line = in.readLine()) != null && !line.isEmpty()) {
                }
                continue;
            }
            if (t.isEmpty() || t.startsWith("#")) {
                out.append(line).append('\n');
                continue;
            }
            String[] f = t.split("\\s+");
            out.append(t).append("\n----\n");
            if (f[0].equals("build")) {
                if (driver != null) {
                    driver.close();
                }
                JoinWindows w = JoinWindows.ofTimeDifferenceAndGrace(Duration.ofMillis(arg(f, "diff", 0)), Duration.ofMillis(arg(f, "grace", 0)));
                if (has(f, "before")) {
                    w = w.before(Duration.ofMillis(arg(f, "before", 0)));
                }
                if (has(f, "after")) {
                    w = w.after(Duration.ofMillis(arg(f, "after", 0)));
                }
                StreamsBuilder b = new StreamsBuilder();
                KStream<Integer, String> l = b.stream("left", Consumed.with(Serdes.Integer(), Serdes.String()));
                StreamJoined<Integer, String, String> sj = StreamJoined.with(Serdes.Integer(), Serdes.String(), Serdes.String());
                KStream<Integer, String> joined;
                switch (f[1]) {
                    case "join":
                        joined = l.join(b.stream("right", Consumed.with(Serdes.Integer(), Serdes.String())), (x, y) -> x + "+" + y, w, sj);
                        break;
                    case "left":
                        joined = l.leftJoin(b.stream("right", Consumed.with(Serdes.Integer(), Serdes.String())), (x, y) -> x + "+" + y, w, sj);
                        break;
                    case "outer":
                        joined = l.outerJoin(b.stream("right", Consumed.with(Serdes.Integer(), Serdes.String())), (x, y) -> x + "+" + y, w, sj);
                        break;
                    case "self":
                        joined = l.join(l, (x, y) -> x + "+" + y, w, sj);
                        break;
                    default:
                        throw new IllegalArgumentException("unknown join " + f[1]);
                }
                joined.to("out", Produced.with(Serdes.Integer(), Serdes.String()));
                Properties props = new Properties();
                props.put(StreamsConfig.APPLICATION_ID_CONFIG, "oracle");
                props.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, "dummy:0");
                driver = new TopologyTestDriver(b.build(), props);
                left = driver.createInputTopic("left", new IntegerSerializer(), new StringSerializer());
                if (!f[1].equals("self")) {
                    right = driver.createInputTopic("right", new IntegerSerializer(), new StringSerializer());
                }
                output = driver.createOutputTopic("out", new IntegerDeserializer(), new StringDeserializer());
                out.append('\n');
                continue;
            }
            TestInputTopic<Integer, String> topic = f[0].equals("left") ? left : right;
            for (int i = 1; i < f.length; i++) {
                if (f[i].equals("left")) {
                    topic = left;
                    continue;
                }
                if (f[i].equals("right")) {
                    topic = right;
                    continue;
                }
                String rec = f[i];
                int eq = rec.indexOf('='), at = rec.lastIndexOf('@');
                String k = rec.substring(0, eq), v = rec.substring(eq + 1, at);
                long ts = Long.parseLong(rec.substring(at + 1));
                Integer key = k.equals("<null>") ? null : Integer.valueOf(k);
                String value = v.equals("<null>") ? null : v;
                topic.pipeInput(new TestRecord<Integer, String>(key, value, (Headers) null, Long.valueOf(ts)));
            }
            for (TestRecord<Integer, String> r : output.readRecordsToList()) {
                out.append(r.key() == null ? "<null>" : r.key().toString()).append('=')
                    .append(r.value() == null ? "<null>" : r.value()).append('@').append(r.timestamp()).append('\n');
            }
            out.append('\n');
        }
        if (driver != null) {
            driver.close();
        }
        System.out.print(out);
    }
}
