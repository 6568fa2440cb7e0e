// SuppressOracle runs the inputs of a suppress data file
// (dsl/testdata/suppress/*.txt, read by dsl/suppress_data_test.go) through
// Kafka Streams 4.3.1's own TopologyTestDriver and writes the file back
// with, after each command, the records Kafka Streams wrote for it. Every
// file of dsl/testdata/suppress was checked with it:
//
//	javac -cp 'JARS/*' -d /tmp/oracle SuppressOracle.java
//	for f in ../*.txt; do java -cp 'JARS/*:/tmp/oracle' SuppressOracle < $f | diff $f -; done
//
// (JARS: org.apache.kafka:kafka-streams-test-utils:4.3.1 and its
// dependencies, e.g. mvn dependency:copy-dependencies -DoutputDirectory=JARS
// on a pom naming it). The commands are those of suppress_data_test.go: comment
// lines (#), "build <topology> [args]" for the topologies counts, windows,
// groupby, join, selfjoin and table, built as there with the same names, and
// "in <topic> <key>=<value>@<ts> [<header>:<value>...]" with <null> for a
// Kafka null; the expected output of each (a "----" line, then lines up
// to a blank line) is replaced. The raw updates of sliding windows are
// printed in key order, as SuppressScenarioTest sorts them (Sluice forwards
// the updates of one record in another order). The application ID is the Sluice test
// driver's, "sluice-test", so that internal topic names (which the bytes a
// suppression buffer counts include) are the same.
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.TreeMap;

import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.header.internals.RecordHeaders;
import org.apache.kafka.common.serialization.Deserializer;
import org.apache.kafka.common.serialization.LongDeserializer;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;
import org.apache.kafka.common.utils.Bytes;
import org.apache.kafka.streams.KeyValue;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.TestInputTopic;
import org.apache.kafka.streams.TopologyTestDriver;
import org.apache.kafka.streams.kstream.Consumed;
import org.apache.kafka.streams.kstream.Grouped;
import org.apache.kafka.streams.kstream.KGroupedStream;
import org.apache.kafka.streams.kstream.KTable;
import org.apache.kafka.streams.kstream.Materialized;
import org.apache.kafka.streams.kstream.Produced;
import org.apache.kafka.streams.kstream.SessionWindows;
import org.apache.kafka.streams.kstream.SlidingWindows;
import org.apache.kafka.streams.kstream.Suppressed;
import org.apache.kafka.streams.kstream.TimeWindows;
import org.apache.kafka.streams.kstream.Windowed;
import org.apache.kafka.streams.state.KeyValueStore;
import org.apache.kafka.streams.state.SessionStore;
import org.apache.kafka.streams.state.WindowStore;
import org.apache.kafka.streams.test.TestRecord;

public class SuppressOracle {
    static String arg(final String[] f, final String name) {
        for (final String s : f) {
            if (s.startsWith(name + "=")) {
                return s.substring(name.length() + 1);
            }
        }
        return null;
    }

    static boolean has(final String[] f, final String name) {
        for (final String s : f) {
            if (s.equals(name)) {
                return true;
            }
        }
        return false;
    }

    // A Go duration of one unit: 2ms, 0s, 5m, 2562047h.
    static Duration dur(final String s) {
        final String[] units = {"ms", "s", "m", "h"};
        final long[] ms = {1, 1000, 60_000, 3_600_000};
        for (int i = 0; i < units.length; i++) {
            if (s.endsWith(units[i]) && s.substring(0, s.length() - units[i].length()).matches("[0-9]+")) {
                return Duration.ofMillis(Long.parseLong(s.substring(0, s.length() - units[i].length())) * ms[i]);
            }
        }
        throw new IllegalArgumentException("duration " + s);
    }

    static Suppressed.BufferConfig<?> buffer(final String[] f) {
        Suppressed.BufferConfig<?> c = Suppressed.BufferConfig.unbounded();
        if (arg(f, "maxrecords") != null) {
            c = Suppressed.BufferConfig.maxRecords(Long.parseLong(arg(f, "maxrecords")));
        }
        if (arg(f, "maxbytes") != null) {
            c = c.withMaxBytes(Long.parseLong(arg(f, "maxbytes")));
        }
        if (has(f, "shutdown")) {
            return c.shutDownWhenFull();
        }
        return c.emitEarlyWhenFull();
    }

