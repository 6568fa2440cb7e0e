// DescribeTopologies builds named pipelines with Kafka Streams 4.3.1's
// StreamsBuilder and writes each topology.describe().toString() to
// OUTDIR/<name>.txt. Those files are the golden files of
// dsl/describe_kafka_golden_test.go, which builds the same pipelines with
// Sluice's DSL and compares its Describe() byte for byte: Sluice's generated
// node, store and topic names must be the ones Kafka Streams generates.
// scripts/kafka.sh describe OUTDIR runs it (make describe-golden writes
// dsl/testdata/describe/; make test-kafka checks that the committed files
// are what it writes).
//
// Usage: DescribeTopologies OUTDIR
//
// Every pipeline is keyed by Strings with String values unless said
// otherwise. The operations are the ones that map one to one onto Sluice's
// DSL: the index counter Kafka Streams names nodes with advances once per
// operation, so a pipeline and its Sluice twin must make the same calls in
// the same order. The Sluice calls of each pipeline (b a *dsl.Builder, S
// serde.String, L serde.Int64, joiners elided as j):
//
//   wordcount
//     lines := FromTopic(b, "input", S, S)
//     words := FlatMapValues(lines, ...)
//     GroupBy(words, ..., S).Count(Materialized(StoreOptions{Name: "counts"}))
//       .ToStream().To("output", S, L)
//
//   split-merge-table
//     orders := FromTopic(b, "orders", S, L)
//     br := orders.Split(Named("size-")).Branch("large", ...).DefaultBranch("small")
//     MapValues(br["size-large"], ...).Merge(br["size-small"]).To("orders-flagged", S, L)
//     users := TableFromTopic(b, "users", S, S, Named("users"))
//     TableGroupBy(users, ..., S, S).Count(Named("users-per-region")).ToStream().To("region-counts", S, L)
//
//   wordcount-grouped-named
//     GroupBy(words, ..., S, Named("by-word")).Count().ToStream().To("output", S, L)
//
//   table-groupby-named
//     users := TableFromTopic(b, "users", S, S)
//     TableGroupBy(users, ..., S, S, Named("by-region")).Count().ToStream().To("region-counts", S, L)
//
//   windowed-count-final
//     clicks := FromTopic(b, "clicks", S, S)
//     g := SelectKey(clicks, ...).GroupByKey()
//     WindowedBy(g, window.Tumbling(time.Minute, 10*time.Second)).EmitFinal().Count()
//       .ToStream().To("region-clicks", <windowed key serde>, L)
//
//   stream-repartition
//     s := FromTopic(b, "input", S, S)
//     s.Repartition().Repartition(Named("by-key"), Partitions(3)).To("output", S, S)
//
//   stream-aggregations
//     s := FromTopic(b, "input", S, S); g := s.GroupByKey()
//     g.Reduce(..., Materialized(StoreOptions{Name: "reduced"})).ToStream().To("reduced", S, S)
//     Aggregate(g, ..., ..., L).ToStream().To("aggregated", S, L)
//     g.Count(Named("counted")).ToStream().To("counted", S, L)
//
//   session-and-sliding
//     g := FromTopic(b, "input", S, S).GroupByKey()
//     WindowedBySession(g, window.Session{Gap: 5*time.Minute, Grace: time.Minute}).Count()
//       .ToStream().To("sessions", <session key serde>, L)
//     WindowedBySliding(g, window.Sliding{TimeDifference: time.Minute, Grace: 10*time.Second}).Reduce(...)
//       .ToStream().To("sliding", <windowed key serde>, S)
//
//   table-operations
//     users := TableFromTopic(b, "users", S, S)
//     f := users.Filter(..., Materialized(StoreOptions{Name: "active"}))
//     m := TableMapValues(f, ..., S, Named("upper"))
//     m.FilterNot(...).ToStream().To("users-out", S, S)
//     TableGroupBy(users, ..., S, S).Reduce(..., ..., Materialized(StoreOptions{Name: "reduced"}))
//       .ToStream().To("reduced", S, S)
//
//   stream-table-join / stream-table-leftjoin
//     orders := FromTopic(b, "orders", S, S)
//     users := TableFromTopic(b, "users", S, S)
//     JoinTable(orders, users, j) / LeftJoinTable(orders, users, j) .To("orders-enriched", S, S)
//
//   stream-table-join-rekeyed
//     JoinTable(SelectKey(orders, ...), users, j).To("orders-enriched", S, S)
//
//   stream-table-leftjoin-rekeyed-named
//     LeftJoinTable(SelectKey(orders, ...), users, j, Named("enrich")).To("orders-enriched", S, S)
//
//   stream-table-join-count
//     orders := FromTopic(b, "orders", S, S)
//     totals := FromTopic(b, "payments", S, S).GroupByKey().Count(Materialized(StoreOptions{Name: "payments-per-user"}))
//     JoinTable(orders, totals, j).To("orders-enriched", S, S)
//
//   stream-table-join-grace (v = StoreOptions{Name: "users-versioned", HistoryRetention: 5*time.Minute})
//     orders := FromTopic(b, "orders", S, S)
//     users := TableFromTopic(b, "users", S, S, Materialized(v))
//     JoinTable(orders, users, j, JoinGrace(time.Minute)).To("orders-enriched", S, S)
//
//   stream-table-leftjoin-grace-named
//     orders := FromTopic(b, "orders", S, S)
//     users := TableFromTopic(b, "users", S, S, Materialized(v)).Filter(...)
//     LeftJoinTable(orders, users, j, JoinGrace(time.Minute), Named("enrich")).To("orders-enriched", S, S)
//
//   stream-stream-join / -leftjoin / -outerjoin (w = window.JoinTimeDifferenceAndGrace(5*time.Minute, time.Minute))
//     left := FromTopic(b, "left", S, S); right := FromTopic(b, "right", S, S)
//     Join / LeftJoin / OuterJoin(left, right, j, w).To("joined", S, S)
//
//   stream-stream-join-before-after
//     Join(left, right, j, window.JoinTimeDifferenceAndGrace(10*time.Minute, time.Minute)
//       .WithBefore(10*time.Minute).WithAfter(0)).To("joined", S, S)
//
//   stream-stream-join-named:      Join(left, right, j, w, Named("pair"), <StreamJoined store name "pair-store">)
//   stream-stream-leftjoin-stores: LeftJoin(left, right, j, w, <StreamJoined store name "pair-store">)
//   stream-stream-outerjoin-named: OuterJoin(left, right, j, w, Named("pair"))
//     (Named is StreamJoined.withName; the StreamJoined-like option of
//     joins-ss is StreamJoined.withStoreName)
//
//   stream-stream-join-rekeyed
//     Join(SelectKey(left, ...), right, j, w).To("joined", S, S)
//
//   stream-stream-self-join
//     s := FromTopic(b, "events", S, S); Join(s, s, j, w).To("joined", S, S)
//
//   table-table-join / -leftjoin / -outerjoin
//     l := TableFromTopic(b, "left", S, S); r := TableFromTopic(b, "right", S, S)
//     TableJoin / TableLeftJoin / TableOuterJoin(l, r, j, S).ToStream().To("joined", S, S)
//
//   table-table-join-materialized / -leftjoin-named-materialized / -outerjoin-materialized
//     TableJoin(l, r, j, S, Materialized(StoreOptions{Name: "joined-store"}))
//     TableLeftJoin(l, r, j, S, Named("pair"), Materialized(StoreOptions{Name: "joined-store"}))
//     TableOuterJoin(l, r, j, S, Materialized(StoreOptions{Name: "joined-store"}))
//       .ToStream().To("joined", S, S)
//
//   table-table-join-filter-mapvalues
//     TableJoin(l.Filter(...), TableMapValues(r, ..., S), j, S).ToStream().To("joined", S, S)
//
//   table-table-join-filter-group-count
//     TableGroupBy(TableJoin(l, r, j, S).Filter(...), ..., S, S).Count().ToStream().To("counts", S, L)
//
//   global-join / global-leftjoin
//     orders := FromTopic(b, "orders", S, S)
//     products := GlobalTableFromTopic(b, "products", S, S)
//     JoinGlobal(orders, products, key, j) / LeftJoinGlobal(orders, products, key, j, Named("enrich"))
//       .To("orders-enriched", S, S)
//
//   global-join-named-store
//     products := GlobalTableFromTopic(b, "products", S, S, Named("products"))
//     JoinGlobal(orders, products, key, j).To("orders-enriched", S, S)
//
//   suppress-window-final
//     WindowedBy(FromTopic(b, "clicks", S, S).GroupByKey(), window.Tumbling(time.Minute, 10*time.Second)).Count()
//       .Suppress(UntilWindowCloses(BufferConfig{})).ToStream().To("final-counts", <windowed key serde>, L)
//
//   suppress-time-limit-named
//     TableGroupBy(TableFromTopic(b, "users", S, S), ..., S, S).Count()
//       .Suppress(UntilTimeLimit(time.Minute, BufferConfig{MaxRecords: 100}).WithName("limited"))
//       .ToStream().To("region-counts", S, L)
//
//   suppress-before-join
//     l := TableFromTopic(b, "left", S, S)
//     r := TableFromTopic(b, "right", S, S).Suppress(UntilTimeLimit(10*time.Millisecond, BufferConfig{}))
//     TableOuterJoin(l, r, j, S).ToStream().To("joined", S, S)
//
//   suppress-session-filter
//     WindowedBySession(FromTopic(b, "input", S, S).GroupByKey(), window.Session{Gap: 5*time.Minute, Grace: time.Minute}).Count()
//       .Filter(...).Suppress(UntilWindowCloses(BufferConfig{MaxRecords: 1000, OnFull: ShutDownWhenFull}))
//       .ToStream().To("sessions", <session key serde>, L)
//
//   clickstream (the pipeline of examples/clickstream)
//     users := TableFromTopic(b, "users", S, S)
//     pages := GlobalTableFromTopic(b, "pages", S, S)
//     clicks := FromTopic(b, "clicks", S, S)
//     purchases := FromTopic(b, "purchases", S, S)
//     enriched := LeftJoinGlobal(JoinTable(clicks, users, j), pages, key, j)
//     enriched.To("clicks-enriched", S, S)
//     g := SelectKey(enriched, ...).GroupByKey()
//     counts := WindowedBy(g, window.Tumbling(time.Minute, 10*time.Second)).EmitFinal().Count()
//     Map(counts.ToStream(), ...).To("region-clicks", S, S)
//     Join(purchases, clicks, j, window.JoinTimeDifferenceAndGrace(10*time.Minute, time.Minute)
//       .WithBefore(10*time.Minute).WithAfter(0)).To("attributed-purchases", S, S)
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.time.Duration;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.function.Consumer;

