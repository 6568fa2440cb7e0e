package runtime_test

// Where a task's stores restore from: the changelog offsets in the DB's
// meta record, committed with the data, never the checkpoint file, which
// may be ahead of the data after a crash lost an unsynced commit
// (exactly-once applies without a sync).

import (
	"io"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluicehq/sluice/runtime"
)

// taskDirs returns the task directories of the App appID in the state
// directory dir.
func taskDirs(t *testing.T, dir, appID string) []string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(dir, appID))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		if e.IsDir() && strings.Contains(e.Name(), "_") {
			out = append(out, filepath.Join(dir, appID, e.Name()))
		}
	}
	if len(out) == 0 {
		t.Fatalf("no task directory in %s", filepath.Join(dir, appID))
	}
	return out
}

// copyDir copies the regular files of src into dst (created), leaving out
// the file named skip.
func copyDir(t *testing.T, src, dst, skip string) {
	t.Helper()
	if err := os.MkdirAll(dst, 0o755); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if !e.Type().IsRegular() || e.Name() == skip {
			continue
		}
		in, err := os.Open(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		out, err := os.Create(filepath.Join(dst, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(out, in); err != nil {
			t.Fatal(err)
		}
		_ = in.Close()
		if err := out.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// keyedWords returns n records' keys over vocab words, counted into want.
func keyedWords(start, n, vocab int, want map[string]int64) []string {
	var keys []string
	for _, l := range lines(start, n, vocab, map[string]int64{}) {
		for _, w := range strings.Fields(l) {
			keys = append(keys, strings.ToLower(w))
			want[strings.ToLower(w)]++
		}
	}
	return keys
}

// A crash that loses the DB's last (unsynced) commits while the checkpoint
// file says more, simulated by putting back the DBs of an earlier stop
// under the later checkpoint files: the next start restores from the DBs'
// meta records, exactly the changelog records written since, and the
// counts stay exact. Restoring from the files would skip those records.
func TestRestoreFromMetaWhenCheckpointFileIsAhead(t *testing.T) {
	c := newCluster(t)
	input, output := topic(t, "words"), topic(t, "counts")
	c.create(t, 2, input, output)
	topo, err := keyedCountTopology(input, output)
	if err != nil {
		t.Fatal(err)
	}
	appID := topic(t, "app")
	dir := t.TempDir()
	changelog := appID + "-counts-changelog"
	run := func() (*instance, *prometheus.Registry) {
		reg := prometheus.NewRegistry()
		return start(t, topo, runtime.ApplicationID(appID), runtime.Brokers(c.brokers...), runtime.StateDir(dir),
			runtime.CommitInterval(50*time.Millisecond), runtime.Registerer(reg)), reg
	}
	want := map[string]int64{}
	c.produceKeys(t, input, keyedWords(0, 400, 37, want)...)
	in, _ := run()
	if got, _ := c.counts(t, output, time.Minute, equalCounts(want)); !maps.Equal(got, want) {
		t.Fatalf("first run: %s", diffCounts(got, want))
	}
	in.stop(t)
	logged1 := changelogRecords(t, c, changelog)
	snap := t.TempDir()
	tasks := taskDirs(t, dir, appID)
	for _, td := range tasks {
		copyDir(t, td, filepath.Join(snap, filepath.Base(td)), "")
	}

	c.produceKeys(t, input, keyedWords(400, 400, 37, want)...)
	in, _ = run()
	if got, _ := c.counts(t, output, time.Minute, equalCounts(want)); !maps.Equal(got, want) {
		t.Fatalf("second run: %s", diffCounts(got, want))
	}
	in.stop(t)
	logged2 := changelogRecords(t, c, changelog)
	if logged2 <= logged1 {
		t.Fatalf("the second run wrote no changelog record (%d, then %d)", logged1, logged2)
	}
	// The DBs as the first stop left them, under the second stop's
	// checkpoint files.
	for _, td := range tasks {
		entries, err := os.ReadDir(td)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			if e.Name() != ".checkpoint" {
				if err := os.RemoveAll(filepath.Join(td, e.Name())); err != nil {
					t.Fatal(err)
				}
			}
		}
		copyDir(t, filepath.Join(snap, filepath.Base(td)), td, ".checkpoint")
	}

	c.produceKeys(t, input, keyedWords(400, 400, 37, want)...)
	in, reg := run()
	if got, _ := c.counts(t, output, time.Minute, equalCounts(want)); !maps.Equal(got, want) {
		t.Fatalf("after the lost commits: %s", diffCounts(got, want))
	}
	in.stop(t)
	if n := restored(t, reg); n != float64(logged2-logged1) {
		t.Errorf("restored %v records, want the %d the second run wrote to the changelog", n, logged2-logged1)
	}
}

// Without checkpoint files the stores restore nothing: the DBs' meta
// records cover the whole changelog.
func TestRestoreFromMetaWithoutCheckpointFile(t *testing.T) {
	c := newCluster(t)
	input, output := topic(t, "words"), topic(t, "counts")
	c.create(t, 2, input, output)
	topo, err := keyedCountTopology(input, output)
	if err != nil {
		t.Fatal(err)
	}
	appID := topic(t, "app")
	dir := t.TempDir()
	run := func() (*instance, *prometheus.Registry) {
		reg := prometheus.NewRegistry()
		return start(t, topo, runtime.ApplicationID(appID), runtime.Brokers(c.brokers...), runtime.StateDir(dir),
			runtime.CommitInterval(50*time.Millisecond), runtime.Registerer(reg)), reg
	}
	want := map[string]int64{}
	c.produceKeys(t, input, keyedWords(0, 400, 37, want)...)
	in, _ := run()
	if got, _ := c.counts(t, output, time.Minute, equalCounts(want)); !maps.Equal(got, want) {
		t.Fatalf("first run: %s", diffCounts(got, want))
	}
	in.stop(t)
	for _, td := range taskDirs(t, dir, appID) {
		if err := os.Remove(filepath.Join(td, ".checkpoint")); err != nil {
			t.Fatal(err)
		}
	}
	c.produceKeys(t, input, keyedWords(400, 200, 37, want)...)
	in, reg := run()
	if got, _ := c.counts(t, output, time.Minute, equalCounts(want)); !maps.Equal(got, want) {
		t.Fatalf("after deleting the checkpoint files: %s", diffCounts(got, want))
	}
	in.stop(t)
	if n := restored(t, reg); n != 0 {
		t.Errorf("restored %v records without checkpoint files, want 0 (the DBs' meta records cover the changelog)", n)
	}
	for _, td := range taskDirs(t, dir, appID) {
		if _, err := os.Stat(filepath.Join(td, ".checkpoint")); err != nil {
			t.Errorf("no checkpoint file after a clean stop: %v", err)
		}
	}
}
