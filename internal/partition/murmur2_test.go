package partition

import "testing"

// The vectors of Kafka's UtilsTest.testMurmur2.
func TestMurmur2KafkaVectors(t *testing.T) {
	for in, want := range map[string]int32{
		"21":                         -973932308,
		"foobar":                     -790332482,
		"a-little-bit-long-string":   -985981536,
		"a-little-bit-longer-string": -1486304829,
		"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
		"abc": 479470107,
	} {
		if got := Murmur2([]byte(in)); got != want {
			t.Errorf("Murmur2(%q) = %d, want %d", in, got, want)
		}
	}
}

func TestForKeyInRange(t *testing.T) {
	for i := range 1000 {
		key := []byte{byte(i), byte(i >> 8), 'k'}
		if p := ForKey(key, 7); p < 0 || p >= 7 {
			t.Fatalf("ForKey(%v, 7) = %d", key, p)
		}
	}
}