    @SuppressWarnings("unchecked")
    static Suppressed.StrictBufferConfig strict(final String[] f) {
        final Suppressed.BufferConfig<?> c = buffer(f);
        if (c instanceof Suppressed.StrictBufferConfig) {
            return (Suppressed.StrictBufferConfig) c;
        }
        return Suppressed.BufferConfig.unbounded();
    }

    // The output topics of the running topology and how to print their values.
    static final Map<String, Deserializer<?>> OUTPUTS = new TreeMap<>();
    static boolean windowed, sorted;

    static void build(final StreamsBuilder b, final String[] f) {
        OUTPUTS.clear();
        windowed = false;
        sorted = "sliding".equals(arg(f, "kind"));
        final Consumed<String, String> ss = Consumed.with(Serdes.String(), Serdes.String());
        switch (f[1]) {
            case "counts": {
                final KTable<String, Long> counts = b.table("input", ss,
                        Materialized.<String, String, KeyValueStore<Bytes, byte[]>>as("input-store").withCachingDisabled().withLoggingDisabled())
                    .groupBy((k, v) -> KeyValue.pair(v, k), Grouped.with(Serdes.String(), Serdes.String()))
                    .count();
                counts.suppress(Suppressed.untilTimeLimit(dur(arg(f, "limit")), buffer(f))).toStream()
                    .to("output-suppressed", Produced.with(Serdes.String(), Serdes.Long()));
                counts.toStream().to("output-raw", Produced.with(Serdes.String(), Serdes.Long()));
                OUTPUTS.put("output-raw", new LongDeserializer());
                OUTPUTS.put("output-suppressed", new LongDeserializer());
                return;
            }
            case "windows": {
                final KGroupedStream<String, String> g = b.stream("input", ss).groupByKey(Grouped.with(Serdes.String(), Serdes.String()));
                final KTable<? extends Windowed<String>, Long> counts;
                switch (arg(f, "kind")) {
                    case "tumbling":
                        counts = g.windowedBy(TimeWindows.ofSizeAndGrace(dur(arg(f, "size")), dur(arg(f, "grace"))))
                            .count(Materialized.<String, Long, WindowStore<Bytes, byte[]>>as("counts").withCachingDisabled());
                        break;
                    case "sliding":
                        counts = g.windowedBy(SlidingWindows.ofTimeDifferenceAndGrace(dur(arg(f, "diff")), dur(arg(f, "grace"))))
                            .count(Materialized.<String, Long, WindowStore<Bytes, byte[]>>as("counts").withCachingDisabled());
                        break;
                    case "session":
                        counts = g.windowedBy(SessionWindows.ofInactivityGapAndGrace(dur(arg(f, "gap")), dur(arg(f, "grace"))))
                            .count(Materialized.<String, Long, SessionStore<Bytes, byte[]>>as("counts").withCachingDisabled());
                        break;
                    default:
                        throw new IllegalArgumentException("kind " + arg(f, "kind"));
                }
                @SuppressWarnings("unchecked")
                final KTable<Windowed<String>, Long> c = (KTable<Windowed<String>, Long>) counts;
                c.suppress(Suppressed.untilWindowCloses(strict(f))).toStream()
                    .map((k, v) -> KeyValue.pair(k.toString(), v))
                    .to("output-suppressed", Produced.with(Serdes.String(), Serdes.Long()));
                c.toStream().map((k, v) -> KeyValue.pair(k.toString(), v))
                    .to("output-raw", Produced.with(Serdes.String(), Serdes.Long()));
                OUTPUTS.put("output-raw", new LongDeserializer());
                OUTPUTS.put("output-suppressed", new LongDeserializer());
                windowed = true;
                return;
            }
            case "groupby":
                b.table("topic", ss).suppress(Suppressed.untilTimeLimit(Duration.ofMillis(10), Suppressed.BufferConfig.unbounded()))
                    .groupBy(KeyValue::pair, Grouped.with(Serdes.String(), Serdes.String()))
                    .count().toStream().to("output", Produced.with(Serdes.String(), Serdes.Long()));
                OUTPUTS.put("output", new LongDeserializer());
                return;
            case "join": {
                KTable<String, String> left = b.table("left", ss);
                KTable<String, String> right = b.table("right", ss);
                if (arg(f, "suppressed").equals("left")) {
                    left = left.suppress(Suppressed.untilTimeLimit(Duration.ofMillis(10), Suppressed.BufferConfig.unbounded()));
                } else {
                    right = right.suppress(Suppressed.untilTimeLimit(Duration.ofMillis(10), Suppressed.BufferConfig.unbounded()));
                }
                left.outerJoin(right, (l, r) -> String.format("(%s,%s)", l, r)).toStream()
                    .to("output", Produced.with(Serdes.String(), Serdes.String()));
                OUTPUTS.put("output", new StringDeserializer());
                return;
            }
            case "selfjoin": {
                final KTable<String, String> t = b.table("input", ss)
                    .suppress(Suppressed.untilTimeLimit(Duration.ofMillis(10), Suppressed.BufferConfig.unbounded()));
                t.join(t.mapValues(v -> v + "!"), (l, r) -> l + "|" + r).toStream()
                    .to("output", Produced.with(Serdes.String(), Serdes.String()));
                OUTPUTS.put("output", new StringDeserializer());
                return;
            }
            case "table":
                b.table("input", ss)
                    .suppress(Suppressed.untilTimeLimit(dur(arg(f, "limit")), buffer(f)).withName("sup"))
                    .toStream().to("output", Produced.with(Serdes.String(), Serdes.String()));
                OUTPUTS.put("output", new StringDeserializer());
                return;
            default:
                throw new IllegalArgumentException("topology " + f[1]);
        }
    }

