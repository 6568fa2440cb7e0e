package runtime

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicehq/sluice/internal/task"
)

// FuzzDecodeOffsetMetadata decodes arbitrary strings as the metadata of a
// committed offset (a task's processor metadata, "sluice.md1:" and the
// base64 of task.EncodeMetadata): no panic; metadata without the prefix
// (written by another client) is none, not an error; an error starts with
// "sluice:"; what decodes encodes back to the same entries.
func FuzzDecodeOffsetMetadata(f *testing.F) {
	enc := func(m map[string]int64) string {
		return metadataPrefix + base64.StdEncoding.EncodeToString(task.EncodeMetadata(m))
	}
	f.Add("")
	f.Add("some other client's metadata")
	f.Add(enc(map[string]int64{"agg.observed-stream-time": 1700000000000}))
	f.Add(enc(map[string]int64{"a": -1, "b": 2}))
	f.Add(metadataPrefix + "not base64!")
	f.Add(metadataPrefix + base64.StdEncoding.EncodeToString(append(binary.AppendUvarint(nil, ^uint64(0)), 1)))
	f.Fuzz(func(t *testing.T, s string) {
		md, ok, err := decodeOffsetMetadata(s)
		if !strings.HasPrefix(s, metadataPrefix) {
			if ok || err != nil || md != nil {
				t.Fatalf("%q without the prefix: %v, %v, %v", s, md, ok, err)
			}
			return
		}
		if err != nil {
			if ok || !strings.HasPrefix(err.Error(), "sluice: ") {
				t.Fatalf("%q: ok=%v, error %q", s, ok, err)
			}
			return
		}
		if !ok {
			t.Fatalf("%q: neither metadata nor an error", s)
		}
		again, ok, err := decodeOffsetMetadata(enc(md))
		if err != nil || !ok || !maps.Equal(again, md) {
			t.Fatalf("round trip of %v: %v, %v, %v", md, again, ok, err)
		}
	})
}

// FuzzGeneration decodes arbitrary bytes as the generation meta record and
// as the value of a changelog record's GenerationHeader: anything but 4
// bytes is an error (meta) or no generation (header, which then does not
// filter the record); 4 bytes round-trip. A record's generation is that
// of its first well-formed header.
func FuzzGeneration(f *testing.F) {
	f.Add(generationBytes(1), []byte{})
	f.Add(generationBytes(-1), generationBytes(7))
	f.Add([]byte{1, 2, 3}, []byte{1, 2, 3, 4, 5})
	f.Fuzz(func(t *testing.T, a, b []byte) {
		g, err := decodeGeneration(a)
		if len(a) != 4 {
			if err == nil || !strings.Contains(err.Error(), "corrupt generation meta record") {
				t.Fatalf("%x: %d, %v", a, g, err)
			}
		} else if err != nil || !bytes.Equal(generationBytes(g), a) {
			t.Fatalf("%x: %d, %v", a, g, err)
		}
		r := &kgo.Record{Headers: []kgo.RecordHeader{
			{Key: "other", Value: generationBytes(99)},
			{Key: GenerationHeader, Value: a},
			{Key: GenerationHeader, Value: b},
		}}
		got, ok := recordGeneration(r)
		var want []byte
		switch {
		case len(a) == 4:
			want = a
		case len(b) == 4:
			want = b
		}
		if ok != (want != nil) || (ok && !bytes.Equal(generationBytes(got), want)) {
			t.Fatalf("headers %x, %x: generation %d, %v", a, b, got, ok)
		}
	})
}

// FuzzParseTaskID parses arbitrary names as task directory names: only
// the canonical "<sub-topology>_<partition>" is a task, so that no other
// directory is taken for a task's (its checkpoint read as the task's,
// its contents swept as a stale task's).
func FuzzParseTaskID(f *testing.F) {
	for _, s := range []string{"0_0", "3_17", "12_2147483647", "1_2x", "1_", "_1", "-1_0", "01_2", "+1_2", " 1_2", "1_2 ", "1_ 2", "1_-0", "0_9999999999"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		id, err := parseTaskID(s)
		if err != nil {
			if !strings.Contains(err.Error(), "is not a task ID") {
				t.Fatalf("%q: error %q", s, err)
			}
			return
		}
		if id.String() != s {
			t.Fatalf("%q parses to task %s", s, id)
		}
	})
}

