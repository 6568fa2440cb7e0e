package testdriver_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/sluicehq/sluice/dsl"
	"github.com/sluicehq/sluice/operators"
	"github.com/sluicehq/sluice/serde"
	"github.com/sluicehq/sluice/state"
	"github.com/sluicehq/sluice/testdriver"
)

// A processor's key-value store with caching enabled logs a flushed write with the timestamp of the record that made
// it, as docs/changelogs.md states and as Kafka Streams' caching stores do
// (CachingKeyValueStore.putAndMaybeForward sets the cached entry's record
// context before writing it below, and ChangeLoggingKeyValueBytesStore
// logs context.timestamp()): "a" was written by the record at 1, not by
// the record at 2 that was processed when the commit flushed it.
func TestProcessorStoreFlushLogsCausingRecordTimestamp(t *testing.T) {
	b := dsl.NewBuilder()
	last := dsl.AddKeyValueStore(b, dsl.StoreOptions{Name: "last", EnableCaching: true}, serde.String, serde.String)
	in := dsl.FromTopic(b, "in", serde.String, serde.String)
	dsl.Process(in, func() operators.Processor[string, string, string, string] {
		var store *state.KV[string, string]
		return &operators.ProcessorFuncs[string, string, string, string]{
			InitFunc: func(ctx operators.ProcessorContext[string, string]) (err error) {
				store, err = last.Open(ctx)
				return err
			},
			ProcessFunc: func(ctx operators.ProcessorContext[string, string], r operators.Record[string, string]) error {
				return store.Put(r.Key, r.Value)
			},
		}
	}, dsl.ConnectStores(last))
	topo, err := b.Build()
	ok(t, err)
	d := newDriver(t, topo, testdriver.WithRecordCache(1<<20), testdriver.WithChangelogs(), testdriver.CommitOnRequest())
	pin := testdriver.CreateInputTopic(d, "in", serde.String, serde.String)
	ok(t, pin.PipeAt("a", "x", 1))
	ok(t, pin.PipeAt("b", "y", 2))
	ok(t, d.Commit())
	log := testdriver.CreateOutputTopic(d, d.ChangelogTopic("last"), serde.String, serde.String)
	want(t, "changelog", read(t, log), []string{"a=x@1", "b=y@2"})
}

// Kafka Streams' store builders (Stores.keyValueStoreBuilder) have caching
// off unless withCachingEnabled is called (AbstractStoreBuilder:
// enableCaching is false by default), so every write of a processor to its
// store is logged at once, even with a record cache configured: two puts
// of one key while processing one record are two changelog records. With
// EnableCaching they are compacted into one at the commit.
func TestProcessorStoreIsNotCachedByDefault(t *testing.T) {
	for _, tc := range []struct {
		caching bool
		want    []string
	}{
		{false, []string{"a=x1@1", "a=x2@1"}},
		{true, []string{"a=x2@1"}},
	} {
		b := dsl.NewBuilder()
		last := dsl.AddKeyValueStore(b, dsl.StoreOptions{Name: "last", EnableCaching: tc.caching}, serde.String, serde.String)
		in := dsl.FromTopic(b, "in", serde.String, serde.String)
		dsl.Process(in, func() operators.Processor[string, string, string, string] {
			var store *state.KV[string, string]
			return &operators.ProcessorFuncs[string, string, string, string]{
				InitFunc: func(ctx operators.ProcessorContext[string, string]) (err error) {
					store, err = last.Open(ctx)
					return err
				},
				ProcessFunc: func(ctx operators.ProcessorContext[string, string], r operators.Record[string, string]) error {
					if err := store.Put(r.Key, r.Value+"1"); err != nil {
						return err
					}
					return store.Put(r.Key, r.Value+"2")
				},
			}
		}, dsl.ConnectStores(last))
		topo, err := b.Build()
		ok(t, err)
		d := newDriver(t, topo, testdriver.WithRecordCache(1<<20), testdriver.WithChangelogs())
		pin := testdriver.CreateInputTopic(d, "in", serde.String, serde.String)
		ok(t, pin.PipeAt("a", "x", 1))
		log := testdriver.CreateOutputTopic(d, d.ChangelogTopic("last"), serde.String, serde.String)
		want(t, fmt.Sprintf("changelog with EnableCaching=%v", tc.caching), read(t, log), tc.want)
	}
}

// EnableCaching applies to processor stores only, and contradicts
// DisableCaching: both are Build errors naming the store.
func TestEnableCachingWhereItDoesNotApply(t *testing.T) {
	b := dsl.NewBuilder()
	dsl.FromTopic(b, "in", serde.String, serde.String).GroupByKey().
		Count(dsl.Materialized(dsl.StoreOptions{Name: "counts", EnableCaching: true}))
	dsl.AddKeyValueStore(b, dsl.StoreOptions{Name: "both", EnableCaching: true, DisableCaching: true}, serde.String, serde.String)
	_, err := b.Build()
	for _, w := range []string{"counts", "EnableCaching: true}) does not apply to Count", "both", "both DisableCaching and EnableCaching"} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("Build error %v does not say %q", err, w)
		}
	}
}
