// FKSelfJoinOracle runs TestForeignKeySelfJoin's pipeline (dsl/fkjoin_test.go,
// a table left-joined with itself by a foreign key) through Kafka Streams
// 4.3.1's TopologyTestDriver and prints its output, the test's expectation:
//
//	javac -cp 'JARS/*' -d /tmp/oracle FKSelfJoinOracle.java
//	java -cp "JARS/*:/tmp/oracle" FKSelfJoinOracle
//
// with JARS holding org.apache.kafka:kafka-streams-test-utils:4.3.1 and its
// dependencies.
import java.util.Properties;
import org.apache.kafka.common.serialization.*;
import org.apache.kafka.streams.*;
import org.apache.kafka.streams.kstream.*;
import org.apache.kafka.streams.test.TestRecord;
public class FKSelfJoinOracle {
    public static void main(String[] a) {
        StreamsBuilder b = new StreamsBuilder();
        KTable<String, String> e = b.table("employees", Consumed.with(Serdes.String(), Serdes.String()));
        e.leftJoin(e, v -> { String m = v.split(",", -1)[0]; return m.isEmpty() ? null : m; },
            (v, m) -> v.split(",", -1)[1] + " under " + (m == null ? "none" : m.split(",", -1)[1]))
            .toStream().to("org", Produced.with(Serdes.String(), Serdes.String()));
        Properties p = new Properties();
        p.put(StreamsConfig.APPLICATION_ID_CONFIG, "x");
        p.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, "dummy:0");
        p.put(StreamsConfig.STATE_DIR_CONFIG, System.getProperty("java.io.tmpdir") + "/fk-selfjoin-oracle");
        try (TopologyTestDriver d = new TopologyTestDriver(b.build(), p)) {
            TestInputTopic<String, String> in = d.createInputTopic("employees", new StringSerializer(), new StringSerializer());
            TestOutputTopic<String, String> out = d.createOutputTopic("org", new StringDeserializer(), new StringDeserializer());
            in.pipeInput(new TestRecord<>("ann", ",ceo", null, 1L));
            in.pipeInput(new TestRecord<>("bob", "ann,cto", null, 2L));
            in.pipeInput(new TestRecord<>("cy", "bob,dev", null, 3L));
            in.pipeInput(new TestRecord<>("bob", "ann,vp", null, 4L));
            for (TestRecord<String, String> r : out.readRecordsToList()) System.out.println(r.key() + "=" + r.value() + "@" + r.timestamp());
        }
    }
}
