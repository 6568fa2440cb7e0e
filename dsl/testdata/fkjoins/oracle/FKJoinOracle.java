// FKJoinOracle runs the inputs of a foreign-key join data file
// (dsl/testdata/fkjoins) through Kafka Streams 4.3.1's own
// TopologyTestDriver and writes the file back with, after each left, right
// and store command, what Kafka Streams wrote or holds. The expected outputs
// of dsl/testdata/fkjoins were made with it (the random_*.txt files from
// random inputs: any file of these commands can be checked):
//
//	# JARS: org.apache.kafka:kafka-streams-test-utils:4.3.1 and its
//	# dependencies (kafka-streams, kafka-clients, rocksdbjni, ...), e.g.
//	# mvn dependency:copy-dependencies -DoutputDirectory=JARS on a pom
//	# naming it.
//	javac -cp 'JARS/*' -d /tmp/oracle FKJoinOracle.java
//	for f in ../*.txt; do java -cp "JARS/*:/tmp/oracle" FKJoinOracle < $f > /tmp/out.txt && diff $f /tmp/out.txt; done
//
// The topology is that of KTableKTableForeignKeyJoinIntegrationTest's
// getTopology (no versioned tables, no optimization): "build kind=inner|left
// [materialized] [versioned=left|right|both] [rejoin] [groupby] [views] [extractor=split|null|returnNull] [name=N]
// [cache=on]" (cache=on: the result stores are cached, as Kafka Streams'
// defaults have them; else withCachingDisabled)
// (name: TableJoined.as(N)), then "left|right <key>=<value>@<ts>" (<null>
// for a Kafka null) and "store <name>". views: the join's inputs are
// left_table.mapValues(v -> "m" + v) and right_table.filter(v not starting
// with "x"), not materialized. The outputs of other commands
// (build's own lines: Sluice's co-partition groups and internal topics,
// subscriptions, dropped) are copied through unchanged.
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Properties;
import java.util.function.Function;

import org.apache.kafka.common.header.Headers;
import org.apache.kafka.common.serialization.LongDeserializer;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;
import org.apache.kafka.common.utils.Bytes;
import org.apache.kafka.streams.KeyValue;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.TestInputTopic;
import org.apache.kafka.streams.TestOutputTopic;
import org.apache.kafka.streams.TopologyTestDriver;
import org.apache.kafka.streams.kstream.Consumed;
import org.apache.kafka.streams.kstream.Grouped;
import org.apache.kafka.streams.kstream.KTable;
import org.apache.kafka.streams.kstream.Named;
import org.apache.kafka.streams.kstream.Materialized;
import org.apache.kafka.streams.kstream.Produced;
import org.apache.kafka.streams.kstream.TableJoined;
import org.apache.kafka.streams.kstream.ValueJoiner;
import org.apache.kafka.streams.state.KeyValueIterator;
import org.apache.kafka.streams.state.KeyValueStore;
import org.apache.kafka.streams.state.Stores;
import org.apache.kafka.streams.state.ValueAndTimestamp;
import org.apache.kafka.streams.test.TestRecord;

public class FKJoinOracle {
    static String arg(String[] f, String name) {
        for (String s : f) {
            if (s.startsWith(name + "=")) {
                return s.substring(name.length() + 1);
            }
        }
        return null;
    }

    static boolean has(String[] f, String name) {
        for (String s : f) {
            if (s.equals(name)) {
                return true;
            }
        }
        return false;
    }

    static String show(String s) {
        return s == null ? "<null>" : s;
    }