// FuzzLoadProcessID reads arbitrary bytes as the state directory's
// process.id file: an error names the file; a process ID read from it is
// the one the file spells (the UUID, and a process ID's String parses
// back to it).
func FuzzLoadProcessID(f *testing.F) {
	f.Add([]byte("9b3c2f9e-4d7a-4c1e-8f00-0123456789ab\n"))
	f.Add([]byte("9b3c2f9e4d7a4c1e8f000123456789ab"))
	f.Add([]byte(""))
	f.Add([]byte("not a uuid"))
	f.Add([]byte("9b3c2f9e-4d7a-4c1e-8f00-0123456789"))
	f.Fuzz(func(t *testing.T, b []byte) {
		dir := t.TempDir()
		path := filepath.Join(dir, processIDFile)
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
		p, err := loadProcessID(dir)
		if err != nil {
			if !strings.Contains(err.Error(), path) {
				t.Fatalf("%q: error %q does not name %s", b, err, path)
			}
			return
		}
		hex := strings.ReplaceAll(strings.ToLower(strings.TrimSpace(string(b))), "-", "")
		if strings.ReplaceAll(p.String(), "-", "") != hex {
			t.Fatalf("%q: process ID %s", b, p)
		}
		if again, err := parseProcessID(p.String()); err != nil || again != p {
			t.Fatalf("%s parses to %s, %v", p, again, err)
		}
	})
}

// FuzzParseSyncAssignment parses arbitrary bytes as the assignment a
// member receives in SyncGroup (Kafka's ConsumerProtocolAssignment with
// the standby and warm-up tasks in its user data): no panic; an error for
// malformed bytes; otherwise the partitions are those of the assignment,
// and malformed user data leaves no standby tasks rather than failing.
func FuzzParseSyncAssignment(f *testing.F) {
	mk := func(topics map[string][]int32, user []byte) []byte {
		var a kmsg.ConsumerMemberAssignment
		for _, tp := range slices.Sorted(maps.Keys(topics)) {
			at := kmsg.NewConsumerMemberAssignmentTopic()
			at.Topic, at.Partitions = tp, topics[tp]
			a.Topics = append(a.Topics, at)
		}
		a.UserData = user
		return a.AppendTo(nil)
	}
	f.Add([]byte{})
	f.Add(mk(map[string][]int32{"in": {0, 2}}, nil))
	f.Add(mk(map[string][]int32{"in": {1}, "app-counts-repartition": {1}}, encodeAssignmentData(assignmentData{standbys: []taskID{{0, 3}}, warmups: []taskID{{0, 3}}})))
	f.Add(mk(map[string][]int32{"in": {0}}, []byte{memberDataVersion, 0xff, 0xff, 0xff, 0xff, 0x0f}))
	f.Add([]byte{0, 1, 0x7f, 0xff, 0xff, 0xff}) // a topic count past the end
	f.Fuzz(func(t *testing.T, b []byte) {
		bal := &taskBalancer{}
		m, err := bal.ParseSyncAssignment(b)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "sluice: sync assignment parse failed") {
				t.Fatalf("error %q", err)
			}
			return
		}
		var a kmsg.ConsumerMemberAssignment
		if err := a.ReadFrom(b); err != nil {
			t.Fatalf("parsed bytes the protocol refuses: %v", err)
		}
		for _, tp := range a.Topics {
			if _, ok := m[tp.Topic]; !ok {
				t.Fatalf("topic %q of the assignment missing from %v", tp.Topic, m)
			}
		}
		d := bal.assigned.Load()
		if d == nil {
			t.Fatal("no standby assignment stored")
		}
		if want, err := decodeAssignmentData(a.UserData); err == nil {
			if !slices.Equal(d.standbys, want.standbys) || !slices.Equal(d.warmups, want.warmups) {
				t.Fatalf("standbys %v, warm-ups %v; want %v, %v", d.standbys, d.warmups, want.standbys, want.warmups)
			}
		} else if len(d.standbys) != 0 || len(d.warmups) != 0 {
			t.Fatalf("malformed user data (%v) gave standbys %v, warm-ups %v", err, d.standbys, d.warmups)
		}
	})
}

// A directory of the state directory whose name only looks like a task's
// ("01_2", "+1_2", " 1_2", "1_-0": fmt.Sscanf took them for tasks 1_2 and
// 1_0) is no task's: the start-up scan would have read its checkpoint as
// the task's local offsets. Found by FuzzParseTaskID.
func TestParseTaskIDOnlyCanonical(t *testing.T) {
	for _, s := range []string{"01_2", "+1_2", " 1_2", "1_2 ", "1_ 2", "1_-0", "1_02", "1_2_3", "1_2147483648", "0x1_2"} {
		if id, err := parseTaskID(s); err == nil {
			t.Errorf("parseTaskID(%q) = %s", s, id)
		}
	}
	for _, s := range []string{"0_0", "1_2", "10_2147483647"} {
		if id, err := parseTaskID(s); err != nil || id.String() != s {
			t.Errorf("parseTaskID(%q) = %s, %v", s, id, err)
		}
	}
}
