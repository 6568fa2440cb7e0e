package runtime

import (
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicehq/sluice/connectors"
	"github.com/sluicehq/sluice/dsl"
	"github.com/sluicehq/sluice/serde"
	"github.com/sluicehq/sluice/state"
	"github.com/sluicehq/sluice/topology"
)

// A restore's end goes into the DB's meta record (finishRestore), where
// the next restore starts, whether or not the checkpoint file exists; a DB
// without the meta record restores from the changelog's start, whatever a
// checkpoint file says.
func TestRestoreStartsFromTheDBMeta(t *testing.T) {
	e, err := connectors.StartEmbedded(connectors.EmbeddedConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	const topic = "meta-app-counts-changelog"
	if err := connectors.CreateTopics(ctx, e.Brokers(), 1, topic); err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(e.Brokers()...), kgo.DefaultProduceTopic(topic))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	for i := range 10 {
		r := &kgo.Record{Key: []byte(fmt.Sprintf("k%d", i)), Value: binary.BigEndian.AppendUint64(nil, uint64(i)), Partition: 0}
		if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	b := dsl.NewBuilder()
	dsl.FromTopic(b, "meta-in", serde.Bytes, serde.Bytes).To("meta-out", serde.Bytes, serde.Bytes)
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	a, err := New(topo, ApplicationID("meta-app"), Brokers(e.Brokers()...), StateDir(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	if a.admin, err = kgo.NewClient(kgo.SeedBrokers(e.Brokers()...)); err != nil {
		t.Fatal(err)
	}
	defer a.admin.Close()
	a.changelogs = a.newChangelogReader()
	if err := a.openStateDir(); err != nil {
		t.Fatal(err)
	}
	defer a.release()
	spec := &topology.StoreSpec{Name: "counts", Timestamped: true}
	tp := state.TopicPartition{Topic: topic, Partition: 0}
	// restore opens the task's state, restores the store and, with
	// finish, ends the restore; it returns the records restored and the
	// changelog offset the opened state started from (-1: none).
	restore := func(id taskID, finish bool) (int64, int64) {
		t.Helper()
		ts, err := a.openTaskState(id, nil, true)
		if err != nil {
			t.Fatal(err)
		}
		defer func() {
			if err := ts.close(); err != nil {
				t.Fatal(err)
			}
		}()
		from := int64(-1)
		if off, ok := ts.checkpoint[tp]; ok {
			from = off
		}
		n, err := a.restoreStore(ctx, ts, ts.db.KeyValueStore(spec.Name), spec, topic, 0)
		if err == nil && finish {
			err = a.finishRestore(ts)
		}
		if err != nil {
			t.Fatal(err)
		}
		return n, from
	}

	id := taskID{sub: 0, partition: 0}
	if n, from := restore(id, true); n != 10 || from != -1 {
		t.Fatalf("first restore: %d records from %d, want 10 from the start", n, from)
	}
	if err := os.Remove(filepath.Join(a.appDir, id.String(), checkpointFile)); err != nil {
		t.Fatal(err)
	}
	if n, from := restore(id, true); n != 0 || from != 10 {
		t.Errorf("restore without a checkpoint file: %d records from %d, want 0 from 10 (the DB's meta record)", n, from)
	}

	// Restored but never finished (no meta record), with a checkpoint file
	// claiming the whole changelog: restored from the start again.
	other := taskID{sub: 0, partition: 1}
	if n, _ := restore(other, false); n != 10 {
		t.Fatalf("unfinished restore: %d records, want 10", n)
	}
	if err := state.WriteCheckpoint(vfs.Default, filepath.Join(a.appDir, other.String(), checkpointFile),
		map[state.TopicPartition]int64{tp: 10}); err != nil {
		t.Fatal(err)
	}
	if n, from := restore(other, true); n != 10 || from != -1 {
		t.Errorf("restore of a DB without the meta record: %d records from %d, want 10 from the start", n, from)
	}
}

// Unsynced commits (exactly-once) write no checkpoint file; closing the
// state makes them durable and then writes the file with the changelog
// offsets of the last commit, never more. A synced commit (at-least-once)
// leaves the checkpoint file to the committer, as before.
func TestCheckpointOnCloseAfterUnsyncedCommits(t *testing.T) {
	tp := state.TopicPartition{Topic: "app-counts-changelog", Partition: 0}
	path := func(ts *taskState) string { return filepath.Join(ts.dir, checkpointFile) }
	for _, durable := range []bool{false, true} {
		ts := benchTaskStates(t, 1)[0]
		kv := ts.db.KeyValueStore("counts")
		if err := kv.Put([]byte("k"), []byte("v")); err != nil {
			t.Fatal(err)
		}
		err := eachTask(1, !durable, func(int) error {
			return ts.commitLocal(map[topicPartition]int64{{"in", 0}: 3}, nil, map[state.TopicPartition]int64{tp: 7}, durable)
		})
		if err != nil {
			t.Fatal(err)
		}
		// Written to the pending batch after the commit: dropped on close.
		if err := kv.Put([]byte("uncommitted"), []byte("v")); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(path(ts)); err == nil {
			t.Fatalf("durable=%v: a checkpoint file after a commit", durable)
		}
		dir := ts.dir
		if err := ts.close(); err != nil {
			t.Fatal(err)
		}
		_, statErr := os.Stat(filepath.Join(dir, checkpointFile))
		cp, err := state.ReadCheckpoint(vfs.Default, filepath.Join(dir, checkpointFile))
		switch {
		case durable && statErr == nil:
			t.Errorf("durable: close wrote a checkpoint file %v (the committer writes it)", cp)
		case !durable && (err != nil || len(cp) != 1 || cp[tp] != 7):
			t.Errorf("not durable: checkpoint file after close = %v, %v; want %v: 7", cp, err, tp)
		}
		db, err := state.OpenPebble(dir, state.PebbleOptions{BufferWrites: true})
		if err != nil {
			t.Fatal(err)
		}
		got, ok, err := db.KeyValueStore("counts").Get([]byte("k"))
		_, leaked, err2 := db.KeyValueStore("counts").Get([]byte("uncommitted"))
		if err != nil || err2 != nil || !ok || string(got) != "v" || leaked {
			t.Errorf("durable=%v: after reopening, k = %q, %v, %v; uncommitted present %v, %v", durable, got, ok, err, leaked, err2)
		}
		ends := map[topicPartition]int64{}
		if err := readMeta(db, metaChangelogEnds, decodePositions, &ends); err != nil || ends[topicPartition{tp.Topic, 0}] != 7 {
			t.Errorf("durable=%v: meta changelog ends = %v, %v; want 7", durable, ends, err)
		}
		_ = db.Close()
	}
}