    public static void main(final String[] args) throws Exception {
        final BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        final List<String> lines = new ArrayList<>();
        for (String l; (l = in.readLine()) != null; ) {
            lines.add(l);
        }
        TopologyTestDriver d = null;
        final StringBuilder out = new StringBuilder();
        final Properties p = new Properties();
        p.put(StreamsConfig.APPLICATION_ID_CONFIG, "sluice-test");
        p.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, "dummy:1234");
        int i = 0;
        while (i < lines.size()) {
            final String line = lines.get(i++);
            out.append(line).append('\n');
            if (line.isEmpty() || line.startsWith("#")) {
                continue;
            }
            // skip the expected output in the file: "----", lines up to a blank one
            while (i < lines.size() && !lines.get(i).equals("----")) {
                i++;
            }
            i++;
            while (i < lines.size() && !lines.get(i).isEmpty()) {
                i++;
            }
            final String[] f = line.split("\\s+");
            final List<String> got = new ArrayList<>();
            if (f[0].equals("build")) {
                if (d != null) {
                    d.close();
                }
                final StreamsBuilder b = new StreamsBuilder();
                build(b, f);
                d = new TopologyTestDriver(b.build(), p);
            } else if (f[0].equals("in")) {
                final TestInputTopic<String, String> topic = d.createInputTopic(f[1], new StringSerializer(), new StringSerializer());
                final String rec = f[2];
                final int eq = rec.indexOf('='), at = rec.lastIndexOf('@');
                final String k = rec.substring(0, eq), v = rec.substring(eq + 1, at);
                final RecordHeaders hs = new RecordHeaders();
                for (int j = 3; j < f.length; j++) {
                    final int c = f[j].indexOf(':');
                    hs.add(f[j].substring(0, c), f[j].substring(c + 1).getBytes(StandardCharsets.UTF_8));
                }
                topic.pipeInput(new TestRecord<>(k.equals("<null>") ? null : k, v.equals("<null>") ? null : v, hs,
                    Long.parseLong(rec.substring(at + 1))));
                for (final Map.Entry<String, Deserializer<?>> o : OUTPUTS.entrySet()) {
                    final List<String> recs = new ArrayList<>();
                    for (final TestRecord<String, ?> r : d.createOutputTopic(o.getKey(), new StringDeserializer(), o.getValue()).readRecordsToList()) {
                        final StringBuilder s = new StringBuilder(o.getKey()).append(' ')
                            .append(r.key() == null ? "<null>" : r.key()).append('=')
                            .append(r.value() == null ? "<null>" : r.value()).append('@').append(r.timestamp());
                        for (final Header h : r.headers()) {
                            s.append(' ').append(h.key()).append(':').append(new String(h.value(), StandardCharsets.UTF_8));
                        }
                        recs.add(s.toString());
                    }
                    // As SuppressScenarioTest: the raw updates of sliding
                    // windows, in key order.
                    if (sorted && o.getKey().equals("output-raw")) {
                        recs.sort(null);
                    }
                    got.addAll(recs);
                }
            } else {
                throw new IllegalArgumentException("command " + line);
            }
            out.append("----\n");
            for (final String g : got) {
                out.append(g).append('\n');
            }
        }
        if (d != null) {
            d.close();
        }
        System.out.print(out);
    }
}
