// BufferLayout prints, in hex, the changelog key and value Kafka Streams
// 4.3.1's RocksDBTimeOrderedKeyValueBuffer logs for one stream record (the
// grace buffer of a stream-table join): TestJoinBufferLayout
// (internal/nodes) holds them, and checks Sluice's buffer writes the same
// bytes. It lives in Kafka Streams' package to reach BufferValue.
//
//	javac -cp 'JARS/*' -d /tmp/bl dsl/testdata/versioned/oracle/BufferLayout.java
//	java -cp "JARS/*:/tmp/bl" org.apache.kafka.streams.state.internals.BufferLayout
//
// The record: key "user-1", value "click", timestamp 1700000000123, offset
// 42 of partition 3 of topic "clicks", headers h1=v1 and h2=null, seqnum 7.
package org.apache.kafka.streams.state.internals;

import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;

import org.apache.kafka.common.header.internals.RecordHeaders;
import org.apache.kafka.common.utils.Bytes;
import org.apache.kafka.streams.processor.internals.ProcessorRecordContext;

public class BufferLayout {
    public static void main(String[] args) {
        RecordHeaders headers = new RecordHeaders();
        headers.add("h1", "v1".getBytes(StandardCharsets.UTF_8));
        headers.add("h2", null);
        ProcessorRecordContext ctx = new ProcessorRecordContext(1700000000123L, 42L, 3, "clicks", headers);
        Bytes key = PrefixedWindowKeySchemas.TimeFirstWindowKeySchema.toStoreKeyBinary(
            Bytes.wrap("user-1".getBytes(StandardCharsets.UTF_8)), 1700000000123L, 7);
        BufferValue v = new BufferValue(null, null, "click".getBytes(StandardCharsets.UTF_8), ctx);
        // RocksDBTimeOrderedKeyValueBuffer.logValue: the value with the
        // buffer time (BufferKey(0L, key).time()) after it.
        ByteBuffer b = v.serialize(Long.BYTES);
        b.putLong(0L);
        System.out.println(hex(key.get()));
        System.out.println(hex(b.array()));
    }

    static String hex(byte[] b) {
        StringBuilder sb = new StringBuilder();
        for (byte x : b) {
            sb.append(String.format("%02x", x));
        }
        return sb.toString();
    }
}
