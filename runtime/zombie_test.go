package runtime

import (
	"context"
	"encoding/binary"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicehq/sluice/internal/task"
)

// Tests of the generation rule of changelog records (generation.go): a
// restore or a standby never ends on a zombie's write.

func TestGenFilter(t *testing.T) {
	type step struct {
		g, cur int32
		stale  bool
		max    int32
	}
	for _, tc := range []struct {
		name  string
		steps []step
	}{
		{"rising generations are kept", []step{{1, 5, false, 1}, {1, 5, false, 1}, {3, 5, false, 3}, {5, 5, false, 5}}},
		{"a lower generation after a higher one is a zombie's", []step{{2, 4, false, 2}, {3, 4, false, 3}, {2, 4, true, 3}, {3, 4, false, 3}, {1, 4, true, 3}}},
		// The group was deleted and created again: generations restart.
		{"a new incarnation resets", []step{{50, 3, false, 50}, {49, 3, false, 50}, {2, 3, false, 2}, {3, 3, false, 3}, {2, 3, true, 3}}},
		// A generation above the reader's: nothing is skipped after it
		// until one at or below the reader's.
		{"a generation newer than the reader's", []step{{4, 4, false, 4}, {5, 4, false, 5}, {4, 4, false, 4}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var f genFilter
			for i, s := range tc.steps {
				if got := f.stale(s.g, s.cur); got != s.stale || f.max != s.max {
					t.Fatalf("step %d: generation %d (current %d): stale %v, max %d; want %v, %d", i, s.g, s.cur, got, f.max, s.stale, s.max)
				}
			}
		})
	}
}

// writeChangelog writes a count of key to the fixture's changelog as a
// member would: the count as value, the input position header if inputOff
// >= 0 and the generation header if gen > 0.
func (f *standbyFixture) writeChangelog(t *testing.T, key string, count int64, inputOff int64, gen int32) {
	t.Helper()
	r := &kgo.Record{Topic: f.changelog.Topic, Partition: f.changelog.Partition, Key: []byte(key),
		Value: binary.BigEndian.AppendUint64(nil, uint64(count))}
	if inputOff >= 0 {
		r.Headers = append(r.Headers, kgo.RecordHeader{Key: task.InputHeader, Value: task.AppendInputPosition(nil, f.input, 0, inputOff)})
	}
	if gen > 0 {
		r.Headers = append(r.Headers, kgo.RecordHeader{Key: GenerationHeader, Value: generationBytes(gen)})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := f.cl.ProduceSync(ctx, r).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

// lastGenerations reads the generation headers of the fixture's changelog
// records and checks that each has one.
func (f *standbyFixture) changelogGenerations(t *testing.T) []int32 {
	t.Helper()
	end := f.end(t, f.changelog)
	cl := f.c.Client(t, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{f.changelog.Topic: {0: kgo.NewOffset().AtStart()}}))
	var gens []int32
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for int64(len(gens)) < end && ctx.Err() == nil {
		cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) {
			g, ok := recordGeneration(r)
			if !ok {
				t.Fatalf("changelog offset %d has no %s header", r.Offset, GenerationHeader)
			}
			gens = append(gens, g)
		})
	}
	return gens
}

// The loss the chaos program found under at-least-once: Z owned the task,
// then A; Z, a zombie (paused past its session timeout and resumed),
// writes a count from its stale state after A's records. A restore, from
// the changelog's start on a new instance or from its local state's
// offsets on A, must not end on Z's record: every count stays exact.
func TestRestoreSkipsZombieChangelogWrite(t *testing.T) {
	f := newStandbyFixture(t)
	z := f.start(t, t.TempDir(), prometheus.NewRegistry())
	f.produce(t, 70) // k0 at input offsets 0, 7, ..., 63: count 10
	f.waitCommitted(t)
	zGen, zCount := z.prod.generation(), f.want["k0"]
	if err := z.Close(); err != nil {
		t.Fatal(err)
	}

	dirA := t.TempDir()
	a := f.start(t, dirA, prometheus.NewRegistry())
	f.produce(t, 70)
	f.waitCommitted(t)
	aGen := a.prod.generation()
	if zGen <= 0 || aGen <= zGen {
		t.Fatalf("generations: former owner %d, new owner %d: want 0 < former < new", zGen, aGen)
	}
	// Every changelog record is tagged with its writer's generation.
	gens := f.changelogGenerations(t)
	if len(gens) < 2 || gens[0] != zGen || gens[len(gens)-1] != aGen || !slices.IsSorted(gens) ||
		slices.ContainsFunc(gens, func(g int32) bool { return g != zGen && g != aGen }) {
		t.Fatalf("changelog generations %v, want those of %d then those of %d", gens, zGen, aGen)
	}
	// Z resumes and writes k0's count from its state, for its input
	// offset 63 (committed since by A).
	f.writeChangelog(t, "k0", zCount, 63, zGen)
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}

	// A restarts on its local state: its restore starts after its last
	// commit, at Z's record, knowing the generation it wrote with.
	regA := prometheus.NewRegistry()
	a = f.start(t, dirA, regA)
	f.produce(t, 7)
	if got := f.outputCounts(t); !equalMaps(got, f.want) {
		t.Fatalf("after A's restore from its local state: output counts %v, want %v", got, f.want)
	}
	if n := metricValue(t, regA, "sluice_changelog_stale_generation_skipped_total"); n != 1 {
		t.Errorf("A's restore skipped %v stale records, want 1", n)
	}
	f.waitCommitted(t)
	// Z again, after A's latest records; then a new instance restores the
	// whole changelog.
	f.writeChangelog(t, "k0", zCount, 63, zGen)
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	regC := prometheus.NewRegistry()
	f.start(t, t.TempDir(), regC)
	f.produce(t, 7)
	if got := f.outputCounts(t); !equalMaps(got, f.want) {
		t.Fatalf("after a full restore on a new instance: output counts %v, want %v", got, f.want)
	}
	if n := metricValue(t, regC, "sluice_changelog_stale_generation_skipped_total"); n != 2 {
		t.Errorf("the full restore skipped %v stale records, want 2", n)
	}
}

