// SuppressTakeover runs, as a Kafka Streams 4.3.1 application, the pipeline
// of runtime/suppress_compat_kafka_test.go's Sluice application, with the
// same application ID, store names and changelog topics: a window count in
// the store "counts", suppressed until the windows close in the buffer
// "final-store".
//
// In mode "emit", started after the Sluice application stopped, it
// restores both stores from the changelogs Sluice wrote (the buffer from
// Sluice's suppression buffer changelog: Kafka Streams'
// InMemoryTimeOrderedKeyValueChangeBuffer.restoreBatch reads it), consumes
// the input from the offsets Sluice committed, and prints each final window
// it emits as "key@start=count", one per line, sorted, once it has emitted
// N of them (or fails after a minute).
//
// In mode "buffer" it processes input until the count has forwarded N
// updates to the buffer, then closes, which commits: its buffer changelog
// then holds what it buffered, for a Sluice application to take over.
//
// An exception of a stream thread (a buffer record it cannot restore, say)
// ends it with exit code 1.
//
// Usage: SuppressTakeover emit|buffer BOOTSTRAP APPLICATION_ID INPUT OUTPUT WINDOW_SIZE_MS STATE_DIR N
// (run by scripts/kafka.sh java SuppressTakeover ...).
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Properties;
import java.util.concurrent.atomic.AtomicReference;

import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.streams.CloseOptions;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.errors.StreamsUncaughtExceptionHandler;
import org.apache.kafka.streams.kstream.Consumed;
import org.apache.kafka.streams.kstream.Grouped;
import org.apache.kafka.streams.kstream.Materialized;
import org.apache.kafka.streams.kstream.Produced;
import org.apache.kafka.streams.kstream.Suppressed;
import org.apache.kafka.streams.kstream.TimeWindows;
import org.apache.kafka.streams.kstream.WindowedSerdes;
import org.apache.kafka.streams.state.Stores;

public final class SuppressTakeover {
    public static void main(final String[] args) throws Exception {
        if (args.length != 8 || !(args[0].equals("emit") || args[0].equals("buffer"))) {
            System.err.println("usage: SuppressTakeover emit|buffer BOOTSTRAP APPLICATION_ID INPUT OUTPUT WINDOW_SIZE_MS STATE_DIR N");
            System.exit(2);
        }
        final boolean emit = args[0].equals("emit");
        final String[] a = java.util.Arrays.copyOfRange(args, 1, args.length);
        final long size = Long.parseLong(a[4]);
        final int want = Integer.parseInt(a[6]);
        final Properties p = new Properties();
        p.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, a[0]);
        p.put(StreamsConfig.APPLICATION_ID_CONFIG, a[1]);
        p.put(StreamsConfig.STATE_DIR_CONFIG, a[5]);
        p.put(StreamsConfig.COMMIT_INTERVAL_MS_CONFIG, 100);
        p.put(StreamsConfig.consumerPrefix(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG), "earliest");

        final List<String> emitted = Collections.synchronizedList(new ArrayList<>());
        final List<String> updates = Collections.synchronizedList(new ArrayList<>());
        final List<String> seen = emit ? emitted : updates;
        final StreamsBuilder b = new StreamsBuilder();
        b.stream(a[2], Consumed.with(Serdes.String(), Serdes.String()))
            .groupByKey(Grouped.with(Serdes.String(), Serdes.String()))
            .windowedBy(TimeWindows.ofSizeAndGrace(Duration.ofMillis(size), Duration.ZERO))
            // In memory: the compat jars have no RocksDB (a window store
            // restores from the same changelog either way).
            .count(Materialized.<String, Long>as(Stores.inMemoryWindowStore("counts", Duration.ofHours(1), Duration.ofMillis(size), false))
                .withKeySerde(Serdes.String()).withValueSerde(Serdes.Long()))
            .filter((k, v) -> {
                updates.add(k.key() + "@" + k.window().start() + "=" + v);
                return true;
            })
            .suppress(Suppressed.untilWindowCloses(Suppressed.BufferConfig.unbounded()).withName("final"))
            .toStream()
            .peek((k, v) -> emitted.add(k.key() + "@" + k.window().start() + "=" + v))
            .to(a[3], Produced.with(WindowedSerdes.timeWindowedSerdeFrom(String.class, size), Serdes.Long()));

        final AtomicReference<Throwable> failed = new AtomicReference<>();
        final KafkaStreams streams = new KafkaStreams(b.build(), p);
        try {
            streams.setUncaughtExceptionHandler(e -> {
                failed.set(e);
                return StreamsUncaughtExceptionHandler.StreamThreadExceptionResponse.SHUTDOWN_CLIENT;
            });
            streams.start();
            final long deadline = System.currentTimeMillis() + 60_000;
            while (seen.size() < want && failed.get() == null && System.currentTimeMillis() < deadline) {
                Thread.sleep(50);
            }
            if (failed.get() != null) {
                System.err.println("Kafka Streams failed: " + failed.get());
                failed.get().printStackTrace();
                System.exit(1);
            }
            final List<String> out;
            synchronized (seen) {
                out = new ArrayList<>(seen);
            }
            Collections.sort(out);
            for (final String s : out) {
                System.out.println(s);
            }
        } finally {
            // Leave the group, so that the next member (a Sluice
            // application, with its own group protocol) can join at once.
            streams.close(CloseOptions.groupMembershipOperation(CloseOptions.GroupMembershipOperation.LEAVE_GROUP)
                .withTimeout(Duration.ofSeconds(30)));
        }
    }
}
