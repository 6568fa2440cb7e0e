// VersionedOracle runs the commands of a versioned data file
// (dsl/versioned_data_test.go) through Kafka Streams' own
// TopologyTestDriver and writes the file back with, after each command,
// what Kafka Streams printed for it. Run from the repository root with
// Kafka Streams 4.3.1's jars (org.apache.kafka:kafka-streams-test-utils:4.3.1
// and its dependencies: kafka-streams, kafka-clients, rocksdbjni, ...):
//
//	javac -cp 'JARS/*' -d /tmp/oracle dsl/testdata/versioned/oracle/VersionedOracle.java
//	for f in dsl/testdata/versioned/*.txt; do
//	    java -cp "JARS/*:/tmp/oracle" VersionedOracle < $f | diff $f - ; done
//
// No difference means Kafka Streams 4.3.1 agrees with every expected
// output the oracle checks: the records written to "out" after each input,
// and the asof and get reads of versioned stores. It keeps the outputs of
// "dropped" (Sluice's drop counters) as they are, and of "build": "ok" and
// what follows it (Describe, which DescribeTopologies.java checks) when
// Kafka Streams builds and starts the topology too, a Build error when
// Kafka Streams fails as well; otherwise it prints "KAFKA STREAMS: ok" or
// "KAFKA STREAMS: error: <message>". Topologies are those of the test
// (versionedTopologies), with Kafka Streams' defaults except the record
// cache, off (statestore.cache.max.bytes=0) as in the test driver of the
// Go test.
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Properties;

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
import org.apache.kafka.streams.Topology;
import org.apache.kafka.streams.TopologyTestDriver;
import org.apache.kafka.streams.kstream.Consumed;
import org.apache.kafka.streams.kstream.Grouped;
import org.apache.kafka.streams.kstream.Joined;
import org.apache.kafka.streams.kstream.KStream;
import org.apache.kafka.streams.kstream.KTable;
import org.apache.kafka.streams.kstream.Materialized;
import org.apache.kafka.streams.kstream.Produced;
import org.apache.kafka.streams.state.KeyValueStore;
import org.apache.kafka.streams.state.Stores;
import org.apache.kafka.streams.state.VersionedKeyValueStore;
import org.apache.kafka.streams.processor.StateStore;
import org.apache.kafka.streams.state.VersionedRecord;
import org.apache.kafka.streams.state.internals.VersionedKeyValueToBytesStoreAdapter;
import org.apache.kafka.streams.state.internals.WrappedStateStore;
import org.apache.kafka.streams.test.TestRecord;

