package dsl_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/dsl"
	"github.com/sluicehq/sluice/operators"
	"github.com/sluicehq/sluice/serde"
	"github.com/sluicehq/sluice/topology"
	"github.com/sluicehq/sluice/window"
)

// Each option implements the option kinds of the operations it applies to
// and no other, so giving it to another operation does not compile (a
// FromTopic option to Filter, Materialized to To, Partitions to Count).
func TestOptionKinds(t *testing.T) {
	type kinds struct{ any, store, source, tableSource, repartition, process bool }
	of := func(o any) kinds {
		_, a := o.(dsl.Option)
		_, st := o.(dsl.StoreOption)
		_, so := o.(dsl.SourceOption)
		_, ts := o.(dsl.TableSourceOption)
		_, r := o.(dsl.RepartitionOption)
		_, p := o.(dsl.ProcessOption)
		return kinds{a, st, so, ts, r, p}
	}
	ts := func(dsl.Maybe[string], dsl.Maybe[string], []operators.Header, int64) int64 { return 0 }
	store := dsl.AddKeyValueStore(dsl.NewBuilder(), dsl.StoreOptions{Name: "s"}, serde.String, serde.String)
	for _, tc := range []struct {
		name string
		opt  any
		want kinds
	}{
		{"Named", dsl.Named("n"), kinds{true, true, true, true, true, true}},
		{"Materialized", dsl.Materialized(dsl.StoreOptions{}), kinds{store: true, tableSource: true}},
		{"Timestamps", dsl.Timestamps(ts), kinds{source: true, tableSource: true}},
		{"WallClockTimestamps", dsl.WallClockTimestamps(), kinds{source: true, tableSource: true}},
		{"OnInvalidTimestamp", dsl.OnInvalidTimestamp(dsl.SkipInvalidTimestamp), kinds{source: true, tableSource: true}},
		{"Partitions", dsl.Partitions(3), kinds{repartition: true}},
		{"ConnectStores", dsl.ConnectStores(store), kinds{process: true}},
	} {
		if got := of(tc.opt); got != tc.want {
			t.Errorf("%s implements %+v, want %+v", tc.name, got, tc.want)
		}
	}
}

// A StoreOptions field that does not apply to the operation is a Build
// error naming the option and the operation.
func TestStoreOptionsThatDoNotApply(t *testing.T) {
	for _, tc := range []struct {
		name  string
		build func(b *dsl.Builder)
		want  string
	}{
		{"Count", func(b *dsl.Builder) {
			dsl.FromTopic(b, "in", serde.String, serde.String).GroupByKey().
				Count(dsl.Materialized(dsl.StoreOptions{Name: "c", Retention: 5}))
		}, "store c: option Materialized(StoreOptions{Retention: 5ns}) does not apply to Count"},
		{"TableFromTopic", func(b *dsl.Builder) {
			dsl.TableFromTopic(b, "in", serde.String, serde.String, dsl.Materialized(dsl.StoreOptions{Name: "t", Retention: 5}))
		}, "store t: option Materialized(StoreOptions{Retention: 5ns}) does not apply to TableFromTopic"},
		{"AddKeyValueStore", func(b *dsl.Builder) {
			dsl.AddKeyValueStore(b, dsl.StoreOptions{Name: "kv", Retention: 5}, serde.String, serde.String)
			dsl.FromTopic(b, "in", serde.String, serde.String).To("out", nil, nil)
		}, "store kv: StoreOptions{Retention: 5ns} does not apply to AddKeyValueStore"},
	} {
		b := dsl.NewBuilder()
		tc.build(b)
		_, err := b.Build()
		var be *topology.BuildError
		if err == nil || !strings.Contains(err.Error(), tc.want) || !errors.As(err, &be) {
			t.Errorf("%s: Build = %v, want a BuildError containing %q", tc.name, err, tc.want)
		}
	}
	// Retention applies to windowed aggregations.
	b := dsl.NewBuilder()
	dsl.WindowedBy(dsl.FromTopic(b, "in", serde.String, serde.String).GroupByKey(), window.Tumbling(5*time.Millisecond, 0)).
		Count(dsl.Materialized(dsl.StoreOptions{Name: "w", Retention: 50 * time.Millisecond}))
	if _, err := b.Build(); err != nil {
		t.Errorf("windowed Count with a retention: Build = %v", err)
	}
}
