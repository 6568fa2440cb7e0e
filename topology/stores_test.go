package topology

import (
	"maps"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/internal/nodes"
)

func TestStoreKinds(t *testing.T) {
	for _, tc := range []struct {
		spec      StoreSpec
		name      string
		prefix    int
		retention time.Duration
		segment   time.Duration
		config    map[string]string
	}{
		{StoreSpec{Kind: KeyValue, Retention: time.Hour}, "key-value", 0, 0, 0,
			map[string]string{"cleanup.policy": "compact", "message.timestamp.type": "CreateTime"}},
		{StoreSpec{Kind: Window, Retention: time.Hour}, "window", 8, time.Hour, 30 * time.Minute,
			map[string]string{"cleanup.policy": "compact,delete", "retention.ms": "90000000", "message.timestamp.type": "CreateTime"}},
		{StoreSpec{Kind: Window, Retention: 10 * time.Second, SegmentInterval: 5 * time.Second}, "window", 8, 10 * time.Second, 5 * time.Second,
			map[string]string{"cleanup.policy": "compact,delete", "retention.ms": "86410000", "message.timestamp.type": "CreateTime"}},
		{StoreSpec{Kind: Session, Retention: 10 * time.Second, ChangelogConfig: map[string]string{"retention.ms": "-1"}}, "session", 8,
			10*time.Second + time.Millisecond, time.Minute,
			map[string]string{"cleanup.policy": "compact,delete", "retention.ms": "-1", "message.timestamp.type": "CreateTime"}},
		// Kafka Streams' VersionedChangelogTopicConfig: compact, with
		// min.compaction.lag.ms = history retention + 1 day unless set.
		{StoreSpec{Kind: Versioned, HistoryRetention: 5 * time.Minute}, "versioned", 0, 0, 0,
			map[string]string{"cleanup.policy": "compact", "min.compaction.lag.ms": "86700000", "message.timestamp.type": "CreateTime"}},
		{StoreSpec{Kind: Versioned, HistoryRetention: time.Duration(math.MaxInt64)}, "versioned", 0, 0, 0,
			map[string]string{"cleanup.policy": "compact", "min.compaction.lag.ms": "9223372036854", "message.timestamp.type": "CreateTime"}},
		{StoreSpec{Kind: Versioned, HistoryRetention: time.Hour, ChangelogConfig: map[string]string{"min.compaction.lag.ms": "5"}}, "versioned", 0, 0, 0,
			map[string]string{"cleanup.policy": "compact", "min.compaction.lag.ms": "5", "message.timestamp.type": "CreateTime"}},
	} {
		s := tc.spec
		if got := s.Kind.String(); got != tc.name {
			t.Errorf("%v: String = %q, want %q", s, got, tc.name)
		}
		if got := s.Kind.SegmentPrefixLen(); got != tc.prefix {
			t.Errorf("%s: SegmentPrefixLen = %d, want %d", tc.name, got, tc.prefix)
		}
		if got := s.StoreRetention(); got != tc.retention {
			t.Errorf("%s: StoreRetention = %v, want %v", tc.name, got, tc.retention)
		}
		if got := s.EffectiveSegmentInterval(); got != tc.segment {
			t.Errorf("%s: EffectiveSegmentInterval = %v, want %v", tc.name, got, tc.segment)
		}
		if got, want := s.Kind.RestoresThroughStore(), s.Kind != KeyValue; got != want {
			t.Errorf("%s: RestoresThroughStore = %v, want %v", tc.name, got, want)
		}
		if got := s.ChangelogTopicConfig(); !maps.Equal(got, tc.config) {
			t.Errorf("%s: ChangelogTopicConfig = %v, want %v", tc.name, got, tc.config)
		}
	}
	if got := StoreKind(42).String(); got != "StoreKind(42)" {
		t.Errorf("StoreKind(42).String() = %q", got)
	}
}

func TestCompileStoreKindErrors(t *testing.T) {
	noop := func(nodes.Context, []any) (any, error) { return nil, nil }
	src := &Node{Name: "src", Kind: Source, Topics: []string{"in"}, New: noop}
	_, err := Compile([]*Node{src}, []*StoreSpec{
		{Name: "dups", Kind: KeyValue, RetainDuplicates: true},
		{Name: "odd", Kind: StoreKind(9)},
		{Name: "hist", Kind: KeyValue, HistoryRetention: time.Minute},
		{Name: "v0", Kind: Versioned},
	})
	for _, want := range []string{"store dups: only window stores can retain duplicates, this is a key-value store", "store odd: unknown store kind 9",
		"store hist: only versioned stores keep a history retention, this is a key-value store",
		"store v0: a versioned store needs a positive history retention (not 0s) and no Timestamped values"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Compile = %v, want an error containing %q", err, want)
		}
	}
}

// Two components that share a store are one sub-topology, numbered by its
// first node; a component without stores stays apart, and only a
// sub-topology with stores and several source topics is a co-partition
// group.
func TestCompileMergesSubTopologiesSharingAStore(t *testing.T) {
	noop := func(nodes.Context, []any) (any, error) { return nil, nil }
	a := &Node{Name: "a", Kind: Source, Topics: []string{"ta"}, New: noop}
	x := &Node{Name: "x", Kind: Source, Topics: []string{"tx"}, New: noop}
	b := &Node{Name: "b", Kind: Source, Topics: []string{"rep"}, Internal: true, New: noop}
	pa := &Node{Name: "pa", Kind: Processor, Stores: []string{"s"}, New: noop}
	px := &Node{Name: "px", Kind: Processor, New: noop}
	pb := &Node{Name: "pb", Kind: Processor, Stores: []string{"s"}, New: noop}
	a.AddChild(pa)
	x.AddChild(px)
	b.AddChild(pb)
	topo, err := Compile([]*Node{a, x, b, pa, px, pb}, []*StoreSpec{{Name: "s"}})
	if err != nil {
		t.Fatal(err)
	}
	subs := topo.SubTopologies()
	if len(subs) != 2 || len(subs[0].Nodes) != 4 || subs[1].Nodes[0] != x || len(subs[0].Stores) != 1 {
		t.Fatalf("sub-topologies:\n%s", topo.Describe())
	}
	g := topo.CoPartitionGroups()
	if len(g) != 1 || g[0].SubTopology != 0 || len(g[0].Topics) != 2 ||
		g[0].Topics[0].KafkaName("app") != "ta" || g[0].Topics[1].KafkaName("app") != "app-rep" {
		t.Errorf("CoPartitionGroups = %+v, want sub-topology 0 with ta and app-rep", g)
	}
}
