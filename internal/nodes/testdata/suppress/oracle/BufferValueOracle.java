// BufferValueOracle prints, in hex, the changelog values Kafka Streams
// 4.3.1's InMemoryTimeOrderedKeyValueChangeBuffer.logValue writes for a few
// buffer entries (BufferValue.serialize(8) then the buffer time): the
// golden values of internal/nodes' TestBufferEntryKafkaStreamsFormat. It
// is in Kafka Streams' package to reach the package-private BufferValue.
// Run with the jars of Kafka Streams 4.3.1 in JARS (org.apache.kafka:kafka-streams:4.3.1
// and its dependencies, e.g. mvn dependency:copy-dependencies -DoutputDirectory=JARS):
//
//   javac -cp 'JARS/*' -d /tmp/oc BufferValueOracle.java
//   java -cp 'JARS/*:/tmp/oc' org.apache.kafka.streams.state.internals.BufferValueOracle
package org.apache.kafka.streams.state.internals;

import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;

import org.apache.kafka.common.header.internals.RecordHeaders;
import org.apache.kafka.streams.processor.internals.ProcessorRecordContext;

public class BufferValueOracle {
    private static byte[] b(final String s) {
        return s == null ? null : s.getBytes(StandardCharsets.UTF_8);
    }

    private static void print(final String name, final BufferValue v, final long time) {
        final ByteBuffer buf = v.serialize(Long.BYTES);
        buf.putLong(time);
        final StringBuilder sb = new StringBuilder();
        for (final byte x : buf.array()) {
            sb.append(String.format("%02x", x));
        }
        System.out.println(name + " " + sb + " " + v.residentMemorySizeEstimate());
    }

    public static void main(final String[] args) {
        // a new key: no prior, no old value
        print("insert", new BufferValue(null, null, b("x"), new ProcessorRecordContext(0L, 0L, 0, "in", new RecordHeaders())), 0L);
        // an update whose old value is the prior value, with headers
        final RecordHeaders hs = new RecordHeaders();
        hs.add("h", b("v"));
        hs.add("n", null);
        print("update", new BufferValue(b("p"), b("p"), b("new"), new ProcessorRecordContext(7L, 42L, 3, "topic", hs)), 100L);
        // a later update: prior, old and new all differ
        print("later", new BufferValue(b("p"), b("o"), b("n"), new ProcessorRecordContext(8L, 43L, 1, "t", new RecordHeaders())), 100L);
        // an empty old value is not the null prior value
        print("empty-old", new BufferValue(null, b(""), b("x"), new ProcessorRecordContext(0L, 0L, 0, "in", new RecordHeaders())), 0L);
        // an empty old value equal to an empty prior value
        print("empty-both", new BufferValue(b(""), b(""), b("x"), new ProcessorRecordContext(0L, 0L, 0, "in", new RecordHeaders())), 0L);
        // a delete of a buffered key
        print("delete", new BufferValue(b("p"), b("o"), null, new ProcessorRecordContext(9L, 44L, 0, "t", new RecordHeaders())), -5L);
    }
}