import org.apache.kafka.common.serialization.Serde;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.common.utils.Bytes;
import org.apache.kafka.streams.KeyValue;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.kstream.Branched;
import org.apache.kafka.streams.kstream.Consumed;
import org.apache.kafka.streams.kstream.EmitStrategy;
import org.apache.kafka.streams.kstream.GlobalKTable;
import org.apache.kafka.streams.kstream.Grouped;
import org.apache.kafka.streams.kstream.JoinWindows;
import org.apache.kafka.streams.kstream.KGroupedStream;
import org.apache.kafka.streams.kstream.Joined;
import org.apache.kafka.streams.kstream.KStream;
import org.apache.kafka.streams.kstream.KTable;
import org.apache.kafka.streams.kstream.Materialized;
import org.apache.kafka.streams.kstream.Named;
import org.apache.kafka.streams.kstream.Produced;
import org.apache.kafka.streams.kstream.Repartitioned;
import org.apache.kafka.streams.kstream.SessionWindows;
import org.apache.kafka.streams.kstream.SlidingWindows;
import org.apache.kafka.streams.kstream.StreamJoined;
import org.apache.kafka.streams.kstream.Suppressed;
import org.apache.kafka.streams.kstream.TimeWindows;
import org.apache.kafka.streams.kstream.ValueJoiner;
import org.apache.kafka.streams.kstream.TableJoined;
import org.apache.kafka.streams.kstream.Windowed;
import org.apache.kafka.streams.kstream.WindowedSerdes;
import org.apache.kafka.streams.state.KeyValueStore;
import org.apache.kafka.streams.state.Stores;