    public static void main(String[] args) throws Exception {
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in));
        StringBuilder out = new StringBuilder();
        TopologyTestDriver driver = null;
        TestInputTopic<String, String> left = null, right = null;
        TestOutputTopic<String, String> output = null, rejoinOutput = null;
        TestOutputTopic<String, Long> countOutput = null;
        String line;
        List<String> pending = null; // the expected output of a command copied through
        while ((line = in.readLine()) != null) {
            String t = line.trim();
            if (t.equals("----")) {
                List<String> old = new ArrayList<>();
                while ((line = in.readLine()) != null && !line.isEmpty()) {
                    old.add(line);
                }
                out.append("----\n");
                if (pending == null) {
                    for (String o : old) {
                        out.append(o).append('\n');
                    }
                } else {
                    for (String o : pending) {
                        out.append(o).append('\n');
                    }
                }
                out.append('\n');
                pending = null;
                continue;
            }
            out.append(line).append('\n');
            if (t.isEmpty() || t.startsWith("#")) {
                continue;
            }
            String[] f = t.split("\\s+");
            switch (f[0]) {
                case "build": {
                    if (driver != null) {
                        driver.close();
                    }
                    boolean leftJoin = "left".equals(arg(f, "kind"));
                    boolean materialized = has(f, "materialized");
                    boolean rejoin = has(f, "rejoin");
                    String ex = arg(f, "extractor");
                    Function<String, String> extractor;
                    if (ex == null || ex.equals("split")) {
                        extractor = v -> v.split("\\|")[1];
                    } else if (ex.equals("null")) {
                        extractor = v -> null;
                    } else {
                        extractor = v -> {
                            String s = v.split("\\|")[1];
                            return s.equals("returnNull") ? null : s;
                        };
                    }
                    StreamsBuilder b = new StreamsBuilder();
                    String ver = arg(f, "versioned");
                    boolean lv = "left".equals(ver) || "both".equals(ver), rv = "right".equals(ver) || "both".equals(ver);
                    KTable<String, String> l = lv
                        ? b.table("left_table", Consumed.with(Serdes.String(), Serdes.String()),
                            Materialized.as(Stores.persistentVersionedKeyValueStore("left", Duration.ofMinutes(5))))
                        : b.table("left_table", Consumed.with(Serdes.String(), Serdes.String()));
                    KTable<String, String> r = rv
                        ? b.table("right_table", Consumed.with(Serdes.String(), Serdes.String()),
                            Materialized.as(Stores.persistentVersionedKeyValueStore("right", Duration.ofMinutes(5))))
                        : b.table("right_table", Consumed.with(Serdes.String(), Serdes.String()));
                    if (has(f, "views")) {
                        l = l.mapValues(v -> "m" + v);
                        r = r.filter((k, v) -> !v.startsWith("x"));
                    }
                    ValueJoiner<String, String, String> joiner = (v1, v2) -> "(" + v1 + "," + v2 + ")";
                    ValueJoiner<String, String, String> rejoiner = (v1, v2) -> "rejoin(" + v1 + "," + v2 + ")";
                    boolean cached = "on".equals(arg(f, "cache"));
                    Materialized<String, String, KeyValueStore<Bytes, byte[]>> mat = materialized
                        ? Materialized.<String, String>as(Stores.inMemoryKeyValueStore("store")).withValueSerde(Serdes.String())
                        : Materialized.<String, String, KeyValueStore<Bytes, byte[]>>with(null, Serdes.String());
                    if (!cached) {
                        mat = mat.withCachingDisabled();
                    }
                    String name = arg(f, "name");
                    TableJoined<String, String> tj = name == null ? TableJoined.with(null, null) : TableJoined.as(name);
                    KTable<String, String> j = leftJoin
                        ? l.leftJoin(r, extractor, joiner, tj, mat)
                        : l.join(r, extractor, joiner, tj, mat);
                    j.toStream().to("output-topic", Produced.with(Serdes.String(), Serdes.String()));
                    if (rejoin) {
                        Materialized<String, String, KeyValueStore<Bytes, byte[]>> rmat =
                            Materialized.<String, String>as(Stores.inMemoryKeyValueStore("store-rejoin")).withValueSerde(Serdes.String());
                        if (!cached) {
                            rmat = rmat.withCachingDisabled();
                        }
                        (leftJoin ? j.leftJoin(l, rejoiner, rmat) : j.join(l, rejoiner, rmat))
                            .toStream().to("rejoin-output-topic", Produced.with(Serdes.String(), Serdes.String()));
                    }
                    if (has(f, "groupby")) {
                        j.groupBy((k, v) -> {
                            String s = v.substring(0, v.length() - 1);
                            return KeyValue.pair(s.substring(s.indexOf(',') + 1), v);
                        }, Grouped.with(Serdes.String(), Serdes.String()))
                            .count(Named.as("counts"))
                            .toStream().to("count-topic", Produced.with(Serdes.String(), Serdes.Long()));
                    }
                    Properties props = new Properties();
                    props.put(StreamsConfig.APPLICATION_ID_CONFIG, "oracle");
                    props.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, "dummy:0");
                    // The serdes of the mapped table of views, which mapValues does not carry.
                    props.put(StreamsConfig.DEFAULT_KEY_SERDE_CLASS_CONFIG, Serdes.StringSerde.class.getName());
                    props.put(StreamsConfig.DEFAULT_VALUE_SERDE_CLASS_CONFIG, Serdes.StringSerde.class.getName());
                    props.put(StreamsConfig.STATE_DIR_CONFIG, System.getProperty("java.io.tmpdir") + "/fkjoin-oracle-" + ProcessHandle.current().pid());
                    driver = new TopologyTestDriver(b.build(props), props);
                    left = driver.createInputTopic("left_table", new StringSerializer(), new StringSerializer());
                    right = driver.createInputTopic("right_table", new StringSerializer(), new StringSerializer());
                    output = driver.createOutputTopic("output-topic", new StringDeserializer(), new StringDeserializer());
                    countOutput = has(f, "groupby") ? driver.createOutputTopic("count-topic", new StringDeserializer(), new LongDeserializer()) : null;
                    rejoinOutput = rejoin ? driver.createOutputTopic("rejoin-output-topic", new StringDeserializer(), new StringDeserializer()) : null;
                    break;
                }
                case "left":
                case "right": {
                    String rec = f[1];
                    int eq = rec.indexOf('='), at = rec.lastIndexOf('@');
                    String k = rec.substring(0, eq), v = rec.substring(eq + 1, at);
                    long ts = Long.parseLong(rec.substring(at + 1));
                    (f[0].equals("left") ? left : right).pipeInput(new TestRecord<String, String>(
                        k.equals("<null>") ? null : k, v.equals("<null>") ? null : v, (Headers) null, Long.valueOf(ts)));
                    pending = new ArrayList<>();
                    for (TestRecord<String, String> r : output.readRecordsToList()) {
                        pending.add(show(r.key()) + "=" + show(r.value()) + "@" + r.timestamp());
                    }
                    if (rejoinOutput != null) {
                        for (TestRecord<String, String> r : rejoinOutput.readRecordsToList()) {
                            pending.add("rejoin: " + show(r.key()) + "=" + show(r.value()) + "@" + r.timestamp());
                        }
                    }
                    if (countOutput != null) {
                        for (TestRecord<String, Long> r : countOutput.readRecordsToList()) {
                            pending.add("count: " + show(r.key()) + "=" + (r.value() == null ? "<null>" : r.value().toString()) + "@" + r.timestamp());
                        }
                    }
                    break;
                }
                case "store": {
                    pending = new ArrayList<>();
                    KeyValueStore<String, ValueAndTimestamp<String>> s = driver.getTimestampedKeyValueStore(f[1]);
                    try (KeyValueIterator<String, ValueAndTimestamp<String>> it = s.all()) {
                        while (it.hasNext()) {
                            KeyValue<String, ValueAndTimestamp<String>> kv = it.next();
                            pending.add(kv.key + "=" + kv.value.value() + "@" + kv.value.timestamp());
                        }
                    }
                    break;
                }
                default:
                    break;
            }
        }
        if (driver != null) {
            driver.close();
        }
        String text = out.toString();
        if (text.endsWith("\n\n")) {
            text = text.substring(0, text.length() - 1);
        }
        System.out.print(text);
    }
}
