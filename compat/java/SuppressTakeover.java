// SuppressTakeover runs, as a Kafka Streams 4.3.1 application, the pipeline
// of runtime/suppress_compat_kafka_test.go's Sluice application, with the
// same application ID, store names and changelog topics: a window count in
// the store "counts", suppressed until the windows close in the buffer
// "final-store". Started after the Sluice application stopped, it restores
// both stores from the changelogs Sluice wrote (the buffer from Sluice's
// suppression buffer changelog: Kafka Streams' InMemoryTimeOrderedKeyValue
// ChangeBuffer.restoreBatch reads it), consumes the input from the offsets
// Sluice committed, and prints each final window it emits as
// "key@start=count", one per line, sorted, once it has emitted WANT of
// them (or fails after a minute). An exception of a stream thread (a
// buffer record it cannot restore, say) ends it with exit code 1.
//
// Usage: SuppressTakeover BOOTSTRAP APPLICATION_ID INPUT OUTPUT WINDOW_SIZE_MS STATE_DIR WANT
// (run by scripts/kafka.sh java SuppressTakeover ...).
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Properties;
import java.util.concurrent.atomic.AtomicReference;

import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.common.serialization.Serdes;
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
        if (args.length != 7) {
            System.err.println("usage: SuppressTakeover BOOTSTRAP APPLICATION_ID INPUT OUTPUT WINDOW_SIZE_MS STATE_DIR WANT");
            System.exit(2);
        }
        final long size = Long.parseLong(args[4]);
        final int want = Integer.parseInt(args[6]);
        final Properties p = new Properties();
        p.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, args[0]);
        p.put(StreamsConfig.APPLICATION_ID_CONFIG, args[1]);
        p.put(StreamsConfig.STATE_DIR_CONFIG, args[5]);
        p.put(StreamsConfig.COMMIT_INTERVAL_MS_CONFIG, 100);
        p.put(StreamsConfig.consumerPrefix(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG), "earliest");

        final List<String> emitted = Collections.synchronizedList(new ArrayList<>());
        final StreamsBuilder b = new StreamsBuilder();
        b.stream(args[2], Consumed.with(Serdes.String(), Serdes.String()))
            .groupByKey(Grouped.with(Serdes.String(), Serdes.String()))
            .windowedBy(TimeWindows.ofSizeAndGrace(Duration.ofMillis(size), Duration.ZERO))
            // In memory: the compat jars have no RocksDB (a window store
            // restores from the same changelog either way).
            .count(Materialized.<String, Long>as(Stores.inMemoryWindowStore("counts", Duration.ofHours(1), Duration.ofMillis(size), false))
                .withKeySerde(Serdes.String()).withValueSerde(Serdes.Long()))
            .suppress(Suppressed.untilWindowCloses(Suppressed.BufferConfig.unbounded()).withName("final"))
            .toStream()
            .peek((k, v) -> emitted.add(k.key() + "@" + k.window().start() + "=" + v))
            .to(args[3], Produced.with(WindowedSerdes.timeWindowedSerdeFrom(String.class, size), Serdes.Long()));

        final AtomicReference<Throwable> failed = new AtomicReference<>();
        try (KafkaStreams streams = new KafkaStreams(b.build(), p)) {
            streams.setUncaughtExceptionHandler(e -> {
                failed.set(e);
                return StreamsUncaughtExceptionHandler.StreamThreadExceptionResponse.SHUTDOWN_CLIENT;
            });
            streams.start();
            final long deadline = System.currentTimeMillis() + 60_000;
            while (emitted.size() < want && failed.get() == null && System.currentTimeMillis() < deadline) {
                Thread.sleep(50);
            }
            if (failed.get() != null) {
                System.err.println("Kafka Streams failed: " + failed.get());
                failed.get().printStackTrace();
                System.exit(1);
            }
            final List<String> out;
            synchronized (emitted) {
                out = new ArrayList<>(emitted);
            }
            Collections.sort(out);
            for (final String s : out) {
                System.out.println(s);
            }
        }
    }
}
