// ReadWithKafkaStreams reads topics a Sluice application wrote and decodes
// them with Kafka Streams' own classes, as a Kafka Streams 4.3.1
// application restoring those changelogs or consuming those outputs would.
// The Go test runtime/compat_kafka_test.go runs it (through
// scripts/kafka.sh compat) and compares what it prints with what Sluice
// meant to write.
//
// Usage: ReadWithKafkaStreams BOOTSTRAP KIND:TOPIC[:WINDOW_SIZE_MS]...
//
// Keys are Strings and values Longs (Serdes.String(), Serdes.Long()). KIND:
//   kv-changelog       timestamped key-value store changelog: the record is
//                      converted as Kafka Streams restores it
//                      (RecordConverters.rawValueToTimestampedValue) and
//                      decoded with ValueAndTimestampSerde
//   window-changelog   timestamped window store changelog: key by
//                      WindowKeySchema.fromStoreKey, value as above
//   session-changelog  session store changelog: key by SessionKeySchema.from,
//                      value raw (RecordConverters.identity)
//   time-windowed      output of time-windowed keys: TimeWindowedDeserializer,
//                      and the partition WindowedStreamPartitioner chooses
//   session-windowed   output of session-windowed keys:
//                      SessionWindowedDeserializer, and the partition
//                      WindowedStreamPartitioner chooses
//   fk-subscription-changelog
//                      changelog of a foreign-key join's subscription
//                      store (String primary and foreign keys): the key by
//                      CombinedKeySchema.fromBytes, printed "fk/pk"; the
//                      value restored as a timestamped one and decoded by
//                      SubscriptionWrapperSerde, printed as the
//                      instruction (window start column), the primary
//                      partition (window end column) and the hash as
//                      "h0,h1" (value column)
//
// It prints one tab-separated line per record: kind, topic, partition,
// offset, record timestamp, key, window start, window end, value ("null"
// for a tombstone), the value's timestamp, the partition Kafka Streams
// would write the record to ("-" where not applicable).
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;

import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.PartitionInfo;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.Deserializer;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;
import org.apache.kafka.common.utils.Bytes;
import org.apache.kafka.streams.kstream.SessionWindowedDeserializer;
import org.apache.kafka.streams.kstream.SessionWindowedSerializer;
import org.apache.kafka.streams.kstream.TimeWindowedDeserializer;
import org.apache.kafka.streams.kstream.TimeWindowedSerializer;
import org.apache.kafka.streams.kstream.Windowed;
import org.apache.kafka.streams.kstream.internals.WindowedSerializer;
import org.apache.kafka.streams.kstream.internals.WindowedStreamPartitioner;
import org.apache.kafka.streams.kstream.internals.foreignkeyjoin.CombinedKey;
import org.apache.kafka.streams.kstream.internals.foreignkeyjoin.CombinedKeySchema;
import org.apache.kafka.streams.kstream.internals.foreignkeyjoin.SubscriptionWrapper;
import org.apache.kafka.streams.kstream.internals.foreignkeyjoin.SubscriptionWrapperSerde;
import org.apache.kafka.streams.state.ValueAndTimestamp;
import org.apache.kafka.streams.state.internals.RecordConverter;
import org.apache.kafka.streams.state.internals.RecordConverters;
import org.apache.kafka.streams.state.internals.SessionKeySchema;
import org.apache.kafka.streams.state.internals.ValueAndTimestampSerde;
import org.apache.kafka.streams.state.internals.WindowKeySchema;

public final class ReadWithKafkaStreams {
    private static final Deserializer<String> KEYS = new StringDeserializer();
    private static final Deserializer<Long> VALUES = Serdes.Long().deserializer();
    private static final Deserializer<ValueAndTimestamp<Long>> TIMESTAMPED =
        new ValueAndTimestampSerde<>(Serdes.Long()).deserializer();

    private static final CombinedKeySchema<String, String> FK_KEYS =
        new CombinedKeySchema<>(() -> "fk", Serdes.String(), () -> "pk", Serdes.String());
    private static final Deserializer<SubscriptionWrapper<String>> SUBSCRIPTIONS =
        new SubscriptionWrapperSerde<>(() -> "pk", Serdes.String()).deserializer();

    static {
        FK_KEYS.init(null);
    }

