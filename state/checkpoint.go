package state

import (
	"bytes"
	"cmp"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// TopicPartition names a partition of a topic.
type TopicPartition struct {
	Topic     string
	Partition int32
}

// WriteCheckpoint writes the offsets a task's local state reflects (the
// next changelog offset per changelog partition) to path, in Kafka Streams'
// .checkpoint layout: a version line "0", the number of entries, then
// "topic partition offset" per line. It writes a temporary file, syncs it
// and renames it over path, so a crash leaves the old or the new file,
// never a torn one.
func WriteCheckpoint(fs vfs.FS, path string, offsets map[TopicPartition]int64) error {
	keys := make([]TopicPartition, 0, len(offsets))
	for tp := range offsets {
		if strings.ContainsAny(tp.Topic, " \n") {
			return fmt.Errorf("sluice: checkpoint %s: topic %q has whitespace", path, tp.Topic)
		}
		keys = append(keys, tp)
	}
	slices.SortFunc(keys, func(a, b TopicPartition) int {
		if c := strings.Compare(a.Topic, b.Topic); c != 0 {
			return c
		}
		return cmp.Compare(a.Partition, b.Partition)
	})
	var buf bytes.Buffer
	fmt.Fprintf(&buf, "0\n%d\n", len(keys))
	for _, tp := range keys {
		fmt.Fprintf(&buf, "%s %d %d\n", tp.Topic, tp.Partition, offsets[tp])
	}
	tmp := path + ".tmp"
	f, err := fs.Create(tmp, vfs.WriteCategoryUnspecified)
	if err != nil {
		return fmt.Errorf("sluice: checkpoint %s: %w", path, err)
	}
	if _, err := f.Write(buf.Bytes()); err != nil {
		f.Close()
		return fmt.Errorf("sluice: checkpoint %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("sluice: checkpoint %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("sluice: checkpoint %s: %w", path, err)
	}
	if err := fs.Rename(tmp, path); err != nil {
		return fmt.Errorf("sluice: checkpoint %s: %w", path, err)
	}
	if d, err := fs.OpenDir(fs.PathDir(path)); err == nil {
		err = d.Sync()
		d.Close()
		if err != nil {
			return fmt.Errorf("sluice: checkpoint %s: sync dir: %w", path, err)
		}
	}
	return nil
}

// ReadCheckpoint reads a checkpoint file written by WriteCheckpoint (or by
// Kafka Streams). A missing file is no checkpoint: an empty map and no
// error. A malformed file is an error naming the file and line.
func ReadCheckpoint(fs vfs.FS, path string) (map[TopicPartition]int64, error) {
	f, err := fs.Open(path)
	if err != nil {
		if isNotExist(fs, path) {
			return map[TopicPartition]int64{}, nil
		}
		return nil, fmt.Errorf("sluice: checkpoint %s: %w", path, err)
	}
	defer f.Close()
	data, err := io.ReadAll(f)
	if err != nil {
		return nil, fmt.Errorf("sluice: checkpoint %s: %w", path, err)
	}
	var lines []string
	for line := range strings.Lines(string(data)) {
		lines = append(lines, strings.TrimRight(line, "\r\n"))
	}
	bad := func(line int, why string) error {
		return fmt.Errorf("sluice: checkpoint %s, line %d: %s", path, line, why)
	}
	if len(lines) < 2 {
		return nil, bad(len(lines)+1, "missing version or entry count")
	}
	if lines[0] != "0" {
		return nil, bad(1, fmt.Sprintf("unknown version %q", lines[0]))
	}
	n, err := strconv.Atoi(lines[1])
	if err != nil || n < 0 {
		return nil, bad(2, fmt.Sprintf("bad entry count %q", lines[1]))
	}
	if len(lines)-2 != n {
		return nil, bad(len(lines), fmt.Sprintf("%d entries, the header says %d", len(lines)-2, n))
	}
	out := make(map[TopicPartition]int64, n)
	for i, l := range lines[2:] {
		f := strings.Fields(l)
		if len(f) != 3 {
			return nil, bad(i+3, fmt.Sprintf("want \"topic partition offset\", got %q", l))
		}
		p, err1 := strconv.ParseInt(f[1], 10, 32)
		off, err2 := strconv.ParseInt(f[2], 10, 64)
		if err1 != nil || err2 != nil {
			return nil, bad(i+3, fmt.Sprintf("bad partition or offset in %q", l))
		}
		out[TopicPartition{f[0], int32(p)}] = off
	}
	return out, nil
}

func isNotExist(fs vfs.FS, path string) bool {
	_, err := fs.Stat(path)
	return err != nil && oserrorIsNotExist(err)
}
