package state

import (
	"maps"
	"strings"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// FuzzReadCheckpoint reads arbitrary bytes as a checkpoint file: no panic;
// an error names the file; what reads writes back to a file that reads the
// same.
func FuzzReadCheckpoint(f *testing.F) {
	// Real files: as WriteCheckpoint and Kafka Streams write them.
	f.Add([]byte("0\n0\n"))
	f.Add([]byte("0\n2\napp-counts-changelog 3 1234\napp-other-changelog 3 0\n"))
	f.Add([]byte("0\n1\nwordcount-counts-changelog 0 100000\n"))
	f.Add([]byte("0\n1\nt 0\n"))         // malformed entry
	f.Add([]byte("1\n0\n"))              // unknown version
	f.Add([]byte("0\r\n1\r\nt 0 1\r\n")) // CRLF
	f.Fuzz(func(t *testing.T, b []byte) {
		fs := vfs.NewMem()
		write := func(name string, data []byte) {
			file, err := fs.Create(name, vfs.WriteCategoryUnspecified)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := file.Write(data); err != nil {
				t.Fatal(err)
			}
			if err := file.Close(); err != nil {
				t.Fatal(err)
			}
		}
		write("cp", b)
		m, err := ReadCheckpoint(fs, "cp")
		if err != nil {
			if !strings.HasPrefix(err.Error(), "sluice: checkpoint cp") {
				t.Fatalf("error %q does not name the file", err)
			}
			return
		}
		if err := WriteCheckpoint(fs, "again", m); err != nil {
			t.Fatalf("write back %v: %v", m, err)
		}
		again, err := ReadCheckpoint(fs, "again")
		if err != nil || !maps.Equal(again, m) {
			t.Fatalf("round trip of %v: %v, %v", m, again, err)
		}
	})
}
