// DeadLetterOracle runs, through Kafka Streams 4.3.1's TopologyTestDriver,
// the failures TestDeadLetterOracle (testdriver/errors_test.go) runs through
// Sluice's driver, and prints the dead-letter records Kafka Streams writes:
// a processor that throws on "bad", its stream-time punctuator (every 10 ms)
// that always throws, and an undecodable record (3 bytes for an int) with a
// header; LogAndContinue handlers with errors.dead.letter.queue.topic.name.
// Its output is oracle.txt next to it. Run with the jars of Kafka Streams
// 4.3.1 and its test utils (kafka-streams, kafka-streams-test-utils,
// kafka-clients and their dependencies) in DIR:
//
//	javac -cp 'DIR/*' -d /tmp/oc DeadLetterOracle.java
//	java -cp "DIR/*:/tmp/oc" DeadLetterOracle 2>/dev/null | grep -v '^SLF4J' > oracle.txt
//
// The stacktrace header is cut to its first line.
import java.time.Duration;
import java.time.Instant;
import java.util.Properties;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.serialization.*;
import org.apache.kafka.streams.*;
import org.apache.kafka.streams.errors.*;
import org.apache.kafka.streams.processor.PunctuationType;
import org.apache.kafka.streams.processor.api.*;
import org.apache.kafka.streams.test.TestRecord;

public class DeadLetterOracle {
  public static void main(String[] a) {
    Topology t = new Topology();
    t.addSource("src", new StringDeserializer(), new StringDeserializer(), "in");
    t.addProcessor("proc", () -> new Processor<String,String,String,String>() {
      ProcessorContext<String,String> ctx;
      public void init(ProcessorContext<String,String> c) { ctx = c;
        c.schedule(Duration.ofMillis(10), PunctuationType.STREAM_TIME, ts -> { throw new RuntimeException("punct boom " + ts); }); }
      public void process(org.apache.kafka.streams.processor.api.Record<String,String> r) {
        if (r.value().equals("bad")) throw new IllegalStateException("proc boom");
        ctx.forward(r);
      }
    }, "src");
    t.addSink("sink", "out", new StringSerializer(), new StringSerializer(), "proc");
    t.addSource("nsrc", new StringDeserializer(), new IntegerDeserializer(), "nums");
    t.addSink("nsink", "nout", new StringSerializer(), new IntegerSerializer(), "nsrc");
    Properties p = new Properties();
    p.put(StreamsConfig.APPLICATION_ID_CONFIG, "dlq");
    p.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, "x:9092");
    p.put(StreamsConfig.PROCESSING_EXCEPTION_HANDLER_CLASS_CONFIG, LogAndContinueProcessingExceptionHandler.class);
    p.put(StreamsConfig.DESERIALIZATION_EXCEPTION_HANDLER_CLASS_CONFIG, LogAndContinueExceptionHandler.class);
    p.put(StreamsConfig.ERRORS_DEAD_LETTER_QUEUE_TOPIC_NAME_CONFIG, "dlq");
    try (TopologyTestDriver d = new TopologyTestDriver(t, p)) {
      TestInputTopic<String,String> in = d.createInputTopic("in", new StringSerializer(), new StringSerializer());
      in.pipeInput(new TestRecord<>("k1", "good", Instant.ofEpochMilli(5)));
      in.pipeInput(new TestRecord<>("k2", "bad", Instant.ofEpochMilli(7)));
      in.pipeInput(new TestRecord<>("k3", "good", Instant.ofEpochMilli(25)));
      TestInputTopic<String,byte[]> nums = d.createInputTopic("nums", new StringSerializer(), new ByteArraySerializer());
      var hs = new org.apache.kafka.common.header.internals.RecordHeaders();
      hs.add("h1", "v1".getBytes());
      nums.pipeInput(new TestRecord<>("n1", new byte[]{1,2,3}, hs, Instant.ofEpochMilli(30)));
      var dlq = d.createOutputTopic("dlq", new ByteArrayDeserializer(), new ByteArrayDeserializer());
      for (var r : dlq.readRecordsToList()) {
        System.out.println("DLQ key=" + (r.key()==null?"null":new String(r.key())) + " value=" + (r.value()==null?"null":new String(r.value())) + " ts=" + r.timestamp());
        for (Header h : r.headers()) {
          String v = h.value()==null? "<null>" : new String(h.value());
          if (h.key().endsWith("stacktrace")) v = v.split("\n")[0];
          System.out.println("  " + h.key() + "=" + v);
        }
      }
      System.out.println("out=" + d.createOutputTopic("out", new StringDeserializer(), new StringDeserializer()).readKeyValuesToList());
    }
  }
}