public class VersionedOracle {
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
            if (s.equals(name) || s.startsWith(name + "=")) {
                return true;
            }
        }
        return false;
    }

    static final Consumed<String, String> STRINGS = Consumed.with(Serdes.String(), Serdes.String());

    static Materialized<String, String, KeyValueStore<Bytes, byte[]>> versioned(String name, Duration history) {
        return Materialized.<String, String>as(Stores.persistentVersionedKeyValueStore(name, history))
            .withKeySerde(Serdes.String()).withValueSerde(Serdes.String());
    }

    static Materialized<String, String, KeyValueStore<Bytes, byte[]>> plain(String name) {
        return Materialized.<String, String, KeyValueStore<Bytes, byte[]>>as(name)
            .withKeySerde(Serdes.String()).withValueSerde(Serdes.String()).withCachingDisabled();
    }

    static boolean notX(String k, String v) {
        return !v.startsWith("x");
    }

    /** Builds the topology; returns whether "out" has long values. */
    static boolean build(StreamsBuilder b, String topo, String[] f, Duration history) {
        switch (topo) {
            case "join": {
                KStream<String, String> s = b.stream("stream", STRINGS);
                KTable<String, String> t = has(f, "unversioned")
                    ? b.table("table", STRINGS, plain("V-grace"))
                    : b.table("table", STRINGS, versioned("V-grace", history));
                if (has(f, "filter")) {
                    t = t.filter(VersionedOracle::notX);
                }
                String name = arg(f, "name");
                String grace = arg(f, "grace");
                Joined<String, String, String> j = Joined.with(Serdes.String(), Serdes.String(), Serdes.String());
                if (grace != null) {
                    j = Joined.with(Serdes.String(), Serdes.String(), Serdes.String(), name == null ? "Grace" : name,
                        Duration.ofMillis(Long.parseLong(grace)));
                } else if (name != null) {
                    j = j.withName(name);
                }
                KStream<String, String> out = has(f, "left")
                    ? s.leftJoin(t, (v, tv) -> v + "+" + tv, j)
                    : s.join(t, (v, tv) -> v + "+" + tv, j);
                out.to("out", Produced.with(Serdes.String(), Serdes.String()));
                return false;
            }
            case "table":
                b.table("table", STRINGS, versioned("V", history)).toStream().to("out", Produced.with(Serdes.String(), Serdes.String()));
                return false;
            case "filtered": {
                KTable<String, String> t = b.table("table", STRINGS, versioned("V", history));
                String m = arg(f, "materialized");
                if ("versioned".equals(m)) {
                    t = t.filter(VersionedOracle::notX, versioned("F", history));
                } else if ("plain".equals(m)) {
                    t = t.filter(VersionedOracle::notX, plain("F"));
                } else {
                    t = t.filter(VersionedOracle::notX);
                }
                t.toStream().to("out", Produced.with(Serdes.String(), Serdes.String()));
                return false;
            }
            case "filteredcount":
                b.table("table", STRINGS, versioned("V", history)).filter(VersionedOracle::notX, plain("F"))
                    .groupBy((k, v) -> KeyValue.pair(v, v), Grouped.with(Serdes.String(), Serdes.String()))
                    .count(Materialized.<String, Long, KeyValueStore<Bytes, byte[]>>as("C").withKeySerde(Serdes.String())
                        .withValueSerde(Serdes.Long()).withCachingDisabled())
                    .toStream().to("out", Produced.with(Serdes.String(), Serdes.Long()));
                return true;
            case "mappedcount":
                b.table("table", STRINGS, versioned("V", history)).mapValues(v -> "m" + v, plain("M"))
                    .groupBy((k, v) -> KeyValue.pair(v, v), Grouped.with(Serdes.String(), Serdes.String()))
                    .count(Materialized.<String, Long, KeyValueStore<Bytes, byte[]>>as("C").withKeySerde(Serdes.String())
                        .withValueSerde(Serdes.Long()).withCachingDisabled())
                    .toStream().to("out", Produced.with(Serdes.String(), Serdes.Long()));
                return true;
            case "mapped":
                b.table("table", STRINGS, versioned("V", history)).mapValues(v -> "m" + v, versioned("M", history))
                    .toStream().to("out", Produced.with(Serdes.String(), Serdes.String()));
                return false;
            case "count":
                b.table("table", STRINGS, versioned("V", history))
                    .groupBy((k, v) -> KeyValue.pair(v, v), Grouped.with(Serdes.String(), Serdes.String()))
                    .count(Materialized.<String, Long, KeyValueStore<Bytes, byte[]>>as("C").withKeySerde(Serdes.String())
                        .withValueSerde(Serdes.Long()).withCachingDisabled())
                    .toStream().to("out", Produced.with(Serdes.String(), Serdes.Long()));
                return true;
            case "agg":
                b.table("table", STRINGS, versioned("V", history))
                    .groupBy((k, v) -> {
                        switch (k) {
                            case "null":
                                return KeyValue.pair(null, v);
                            case "NULL":
                                return null;
                            default:
                                return KeyValue.pair(v, v);
                        }
                    }, Grouped.with(Serdes.String(), Serdes.String()))
                    .aggregate(() -> "0", (k, v, agg) -> agg + "+" + v, (k, v, agg) -> agg + "-" + v,
                        plain("topic1-Canonized"))
                    .toStream().to("out", Produced.with(Serdes.String(), Serdes.String()));
                return false;
            case "tablejoin": {
                KTable<String, String> l = b.table("table", STRINGS, versioned("V", history));
                KTable<String, String> r = b.table("table2", STRINGS, versioned("V2", history));
                KTable<String, String> j = has(f, "materialized")
                    ? l.join(r, (v, o) -> v + "+" + o, versioned("J", history))
                    : l.join(r, (v, o) -> v + "+" + o);
                j.toStream().to("out", Produced.with(Serdes.String(), Serdes.String()));
                return false;
            }
            case "countagg":
                b.stream("stream", STRINGS).groupByKey()
                    .count(Materialized.<String, Long>as(Stores.persistentVersionedKeyValueStore("C", history))
                        .withKeySerde(Serdes.String()).withValueSerde(Serdes.Long()))
                    .toStream().to("out", Produced.with(Serdes.String(), Serdes.Long()));
                return true;
            case "global":
                b.stream("stream", STRINGS).join(b.globalTable("table", STRINGS, versioned("G", history)), (k, v) -> k, (v, gv) -> v + "+" + gv)
                    .to("out", Produced.with(Serdes.String(), Serdes.String()));
                return false;
            case "inmemory":
                // Kafka Streams has no in-memory versioned store to ask for.
                throw new IllegalArgumentException("no in-memory versioned store in Kafka Streams");
            default:
                throw new IllegalArgumentException("unknown topology " + topo);
        }
    }

    static String show(VersionedRecord<String> r, boolean latest) {
        if (r == null) {
            return "absent";
        }
        String to = latest || r.validTo().isEmpty() || r.validTo().get() == Long.MAX_VALUE ? "latest" : Long.toString(r.validTo().get());
        return r.value() + "@" + r.timestamp() + "-" + to;
    }

    public static void main(String[] args) throws Exception {
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in));
        StringBuilder out = new StringBuilder();
        TopologyTestDriver driver = null;
        TestOutputTopic<String, ?> output = null;
        String line;
        String cmd = null;
        String[] f = null;
        String buildResult = null;
        while ((line = in.readLine()) != null) {
            String t = line.trim();
            if (t.equals("----")) {
                List<String> expected = new ArrayList<>();
                while ((line = in.readLine()) != null && !line.isEmpty()) {
                    expected.add(line);
                }
                List<String> got = new ArrayList<>();
                switch (cmd) {
                    case "build":
                        boolean sluiceOK = !expected.isEmpty() && expected.get(0).equals("ok");
                        if (sluiceOK == buildResult.equals("ok")) {
                            got = expected;
                        } else {
                            got.add("KAFKA STREAMS: " + buildResult);
                        }
                        break;
                    case "dropped":
                        got = expected;
                        break;
                    case "stream":
                    case "table":
                    case "table2": {
                        String[] kv = f[1].split("=", 2);
                        int at = kv[1].lastIndexOf('@');
                        String key = kv[0].equals("<null>") ? null : kv[0];
                        String value = kv[1].substring(0, at);
                        long ts = Long.parseLong(kv[1].substring(at + 1));
                        TestInputTopic<String, String> topic = driver.createInputTopic(cmd, new StringSerializer(), new StringSerializer());
                        topic.pipeInput(new TestRecord<>(key, value.equals("<null>") ? null : value, null, ts));
                        for (TestRecord<String, ?> r : output.readRecordsToList()) {
                            got.add((r.key() == null ? "<null>" : r.key()) + "=" + (r.value() == null ? "<null>" : r.value()) + "@" + r.timestamp());
                        }
                        break;
                    }
                    case "asof": {
                        // The metered store the driver hands out leaves
                        // validTo out; the RocksDB store below it has it.
                        StateStore s = driver.getAllStateStores().get(f[1]);
                        while (s instanceof WrappedStateStore) {
                            s = ((WrappedStateStore<?, ?, ?>) s).wrapped();
                        }
                        if (s instanceof VersionedKeyValueToBytesStoreAdapter) {
                            java.lang.reflect.Field inner = VersionedKeyValueToBytesStoreAdapter.class.getDeclaredField("inner");
                            inner.setAccessible(true);
                            s = (StateStore) inner.get(s);
                        }
                        @SuppressWarnings("unchecked")
                        VersionedKeyValueStore<Bytes, byte[]> raw = (VersionedKeyValueStore<Bytes, byte[]>) s;
                        VersionedRecord<byte[]> r = raw.get(Bytes.wrap(f[2].getBytes(StandardCharsets.UTF_8)), Long.parseLong(f[3]));
                        // The store "C" holds counts (longs).
                        got.add(r == null ? "absent" : show(new VersionedRecord<>(f[1].equals("C")
                            ? Long.toString(java.nio.ByteBuffer.wrap(r.value()).getLong())
                            : new String(r.value(), StandardCharsets.UTF_8), r.timestamp(), r.validTo().orElse(Long.MAX_VALUE)), false));
                        break;
                    }
                    case "get": {
                        VersionedKeyValueStore<String, String> s = driver.getVersionedKeyValueStore(f[1]);
                        got.add(show(s.get(f[2]), true));
                        break;
                    }
                    default:
                        throw new IllegalArgumentException("unknown command " + cmd);
                }
                out.append("----\n");
                for (String g : got) {
                    out.append(g).append('\n');
                }
                out.append('\n');
                continue;
            }
            out.append(line).append('\n');
            if (t.isEmpty() || t.startsWith("#")) {
                continue;
            }
            f = t.split("\\s+");
            cmd = f[0];
            if (cmd.equals("build")) {
                if (driver != null) {
                    driver.close();
                    driver = null;
                }
                String h = arg(f, "history");
                Duration history = Duration.ofMillis(h == null ? 300000 : Long.parseLong(h));
                Properties props = new Properties();
                props.put(StreamsConfig.APPLICATION_ID_CONFIG, "versioned-oracle");
                props.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, "dummy:1234");
                props.put(StreamsConfig.DEFAULT_KEY_SERDE_CLASS_CONFIG, Serdes.StringSerde.class);
                props.put(StreamsConfig.DEFAULT_VALUE_SERDE_CLASS_CONFIG, Serdes.StringSerde.class);
                props.put(StreamsConfig.STATESTORE_CACHE_MAX_BYTES_CONFIG, 0);
                try {
                    StreamsBuilder b = new StreamsBuilder();
                    boolean longs = build(b, f[1], f, history);
                    Topology topo = b.build();
                    driver = new TopologyTestDriver(topo, props);
                    output = longs
                        ? driver.createOutputTopic("out", new StringDeserializer(), new LongDeserializer())
                        : driver.createOutputTopic("out", new StringDeserializer(), new StringDeserializer());
                    buildResult = "ok";
                } catch (Exception e) {
                    buildResult = "error: " + e.getMessage();
                }
            }
        }
        if (driver != null) {
            driver.close();
        }
        // The file's last output ends without the blank line after it.
        System.out.print(out.toString().replaceAll("\n\n$", "\n"));
    }
}
