// FKWireGolden prints the bytes Kafka Streams 4.3.1's own classes make for
// the wire formats of a foreign-key join: Murmur3.hash128, the
// SubscriptionWrapperSerde (versions 0 and 1), the
// SubscriptionResponseWrapperSerde and the CombinedKeySchema. Its output is
// golden.txt beside it, which TestFKWireGolden (internal/nodes) checks
// Sluice's encoders and decoders against:
//
//	javac -cp 'JARS/*' -d /tmp/golden FKWireGolden.java
//	java -cp "JARS/*:/tmp/golden" org.apache.kafka.streams.kstream.internals.foreignkeyjoin.FKWireGolden > golden.txt
//
// with JARS holding org.apache.kafka:kafka-streams:4.3.1 and its
// dependencies. It is in Kafka Streams' package to reach the
// package-private CombinedKeySchema.toBytes.
package org.apache.kafka.streams.kstream.internals.foreignkeyjoin;

import java.nio.charset.StandardCharsets;

import org.apache.kafka.common.header.internals.RecordHeaders;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.streams.state.internals.Murmur3;

public class FKWireGolden {
    static String hex(byte[] b) {
        if (b.length == 0) {
            return "-";
        }
        StringBuilder sb = new StringBuilder();
        for (byte x : b) {
            sb.append(String.format("%02x", x));
        }
        return sb.toString();
    }

    public static void main(String[] args) {
        String[] inputs = {"", "a", "lhsValue1|rhs1", "0123456789abcde", "0123456789abcdef", "0123456789abcdef0",
            "the quick brown fox jumps over the lazy dog, 33 bytes+", "\u00ff\u00fe\u0080 high bytes \u00e9"};
        for (String in : inputs) {
            byte[] b = in.getBytes(StandardCharsets.UTF_8);
            long[] h = Murmur3.hash128(b);
            System.out.println("hash128 " + hex(b) + " " + h[0] + " " + h[1]);
        }
        SubscriptionWrapperSerde<String> subs = new SubscriptionWrapperSerde<>(() -> "t", Serdes.String());
        RecordHeaders hs = new RecordHeaders();
        long[] hash = Murmur3.hash128("lhsValue1|rhs1".getBytes(StandardCharsets.UTF_8));
        for (SubscriptionWrapper.Instruction in : SubscriptionWrapper.Instruction.values()) {
            SubscriptionWrapper<String> w = new SubscriptionWrapper<>(hash, in, "lhs1", 3);
            System.out.println("subscription v1 hash " + in.value() + " lhs1 3 " + hex(subs.serializer().serialize("t", hs, w)));
        }
        SubscriptionWrapper<String> noHash = new SubscriptionWrapper<>(null, SubscriptionWrapper.Instruction.PROPAGATE_NULL_IF_NO_FK_VAL_AVAILABLE, "k", 2147483647);
        System.out.println("subscription v1 nohash 2 k 2147483647 " + hex(subs.serializer().serialize("t", hs, noHash)));
        SubscriptionWrapper<String> v0 = new SubscriptionWrapper<>(hash, SubscriptionWrapper.Instruction.DELETE_KEY_AND_PROPAGATE, "lhs1", (byte) 0, null);
        System.out.println("subscription v0 hash 1 lhs1 - " + hex(subs.serializer().serialize("t", hs, v0)));

        SubscriptionResponseWrapperSerde<String> resp = new SubscriptionResponseWrapperSerde<>(Serdes.String());
        System.out.println("response hash rhsValue1 " + hex(resp.serializer().serialize("t", hs, new SubscriptionResponseWrapper<>(hash, "rhsValue1", 1))));
        System.out.println("response hash - " + hex(resp.serializer().serialize("t", hs, new SubscriptionResponseWrapper<>(hash, null, 1))));
        System.out.println("response nohash - " + hex(resp.serializer().serialize("t", hs, new SubscriptionResponseWrapper<String>(null, null, 1))));
        System.out.println("response nohash v " + hex(resp.serializer().serialize("t", hs, new SubscriptionResponseWrapper<>(null, "v", 1))));

        CombinedKeySchema<String, String> ck = new CombinedKeySchema<>(() -> "fk", Serdes.String(), () -> "pk", Serdes.String());
        ck.init(null);
        System.out.println("combined rhs1 lhs1 " + hex(ck.toBytes("rhs1", "lhs1", hs).get()));
        System.out.println("prefix rhs1 " + hex(ck.prefixBytes("rhs1", hs).get()));
    }
}