public final class DescribeTopologies {
    private static final Serde<String> S = Serdes.String();
    private static final Serde<Long> L = Serdes.Long();
    private static final ValueJoiner<String, String, String> J = (a, b) -> a + "," + b;
    private static final JoinWindows W = JoinWindows.ofTimeDifferenceAndGrace(Duration.ofMinutes(5), Duration.ofMinutes(1));

    private static Materialized<String, String, KeyValueStore<Bytes, byte[]>> store(final String name) {
        return Materialized.<String, String, KeyValueStore<Bytes, byte[]>>as(name);
    }

    private static Materialized<String, Long, KeyValueStore<Bytes, byte[]>> countStore(final String name) {
        return Materialized.<String, Long, KeyValueStore<Bytes, byte[]>>as(name);
    }

    private static KStream<String, String> stream(final StreamsBuilder b, final String topic) {
        return b.stream(topic, Consumed.with(S, S));
    }

    private static KTable<String, String> table(final StreamsBuilder b, final String topic) {
        return b.table(topic, Consumed.with(S, S));
    }

    private static Materialized<String, String, KeyValueStore<Bytes, byte[]>> versioned(final String name) {
        return Materialized.<String, String>as(Stores.persistentVersionedKeyValueStore(name, Duration.ofMinutes(5)))
            .withKeySerde(S).withValueSerde(S);
    }