// Generations restart when the group is deleted and created again: records
// of the new incarnation, with generations below the old one's, are
// restored, not skipped as a zombie's.
func TestRestoreAfterGroupResetKeepsNewGenerations(t *testing.T) {
	f := newStandbyFixture(t)
	f.standbyOnly(t, t.TempDir(), prometheus.NewRegistry()) // creates the internal topics
	// The former incarnation's records, at generation 50.
	for i := range 7 {
		k := "k" + string(rune('0'+i))
		f.writeChangelog(t, k, 1000, -1, 50)
		f.want[k] = 1000
	}
	a := f.start(t, t.TempDir(), prometheus.NewRegistry())
	f.produce(t, 70)
	f.waitCommitted(t)
	if g := a.prod.generation(); g >= 50 {
		t.Fatalf("the new incarnation's generation is %d, want below 50", g)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	f.start(t, t.TempDir(), reg)
	f.produce(t, 7)
	if got := f.outputCounts(t); !equalMaps(got, f.want) {
		t.Fatalf("after the restore: output counts %v, want %v", got, f.want)
	}
	if n := metricValue(t, reg, "sluice_changelog_stale_generation_skipped_total"); n != 0 {
		t.Errorf("the restore skipped %v records, want none", n)
	}
}

// Records without a generation header (written before it existed, or by
// Kafka Streams) are restored as before, wherever they are.
func TestRestoreAppliesRecordsWithoutGeneration(t *testing.T) {
	f := newStandbyFixture(t)
	a := f.start(t, t.TempDir(), prometheus.NewRegistry())
	f.produce(t, 70)
	f.waitCommitted(t)
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	f.writeChangelog(t, "k0", 42, -1, 0)
	f.want["k0"] = 42
	f.start(t, t.TempDir(), prometheus.NewRegistry())
	f.produce(t, 7)
	if got := f.outputCounts(t); !equalMaps(got, f.want) {
		t.Fatalf("after the restore: output counts %v, want %v", got, f.want)
	}
}

// A standby skips a zombie's changelog write as a restore does: its copy
// keeps the active's counts.
func TestStandbySkipsZombieChangelogWrite(t *testing.T) {
	f := newStandbyFixture(t)
	regB := prometheus.NewRegistry()
	a := f.start(t, t.TempDir(), prometheus.NewRegistry(), NumStandbyReplicas(1))
	b := f.start(t, t.TempDir(), regB, NumStandbyReplicas(1))
	waitUntil(t, "the group to give B the task's standby", func() bool { return b.standbys.has(taskID{0, 0}) })
	if ids, _ := a.Tasks(); len(ids) != 1 {
		t.Fatalf("instance A runs tasks %v, want the only one", ids)
	}
	f.produce(t, 70)
	f.waitCommitted(t)
	f.waitApplied(t, b)
	aGen := a.prod.generation()
	if aGen <= 1 {
		t.Fatalf("A's generation %d, want above 1 (B joined after it)", aGen)
	}
	f.writeChangelog(t, "k0", 3, 14, aGen-1)
	f.waitApplied(t, b)
	if got := f.counts(t, b); !equalMaps(got, f.want) {
		t.Fatalf("standby counts %v, want the active's %v", got, f.want)
	}
	if n := metricValue(t, regB, "sluice_changelog_stale_generation_skipped_total"); n != 1 {
		t.Errorf("the standby skipped %v stale records, want 1", n)
	}
	// What the standby commits records the generation for its next open.
	waitUntil(t, "a standby commit with the generation", func() bool {
		b.standbys.mu.Lock()
		defer b.standbys.mu.Unlock()
		return b.standbys.tasks[taskID{0, 0}].st.gen == aGen
	})
}