    public static void main(final String[] args) throws Exception {
        if (args.length < 2) {
            System.err.println("usage: ReadWithKafkaStreams BOOTSTRAP KIND:TOPIC[:WINDOW_SIZE_MS]...");
            System.exit(2);
        }
        final Properties props = new Properties();
        props.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, args[0]);
        props.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        try (KafkaConsumer<byte[], byte[]> consumer =
                 new KafkaConsumer<>(props, new ByteArrayDeserializer(), new ByteArrayDeserializer())) {
            for (int i = 1; i < args.length; i++) {
                final String[] spec = args[i].split(":");
                final long size = spec.length > 2 ? Long.parseLong(spec[2]) : 0;
                read(consumer, spec[0], spec[1], size);
            }
        }
    }

    private static void read(final KafkaConsumer<byte[], byte[]> consumer, final String kind, final String topic, final long size) {
        final List<TopicPartition> tps = new ArrayList<>();
        for (final PartitionInfo p : consumer.partitionsFor(topic, Duration.ofSeconds(30))) {
            tps.add(new TopicPartition(topic, p.partition()));
        }
        consumer.assign(tps);
        consumer.seekToBeginning(tps);
        final Map<TopicPartition, Long> ends = consumer.endOffsets(tps, Duration.ofSeconds(30));
        final Map<TopicPartition, Long> left = new HashMap<>(ends);
        left.entrySet().removeIf(e -> consumer.position(e.getKey(), Duration.ofSeconds(30)) >= e.getValue());
        final long deadline = System.currentTimeMillis() + 60_000;
        while (!left.isEmpty()) {
            if (System.currentTimeMillis() > deadline) {
                throw new IllegalStateException("topic " + topic + ": not all records read within 60 s, missing " + left);
            }
            for (final ConsumerRecord<byte[], byte[]> r : consumer.poll(Duration.ofMillis(200))) {
                final TopicPartition tp = new TopicPartition(r.topic(), r.partition());
                if (r.offset() < ends.get(tp)) {
                    System.out.println(decode(kind, r, size, tps.size()));
                }
            }
            left.entrySet().removeIf(e -> consumer.position(e.getKey()) >= e.getValue());
        }
    }

    private static String decode(final String kind, final ConsumerRecord<byte[], byte[]> r, final long size, final int partitions) {
        String key;
        String start = "-";
        String end = "-";
        String value = "null";
        String valueTs = "-";
        String partition = "-";
        switch (kind) {
            case "kv-changelog": {
                key = KEYS.deserialize(r.topic(), r.headers(), r.key());
                final ValueAndTimestamp<Long> vt = timestamped(r);
                if (vt != null) {
                    value = vt.value().toString();
                    valueTs = Long.toString(vt.timestamp());
                }
                break;
            }
            case "window-changelog": {
                final Windowed<String> w = WindowKeySchema.fromStoreKey(r.key(), size, KEYS, r.headers(), r.topic());
                key = w.key();
                start = Long.toString(w.window().start());
                end = Long.toString(w.window().end());
                final ValueAndTimestamp<Long> vt = timestamped(r);
                if (vt != null) {
                    value = vt.value().toString();
                    valueTs = Long.toString(vt.timestamp());
                }
                break;
            }
            case "session-changelog": {
                final Windowed<String> w = SessionKeySchema.from(r.key(), KEYS, r.headers(), r.topic());
                key = w.key();
                start = Long.toString(w.window().start());
                end = Long.toString(w.window().end());
                final ConsumerRecord<byte[], byte[]> restored = RecordConverters.identity().convert(r);
                if (restored.value() != null) {
                    value = VALUES.deserialize(r.topic(), r.headers(), restored.value()).toString();
                }
                break;
            }
            case "time-windowed":
            case "session-windowed": {
                final Deserializer<Windowed<String>> keys;
                final WindowedSerializer<String> serializer;
                if (kind.equals("time-windowed")) {
                    keys = new TimeWindowedDeserializer<>(new StringDeserializer(), size);
                    serializer = new TimeWindowedSerializer<>(new StringSerializer());
                } else {
                    keys = new SessionWindowedDeserializer<>(new StringDeserializer());
                    serializer = new SessionWindowedSerializer<>(new StringSerializer());
                }
                final Windowed<String> w = keys.deserialize(r.topic(), r.headers(), r.key());
                key = w.key();
                start = Long.toString(w.window().start());
                end = Long.toString(w.window().end());
                Long v = null;
                if (r.value() != null) {
                    v = VALUES.deserialize(r.topic(), r.headers(), r.value());
                    value = v.toString();
                }
                partition = new WindowedStreamPartitioner<String, Long>(serializer)
                    .partitions(r.topic(), w, v, partitions).orElseThrow().iterator().next().toString();
                break;
            }
            case "fk-subscription-changelog": {
                final CombinedKey<String, String> ck = FK_KEYS.fromBytes(Bytes.wrap(r.key()), r.headers());
                key = ck.foreignKey() + "/" + ck.primaryKey();
                final ConsumerRecord<byte[], byte[]> restored = RecordConverters.rawValueToTimestampedValue().convert(r);
                if (restored.value() != null) {
                    // The timestamp the restore put in front, then the
                    // subscription (whose deserializer needs the headers).
                    final java.nio.ByteBuffer buf = java.nio.ByteBuffer.wrap(restored.value());
                    final long ts = buf.getLong();
                    final byte[] raw = new byte[buf.remaining()];
                    buf.get(raw);
                    final SubscriptionWrapper<String> w = SUBSCRIPTIONS.deserialize(r.topic(), restored.headers(), raw);
                    start = w.instruction().name();
                    end = String.valueOf(w.primaryPartition());
                    value = w.hash() == null ? "nohash" : w.hash()[0] + "," + w.hash()[1];
                    valueTs = Long.toString(ts);
                }
                break;
            }
            default:
                throw new IllegalArgumentException("unknown kind " + kind);
        }
        return String.join("\t", kind, r.topic(), Integer.toString(r.partition()), Long.toString(r.offset()),
            Long.toString(r.timestamp()), key, start, end, value, valueTs, partition);
    }

    // timestamped converts a changelog record of a timestamped store as
    // Kafka Streams restores it and decodes the store's value.
    private static ValueAndTimestamp<Long> timestamped(final ConsumerRecord<byte[], byte[]> r) {
        final RecordConverter converter = RecordConverters.rawValueToTimestampedValue();
        final ConsumerRecord<byte[], byte[]> restored = converter.convert(r);
        if (restored.value() == null) {
            return null;
        }
        return TIMESTAMPED.deserialize(r.topic(), restored.headers(), restored.value());
    }
}