    private static void out(final KStream<String, String> s, final String topic) {
        s.to(topic, Produced.with(S, S));
    }

    private static final Map<String, Consumer<StreamsBuilder>> PIPELINES = new LinkedHashMap<>();

    static {
        PIPELINES.put("wordcount", b -> {
            final KStream<String, String> lines = stream(b, "input");
            final KStream<String, String> words = lines.flatMapValues(l -> Arrays.asList(l.toLowerCase().split(" ")));
            words.groupBy((k, w) -> w, Grouped.with(S, S))
                .count(countStore("counts"))
                .toStream().to("output", Produced.with(S, L));
        });
        PIPELINES.put("split-merge-table", b -> {
            final KStream<String, Long> orders = b.stream("orders", Consumed.with(S, L));
            final Map<String, KStream<String, Long>> br = orders.split(Named.as("size-"))
                .branch((k, a) -> a >= 1000, Branched.as("large"))
                .defaultBranch(Branched.as("small"));
            br.get("size-large").mapValues(a -> -a).merge(br.get("size-small"))
                .to("orders-flagged", Produced.with(S, L));
            final KTable<String, String> users = b.table("users", Consumed.with(S, S).withName("users"), store("users"));
            users.groupBy((user, region) -> KeyValue.pair(region, user), Grouped.with(S, S))
                .count(Named.as("users-per-region"), countStore("users-per-region"))
                .toStream().to("region-counts", Produced.with(S, L));
        });
        PIPELINES.put("wordcount-grouped-named", b -> {
            final KStream<String, String> lines = stream(b, "input");
            final KStream<String, String> words = lines.flatMapValues(l -> Arrays.asList(l.toLowerCase().split(" ")));
            words.groupBy((k, w) -> w, Grouped.with("by-word", S, S))
                .count()
                .toStream().to("output", Produced.with(S, L));
        });
        PIPELINES.put("table-groupby-named", b -> {
            final KTable<String, String> users = table(b, "users");
            users.groupBy((user, region) -> KeyValue.pair(region, user), Grouped.with("by-region", S, S))
                .count()
                .toStream().to("region-counts", Produced.with(S, L));
        });
        PIPELINES.put("windowed-count-final", b -> {
            final KStream<String, String> clicks = stream(b, "clicks");
            clicks.selectKey((k, v) -> v).groupByKey(Grouped.with(S, S))
                .windowedBy(TimeWindows.ofSizeAndGrace(Duration.ofMinutes(1), Duration.ofSeconds(10)))
                .emitStrategy(EmitStrategy.onWindowClose())
                .count()
                .toStream().to("region-clicks", Produced.with(WindowedSerdes.timeWindowedSerdeFrom(String.class, 60_000L), L));
        });

        PIPELINES.put("stream-repartition", b -> {
            stream(b, "input").repartition()
                .repartition(Repartitioned.<String, String>as("by-key").withNumberOfPartitions(3))
                .to("output", Produced.with(S, S));
        });
        PIPELINES.put("stream-aggregations", b -> {
            final KGroupedStream<String, String> g = stream(b, "input").groupByKey(Grouped.with(S, S));
            g.reduce((a, v) -> a + v, store("reduced")).toStream().to("reduced", Produced.with(S, S));
            g.aggregate(() -> 0L, (k, v, a) -> a + v.length(), Materialized.with(S, L)).toStream().to("aggregated", Produced.with(S, L));
            g.count(Named.as("counted"), countStore("counted")).toStream().to("counted", Produced.with(S, L));
        });
        PIPELINES.put("session-and-sliding", b -> {
            final KGroupedStream<String, String> g = stream(b, "input").groupByKey(Grouped.with(S, S));
            g.windowedBy(SessionWindows.ofInactivityGapAndGrace(Duration.ofMinutes(5), Duration.ofMinutes(1)))
                .count()
                .toStream().to("sessions", Produced.with(WindowedSerdes.sessionWindowedSerdeFrom(String.class), L));
            g.windowedBy(SlidingWindows.ofTimeDifferenceAndGrace(Duration.ofMinutes(1), Duration.ofSeconds(10)))
                .reduce((a, v) -> a + v)
                .toStream().to("sliding", Produced.with(WindowedSerdes.timeWindowedSerdeFrom(String.class, 60_000L), S));
        });
        PIPELINES.put("table-operations", b -> {
            final KTable<String, String> users = table(b, "users");
            users.filter((k, v) -> !v.isEmpty(), store("active"))
                .mapValues(v -> v.toUpperCase(), Named.as("upper"))
                .filterNot((k, v) -> v.startsWith("X"))
                .toStream().to("users-out", Produced.with(S, S));
            users.groupBy((k, v) -> KeyValue.pair(v, k), Grouped.with(S, S))
                .reduce((a, v) -> a + v, (a, v) -> a, store("reduced"))
                .toStream().to("reduced", Produced.with(S, S));
        });

        // Stream-table joins.
        PIPELINES.put("stream-table-join", b -> {
            final KStream<String, String> orders = stream(b, "orders");
            final KTable<String, String> users = table(b, "users");
            out(orders.join(users, J), "orders-enriched");
        });
        PIPELINES.put("stream-table-leftjoin", b -> {
            final KStream<String, String> orders = stream(b, "orders");
            final KTable<String, String> users = table(b, "users");
            out(orders.leftJoin(users, J), "orders-enriched");
        });
        PIPELINES.put("stream-table-join-rekeyed", b -> {
            final KStream<String, String> orders = stream(b, "orders");
            final KTable<String, String> users = table(b, "users");
            out(orders.selectKey((k, v) -> v).join(users, J), "orders-enriched");
        });
        PIPELINES.put("stream-table-leftjoin-rekeyed-named", b -> {
            final KStream<String, String> orders = stream(b, "orders");
            final KTable<String, String> users = table(b, "users");
            out(orders.selectKey((k, v) -> v).leftJoin(users, J, Joined.<String, String, String>with(S, S, S).withName("enrich")), "orders-enriched");
        });
        PIPELINES.put("stream-table-join-count", b -> {
            final KStream<String, String> orders = stream(b, "orders");
            final KTable<String, Long> totals = stream(b, "payments").groupByKey(Grouped.with(S, S)).count(countStore("payments-per-user"));
            out(orders.join(totals, (o, n) -> o + "," + n), "orders-enriched");
        });
        PIPELINES.put("stream-table-join-grace", b -> {
            final KStream<String, String> orders = stream(b, "orders");
            final KTable<String, String> users = b.table("users", Consumed.with(S, S), versioned("users-versioned"));
            out(orders.join(users, J, Joined.<String, String, String>with(S, S, S).withGracePeriod(Duration.ofMinutes(1))), "orders-enriched");
        });
        PIPELINES.put("stream-table-leftjoin-grace-named", b -> {
            final KStream<String, String> orders = stream(b, "orders");
            final KTable<String, String> users = b.table("users", Consumed.with(S, S), versioned("users-versioned")).filter((k, v) -> !v.isEmpty());
            out(orders.leftJoin(users, J, Joined.<String, String, String>with(S, S, S).withGracePeriod(Duration.ofMinutes(1)).withName("enrich")), "orders-enriched");
        });

        // Stream-stream joins.
        PIPELINES.put("stream-stream-join", b -> out(stream(b, "left").join(stream(b, "right"), J, W), "joined"));
        PIPELINES.put("stream-stream-leftjoin", b -> out(stream(b, "left").leftJoin(stream(b, "right"), J, W), "joined"));
        PIPELINES.put("stream-stream-outerjoin", b -> out(stream(b, "left").outerJoin(stream(b, "right"), J, W), "joined"));
        PIPELINES.put("stream-stream-join-before-after", b -> out(stream(b, "left").join(stream(b, "right"), J,
            JoinWindows.ofTimeDifferenceAndGrace(Duration.ofMinutes(10), Duration.ofMinutes(1)).before(Duration.ofMinutes(10)).after(Duration.ZERO)), "joined"));
        PIPELINES.put("stream-stream-join-named", b -> out(stream(b, "left").join(stream(b, "right"), J, W,
            StreamJoined.with(S, S, S).withName("pair").withStoreName("pair-store")), "joined"));
        PIPELINES.put("stream-stream-leftjoin-stores", b -> out(stream(b, "left").leftJoin(stream(b, "right"), J, W,
            StreamJoined.with(S, S, S).withStoreName("pair-store")), "joined"));
        PIPELINES.put("stream-stream-outerjoin-named", b -> out(stream(b, "left").outerJoin(stream(b, "right"), J, W,
            StreamJoined.with(S, S, S).withName("pair")), "joined"));
        PIPELINES.put("stream-stream-join-rekeyed", b -> {
            final KStream<String, String> left = stream(b, "left");
            final KStream<String, String> right = stream(b, "right");
            out(left.selectKey((k, v) -> v).join(right, J, W), "joined");
        });
        PIPELINES.put("stream-stream-self-join", b -> {
            final KStream<String, String> s = stream(b, "events");
            out(s.join(s, J, W), "joined");
        });

        // Table-table joins.
        PIPELINES.put("table-table-join", b -> table(b, "left").join(table(b, "right"), J).toStream().to("joined", Produced.with(S, S)));
        PIPELINES.put("table-table-leftjoin", b -> table(b, "left").leftJoin(table(b, "right"), J).toStream().to("joined", Produced.with(S, S)));
        PIPELINES.put("table-table-outerjoin", b -> table(b, "left").outerJoin(table(b, "right"), J).toStream().to("joined", Produced.with(S, S)));
        PIPELINES.put("table-table-join-materialized", b -> table(b, "left").join(table(b, "right"), J, store("joined-store"))
            .toStream().to("joined", Produced.with(S, S)));
        PIPELINES.put("table-table-leftjoin-named-materialized", b -> table(b, "left").leftJoin(table(b, "right"), J, Named.as("pair"), store("joined-store"))
            .toStream().to("joined", Produced.with(S, S)));
        PIPELINES.put("table-table-outerjoin-materialized", b -> table(b, "left").outerJoin(table(b, "right"), J, store("joined-store"))
            .toStream().to("joined", Produced.with(S, S)));
        PIPELINES.put("table-table-join-filter-mapvalues", b -> {
            final KTable<String, String> l = table(b, "left");
            final KTable<String, String> r = table(b, "right");
            l.filter((k, v) -> !v.isEmpty()).join(r.mapValues(v -> v.toUpperCase()), J).toStream().to("joined", Produced.with(S, S));
        });
        PIPELINES.put("table-table-join-filter-group-count", b -> {
            final KTable<String, String> l = table(b, "left");
            final KTable<String, String> r = table(b, "right");
            l.join(r, J).filter((k, v) -> !v.isEmpty())
                .groupBy((k, v) -> KeyValue.pair(v, k), Grouped.with(S, S))
                .count()
                .toStream().to("counts", Produced.with(S, L));
        });

        // Foreign-key table-table joins.
        PIPELINES.put("table-table-fk-join", b -> table(b, "orders").join(table(b, "customers"), v -> v.split(",")[0], J)
            .toStream().to("joined", Produced.with(S, S)));
        PIPELINES.put("table-table-fk-leftjoin-named-materialized", b -> table(b, "orders").leftJoin(table(b, "customers"), v -> v.split(",")[0], J,
                TableJoined.as("enrich"), store("enriched-store"))
            .toStream().to("joined", Produced.with(S, S)));
        PIPELINES.put("table-table-fk-join-group-count", b -> table(b, "orders").join(table(b, "customers"), v -> v.split(",")[0], J)
            .groupBy((k, v) -> KeyValue.pair(v, k), Grouped.with(S, S))
            .count()
            .toStream().to("counts", Produced.with(S, L)));

        // Global tables.
        PIPELINES.put("global-join", b -> {
            final KStream<String, String> orders = stream(b, "orders");
            final GlobalKTable<String, String> products = b.globalTable("products", Consumed.with(S, S));
            out(orders.join(products, (k, v) -> v, J), "orders-enriched");
        });
        PIPELINES.put("global-leftjoin", b -> {
            final KStream<String, String> orders = stream(b, "orders");
            final GlobalKTable<String, String> products = b.globalTable("products", Consumed.with(S, S));
            out(orders.leftJoin(products, (k, v) -> v, J, Named.as("enrich")), "orders-enriched");
        });
        PIPELINES.put("global-join-named-store", b -> {
            final KStream<String, String> orders = stream(b, "orders");
            final GlobalKTable<String, String> products = b.globalTable("products", Consumed.with(S, S).withName("products"), store("products"));
            out(orders.join(products, (k, v) -> v, J), "orders-enriched");
        });

        // Suppress.
        PIPELINES.put("suppress-window-final", b -> stream(b, "clicks").groupByKey(Grouped.with(S, S))
            .windowedBy(TimeWindows.ofSizeAndGrace(Duration.ofMinutes(1), Duration.ofSeconds(10)))
            .count()
            .suppress(Suppressed.untilWindowCloses(Suppressed.BufferConfig.unbounded()))
            .toStream().to("final-counts", Produced.with(WindowedSerdes.timeWindowedSerdeFrom(String.class, 60_000L), L)));
        PIPELINES.put("suppress-time-limit-named", b -> table(b, "users")
            .groupBy((k, v) -> KeyValue.pair(v, k), Grouped.with(S, S))
            .count()
            .suppress(Suppressed.untilTimeLimit(Duration.ofMinutes(1), Suppressed.BufferConfig.maxRecords(100).emitEarlyWhenFull()).withName("limited"))
            .toStream().to("region-counts", Produced.with(S, L)));
        PIPELINES.put("suppress-before-join", b -> table(b, "left")
            .outerJoin(table(b, "right").suppress(Suppressed.untilTimeLimit(Duration.ofMillis(10), Suppressed.BufferConfig.unbounded())), J)
            .toStream().to("joined", Produced.with(S, S)));
        PIPELINES.put("suppress-session-filter", b -> stream(b, "input").groupByKey(Grouped.with(S, S))
            .windowedBy(SessionWindows.ofInactivityGapAndGrace(Duration.ofMinutes(5), Duration.ofMinutes(1)))
            .count()
            .filter((k, v) -> v > 1)
            .suppress(Suppressed.untilWindowCloses(Suppressed.BufferConfig.maxRecords(1000).shutDownWhenFull()))
            .toStream().to("sessions", Produced.with(WindowedSerdes.sessionWindowedSerdeFrom(String.class), L)));

        // The pipeline of examples/clickstream.
        PIPELINES.put("clickstream", b -> {
            final KTable<String, String> users = table(b, "users");
            final GlobalKTable<String, String> pages = b.globalTable("pages", Consumed.with(S, S));
            final KStream<String, String> clicks = stream(b, "clicks");
            final KStream<String, String> purchases = stream(b, "purchases");
            final KStream<String, String> enriched = clicks.join(users, J).leftJoin(pages, (k, v) -> v, J);
            out(enriched, "clicks-enriched");
            final KTable<Windowed<String>, Long> counts = enriched.selectKey((k, v) -> v).groupByKey(Grouped.with(S, S))
                .windowedBy(TimeWindows.ofSizeAndGrace(Duration.ofMinutes(1), Duration.ofSeconds(10)))
                .emitStrategy(EmitStrategy.onWindowClose())
                .count();
            out(counts.toStream().map((w, n) -> KeyValue.pair(w.key(), w.window().start() + "," + n)), "region-clicks");
            out(purchases.join(clicks, J,
                JoinWindows.ofTimeDifferenceAndGrace(Duration.ofMinutes(10), Duration.ofMinutes(1)).before(Duration.ofMinutes(10)).after(Duration.ZERO)),
                "attributed-purchases");
        });
    }

    public static void main(final String[] args) throws IOException {
        if (args.length != 1) {
            System.err.println("usage: DescribeTopologies OUTDIR");
            System.exit(2);
        }
        final Path dir = Paths.get(args[0]);
        Files.createDirectories(dir);
        for (final Map.Entry<String, Consumer<StreamsBuilder>> e : PIPELINES.entrySet()) {
            final StreamsBuilder b = new StreamsBuilder();
            e.getValue().accept(b);
            final String description = b.build().describe().toString();
            Files.write(dir.resolve(e.getKey() + ".txt"), description.getBytes(StandardCharsets.UTF_8));
        }
    }
}
