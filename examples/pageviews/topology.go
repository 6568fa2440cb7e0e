package main

import (
	"time"

	"github.com/sluicehq/sluice/dsl"
	"github.com/sluicehq/sluice/operators"
	"github.com/sluicehq/sluice/serde"
	"github.com/sluicehq/sluice/topology"
	"github.com/sluicehq/sluice/window"
)

// PageView is a value of the input topic: who viewed which page, and when
// (TS, in milliseconds since the Unix epoch: the event time). A view
// without a ts (absent, null or 0) has no event time and is skipped.
type PageView struct {
	User string `json:"user"`
	Page string `json:"page"`
	TS   int64  `json:"ts,omitempty"`
}

// WindowCount is a value of the output topic: the number of views of Page
// with an event time in [WindowStart, WindowEnd) (epoch milliseconds).
type WindowCount struct {
	Page        string `json:"page"`
	WindowStart int64  `json:"window_start"`
	WindowEnd   int64  `json:"window_end"`
	Count       int64  `json:"count"`
}

// Names in the topology: the source (where undecodable records, empty
// values among them, and records without a ts are counted as dropped), the
// grouping by page (where tombstones are) and the windowed count (where
// late records are), which also names its store, its changelog topic and
// the repartition topic before it.
const (
	sourceNode = "pageviews"
	groupNode  = "by-page"
	countNode  = "views-per-window"
)

// Topology counts the views of each page per tumbling window of the given
// size: it reads JSON PageView values from input (keys are ignored), takes
// each view's ts as its event time, groups the views by page and, when a
// window closes (stream time reaches its end + grace), writes its count
// once to output, with the page as a UTF-8 key and a JSON WindowCount
// value, timestamped with the window's latest view.
//
// Every record dropped is counted by what it was (the runtime's metric
// sluice_dropped_records_total, the driver's DroppedRecords):
//   - a view for a window that has closed is late: reason "late" at node
//     views-per-window;
//   - a view without a ts: "invalid-timestamp" at node pageviews (the
//     source);
//   - a value that is not JSON of a PageView, an empty value among them:
//     "deserialization-error" at node pageviews, if the runtime or driver
//     skips undecodable records (runtime.SkipUndecodableRecords;
//     otherwise it fails the task);
//   - a tombstone (a null value): "null-value" at node by-page.
func Topology(input, output string, size, grace time.Duration) (*topology.Topology, error) {
	b := dsl.NewBuilder()
	views := dsl.FromTopic(b, input, serde.Bytes, serde.JSON[PageView](), dsl.Named(sourceNode),
		dsl.Timestamps(eventTime), dsl.OnInvalidTimestamp(dsl.SkipInvalidTimestamp))
	byPage := dsl.GroupByValue(views, func(v PageView) string { return v.Page }, serde.String, dsl.Named(groupNode))
	counts := dsl.WindowedBy(byPage, window.Tumbling(size, grace)).EmitFinal().Count(dsl.Named(countNode))
	dsl.Map(counts.ToStream(dsl.Named("closed-windows")), func(k window.Windowed[string], n int64) (string, WindowCount) {
		return k.Key, WindowCount{Page: k.Key, WindowStart: k.Window.Start, WindowEnd: k.Window.End, Count: n}
	}, dsl.Named("to-json")).To(output, serde.String, serde.JSON[WindowCount]())
	return b.Build(dsl.RequireNamedStores())
}

// eventTime is the timestamp extractor: a view's ts, or -1 (invalid, so
// the source skips the view and counts it as "invalid-timestamp") when it
// has none.
//
// A tombstone is no view without a ts but no view at all: it gets 0, a
// valid timestamp below any stream time, so that it moves no stream time
// and closes no window (its Kafka timestamp could be far ahead of the
// event times), and the grouping drops it and counts it as what it is
// ("null-value" at node by-page). Kafka Streams' extractor sees the null
// value too, and must do the same (or return its partitionTime argument).
func eventTime(_ dsl.Maybe[[]byte], view dsl.Maybe[PageView], _ []operators.Header, _ int64) int64 {
	v, ok := view.Get()
	if !ok {
		return 0
	}
	if v.TS == 0 {
		return -1
	}
	return v.TS
}
