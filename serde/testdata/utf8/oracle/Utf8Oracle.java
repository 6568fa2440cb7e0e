// Utf8Oracle prints, for each line of hex bytes on standard input, the bytes
// Kafka 4.3.1's StringSerializer writes for the string its StringDeserializer
// reads from them: "<in hex> -> <out hex>". It made
// serde/testdata/utf8/java-string-deserializer (what serde.JavaString must do with
// invalid UTF-8), run on OpenJDK 17.0.15 as
//
//	javac -cp '/path/to/kafka-4.3.1-jars/*' -d /tmp/oc Utf8Oracle.java
//	java -cp '/path/to/kafka-4.3.1-jars/*:/tmp/oc' Utf8Oracle < inputs > java-string-deserializer
//
// with inputs made of hand-picked sequences and 3000 random ones of 1 to 7
// bytes drawn from the bytes where UTF-8's rules change (00 41 7f 80 8f 90
// 9f a0 bf c0 c1 c2 df e0 e1 ec ed ee ef f0 f1 f3 f4 f5 f7 f8 ff), seed 13;
// duplicate lines removed.
import org.apache.kafka.common.serialization.*;
import java.io.*;
import java.util.*;
public class Utf8Oracle {
  public static void main(String[] a) throws Exception {
    StringDeserializer d = new StringDeserializer();
    StringSerializer s = new StringSerializer();
    BufferedReader r = new BufferedReader(new InputStreamReader(System.in));
    String line;
    while ((line = r.readLine()) != null) {
      line = line.trim();
      if (line.isEmpty()) continue;
      byte[] in = HexFormat.of().parseHex(line.replace(" ", ""));
      String str = d.deserialize("t", in);
      byte[] out = s.serialize("t", str);
      System.out.println(line + " -> " + HexFormat.of().formatHex(out));
    }
  }
}
