package dsl_test

// Nulls and record errors where Sluice follows Kafka Streams 4.3.1 for the
// same topology and input. Each test names the Kafka Streams source it
// follows.

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/sluicehq/sluice/dsl"
	"github.com/sluicehq/sluice/operators"
	"github.com/sluicehq/sluice/serde"
	"github.com/sluicehq/sluice/testdriver"
	"github.com/sluicehq/sluice/window"
)

// runStrings builds b, pipes rs into "in" and returns "out" formatted by
// nullFormat, with the driver for drop counters.
func runStrings(t *testing.T, b *dsl.Builder, rs []operators.Record[string, string]) ([]string, *testdriver.Driver) {
	t.Helper()
	topo, err := b.Build()
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	d, err := testdriver.New(topo)
	if err != nil {
		t.Fatalf("testdriver.New: %v", err)
	}
	t.Cleanup(func() { d.Close() })
	in := testdriver.CreateInputTopic(d, "in", serde.String, serde.String)
	out := testdriver.CreateOutputTopic(d, "out", serde.String, serde.String)
	if err := in.PipeRecords(rs); err != nil {
		t.Fatal(err)
	}
	got, err := out.ReadRecords()
	if err != nil {
		t.Fatal(err)
	}
	var s []string
	for _, r := range got {
		s = append(s, nullFormat(r))
	}
	return s, d
}

var tombstoneThenValue = []operators.Record[string, string]{
	{Key: "k", Tombstone: true, Timestamp: 2},
	{Key: "k", Value: "v", Timestamp: 4},
}

// Kafka Streams' KStreamWindowAggregate drops a record only for a null key
// (KStreamWindowAggregate.java: `if (record.key() == null)`); a tombstone
// reaches the aggregator, and count's aggregator (aggregate + 1) counts it.
// Sluice's windowed Count counts it too (Emit.CountTombstones in
// internal/nodes/windowed.go).
func TestWindowedCountCountsTombstonesAsKafkaStreams(t *testing.T) {
	b := dsl.NewBuilder()
	s := dsl.FromTopic(b, "in", serde.String, serde.String)
	counts := dsl.WindowedBy(s.GroupByKey(), window.Tumbling(10*time.Millisecond, 0)).
		Count(dsl.Named("win"), dsl.Materialized(dsl.StoreOptions{DisableCaching: true}))
	dsl.Map(counts.ToStream(), func(k window.Windowed[string], n int64) (string, string) {
		return fmt.Sprintf("%s[%d]", k.Key, k.Window.Start), fmt.Sprint(n)
	}).To("out", serde.String, serde.String)
	got, _ := runStrings(t, b, tombstoneThenValue)
	if want := []string{"k[0]=1@2", "k[0]=2@4"}; !slices.Equal(got, want) {
		t.Errorf("out:\n got  %q\n want %q", got, want)
	}
}

// Kafka Streams' KStreamSessionWindowAggregate drops a record only for a
// null key (KStreamSessionWindowAggregate.java: `if (record.key() ==
// null)`); count's aggregator counts a tombstone. Sluice's session Count
// counts it too.
func TestSessionCountCountsTombstonesAsKafkaStreams(t *testing.T) {
	b := dsl.NewBuilder()
	s := dsl.FromTopic(b, "in", serde.String, serde.String)
	counts := dsl.WindowedBySession(s.GroupByKey(), window.Session{Gap: 10 * time.Millisecond}).
		Count(dsl.Named("ses"), dsl.Materialized(dsl.StoreOptions{DisableCaching: true}))
	// MapNullable: the deletes of merged-away sessions are tombstones,
	// which Map would drop.
	dsl.MapNullable(counts.ToStream(), func(mk dsl.Maybe[window.Windowed[string]], mn dsl.Maybe[int64]) (dsl.Maybe[string], dsl.Maybe[string]) {
		k, _ := mk.Get()
		key := dsl.Some(fmt.Sprintf("%s[%d,%d]", k.Key, k.Window.Start, k.Window.End))
		if n, ok := mn.Get(); ok {
			return key, dsl.Some(fmt.Sprint(n))
		}
		return key, dsl.None[string]()
	}).To("out", serde.String, serde.String)
	got, _ := runStrings(t, b, tombstoneThenValue)
	// Session [2,2] count 1; the second record merges it into [2,4]: the
	// old session is deleted, the merged one has count 2. Updates carry
	// their session's end as timestamp (maybeForwardUpdate).
	if want := []string{"k[2,2]=1@2", "k[2,2]=<null>@2", "k[2,4]=2@4"}; !slices.Equal(got, want) {
		t.Errorf("out:\n got  %q\n want %q", got, want)
	}
}

