package nodes

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/sluicehq/sluice/serde"
)

// TestFKWireGolden checks the foreign-key join's wire formats against the
// bytes Kafka Streams 4.3.1's own classes make (testdata/fkjoin/golden.txt,
// written by FKWireGolden.java beside it): Sluice encodes each value to
// exactly those bytes and decodes them back.
func TestFKWireGolden(t *testing.T) {
	f, err := os.Open("testdata/fkjoin/golden.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	unhex := func(s string) []byte {
		if s == "-" {
			return []byte{}
		}
		b, err := hex.DecodeString(s)
		if err != nil {
			t.Fatalf("bad hex %q: %v", s, err)
		}
		return b
	}
	subs, resps := SubscriptionSerde(serde.String), ResponseSerde(serde.String)
	hash := ValueHash{H: Hash128([]byte("lhsValue1|rhs1")), Present: true}
	lines := 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		lines++
		fs := strings.Fields(sc.Text())
		var want, got []byte
		if fs[0] != "hash128" {
			want = unhex(fs[len(fs)-1])
		}
		switch fs[0] {
		case "hash128":
			h := Hash128(unhex(fs[1]))
			h0, _ := strconv.ParseInt(fs[2], 10, 64)
			h1, _ := strconv.ParseInt(fs[3], 10, 64)
			if h != [2]int64{h0, h1} {
				t.Errorf("Hash128(%s) = %v, Kafka Streams %d %d", fs[1], h, h0, h1)
			}
			continue
		case "subscription":
			// subscription <v0|v1> <hash|nohash> <instruction> <pk> <partition|-> <hex>
			s := Subscription[string]{PrimaryKey: fs[4]}
			if fs[1] == "v1" {
				s.Version = 1
				p, _ := strconv.ParseInt(fs[5], 10, 32)
				s.PrimaryPartition, s.HasPartition = int32(p), true
			}
			if fs[2] == "hash" {
				s.Hash = hash
			}
			in, _ := strconv.Atoi(fs[3])
			s.Instruction = FKInstruction(in)
			if got, err = subs.Encode(nil, s); err != nil {
				t.Fatal(err)
			}
			back, err := subs.Decode(want)
			if err != nil || back != s {
				t.Errorf("decode %x = %+v, %v; want %+v", want, back, err, s)
			}
		case "response":
			// response <hash|nohash> <value|-> <hex>
			r := Response[string]{PrimaryPartition: -1}
			if fs[1] == "hash" {
				r.Hash = hash
			}
			if fs[2] != "-" {
				r.Value, r.HasValue = fs[2], true
			}
			if got, err = resps.Encode(nil, r); err != nil {
				t.Fatal(err)
			}
			back, err := resps.Decode(want)
			if err != nil || back != r {
				t.Errorf("decode %x = %+v, %v; want %+v", want, back, err, r)
			}
		case "combined":
			got = AppendCombinedKey(nil, []byte(fs[1]), []byte(fs[2]))
			fk, pk, err := SplitCombinedKey(want)
			if err != nil || string(fk) != fs[1] || string(pk) != fs[2] {
				t.Errorf("SplitCombinedKey(%x) = %q, %q, %v", want, fk, pk, err)
			}
		case "prefix":
			got = AppendCombinedKey(nil, []byte(fs[1]), nil)
		default:
			t.Fatalf("unknown golden line %q", sc.Text())
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s: Sluice %x, Kafka Streams %x", strings.Join(fs[:len(fs)-1], " "), got, want)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if lines < 20 {
		t.Fatalf("golden.txt has %d lines", lines)
	}
}

// The decoders refuse what Kafka Streams' refuse, and never panic.
func TestFKWireDecodeErrors(t *testing.T) {
	subs, resps := SubscriptionSerde(serde.String), ResponseSerde(serde.String)
	for _, b := range [][]byte{{}, {0x01}, {0x02, 0x00}, {0x01, 0x07, 'k', 0, 0, 0, 1}, {0x81, 0x00, 0, 0}, {0x01, 0x00, 1, 2, 3}} {
		if _, err := subs.Decode(b); err == nil {
			t.Errorf("subscription %x decoded", b)
		}
	}
	for _, b := range [][]byte{{}, {0x00, 1, 2}} {
		if _, err := resps.Decode(b); err == nil {
			t.Errorf("response %x decoded", b)
		}
	}
	if _, _, err := SplitCombinedKey([]byte{0, 0, 0, 9, 'a'}); err == nil {
		t.Error("combined key with a foreign key longer than itself split")
	}
}

func FuzzFKWireDecode(f *testing.F) {
	f.Add([]byte{0x01, 0x02, 'k', 0, 0, 0, 1})
	f.Add([]byte{0x80, 'v'})
	subs, resps := SubscriptionSerde(serde.String), ResponseSerde(serde.String)
	f.Fuzz(func(t *testing.T, b []byte) {
		if s, err := subs.Decode(b); err == nil {
			out, err := subs.Encode(nil, s)
			if err != nil || !bytes.Equal(out, b) {
				t.Fatalf("subscription %x re-encodes to %x, %v", b, out, err)
			}
		}
		if r, err := resps.Decode(b); err == nil {
			out, err := resps.Encode(nil, r)
			if err != nil || !bytes.Equal(out, b) {
				t.Fatalf("response %x re-encodes to %x, %v", b, out, err)
			}
		}
		_, _, _ = SplitCombinedKey(b)
	})
}