// A record Split drops because of a null, without asking the predicates,
// must be counted: the rule is that no record is lost uncounted,
// and here it is the null rule, not a predicate, that drops it
// (operators/stateless.go:329-336 returns nil without RecordDropped).
func TestSplitWithoutDefaultBranchCountsDroppedNulls(t *testing.T) {
	b := dsl.NewBuilder()
	s := dsl.FromTopic(b, "in", serde.String, serde.String)
	br := s.Split(dsl.Named("split-")).Branch("yes", func(k, v string) bool { return true }).NoDefaultBranch()
	br["split-yes"].To("out", nil, nil)
	got, d := runStrings(t, b, nullInputs)
	if want := []string{"k4=v4@4"}; !slices.Equal(got, want) {
		t.Fatalf("out:\n got  %q\n want %q", got, want)
	}
	var dropped int64
	for _, node := range []string{"split-", "KSTREAM-BRANCH-0000000001"} {
		for _, reason := range []string{"null-key", "null-value"} {
			dropped += d.DroppedRecords(node, reason)
		}
	}
	if dropped != 3 {
		t.Errorf("records dropped by Split for a null key or value, counted = %d, want 3", dropped)
	}
}

// failingSerde cannot encode anything.
type failingSerde struct{}

func (failingSerde) Encode([]byte, string) ([]byte, error) { return nil, errors.New("cannot encode") }
func (failingSerde) Decode(b []byte) (string, error)       { return string(b), nil }

// A sink that cannot serialize a record fails on that record, and the
// error names the sink: NodeError.Node must be the node (the issue: "the
// error a failed record returns is an exported type with topic, partition,
// offset and node"; Kafka Streams' RecordCollectorImpl.send names the
// processor node in its serialization StreamsException). Task.wrapRecord
// takes the node from a DeserializationError or InvalidTimestampError
// only, so a *SerializationError (which carries Node) gives Node "".
func TestNodeErrorOfSinkSerializationNamesTheSink(t *testing.T) {
	b := dsl.NewBuilder()
	dsl.FromTopic(b, "in", serde.String, serde.String).To("out", nil, failingSerde{}, dsl.Named("sink"))
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	d, err := testdriver.New(topo)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	err = testdriver.CreateInputTopic(d, "in", serde.String, serde.String).PipeAt("k", "v", 1)
	ne, ok := operators.FailedRecord(err)
	if !ok {
		t.Fatalf("FailedRecord(%v) found no record", err)
	}
	if ne.Node != "sink" || ne.Topic != "in" || ne.Offset != 0 {
		t.Errorf("NodeError = node %q topic %q offset %d, want sink in 0", ne.Node, ne.Topic, ne.Offset)
	}
}

// A user processor's store is managed by the task: Kafka Streams hands
// processors their stores behind AbstractReadWriteDecorator, whose close()
// and init() throw UnsupportedOperationException ("This method may only be
// called by Kafka Streams"). ProcessingContext.Store returns the task's
// own store (internal/task nodeContext.Store), so a processor can Close it
// under the task: the issue's "user processors get a context without
// runtime-only methods" leaves this one reachable.
func TestUserProcessorCannotCloseTaskStore(t *testing.T) {
	b := dsl.NewBuilder()
	kv := dsl.AddKeyValueStore(b, dsl.StoreOptions{Name: "kv"}, serde.String, serde.String)
	var closed bool
	var closeErr error
	dsl.Process(dsl.FromTopic(b, "in", serde.String, serde.String), func() operators.Processor[string, string, string, string] {
		return &operators.ProcessorFuncs[string, string, string, string]{
			ProcessFunc: func(ctx operators.ProcessorContext[string, string], r operators.Record[string, string]) error {
				s, err := ctx.Store("kv")
				if err != nil {
					return err
				}
				closed, closeErr = true, s.Close()
				return nil
			},
		}
	}, dsl.ConnectStores(kv)).To("out", nil, nil)
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	d, err := testdriver.New(topo)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if err := testdriver.CreateInputTopic(d, "in", serde.String, serde.String).PipeAt("k", "v", 1); err != nil {
		t.Fatal(err)
	}
	if !closed || closeErr == nil {
		t.Errorf("a user processor's Close of the task's store kv: called %v, returned %v, want an error", closed, closeErr)
	}
}
