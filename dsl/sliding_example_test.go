package dsl_test

import (
	"fmt"
	"time"

	"github.com/sluicehq/sluice/dsl"
	"github.com/sluicehq/sluice/serde"
	"github.com/sluicehq/sluice/testdriver"
	"github.com/sluicehq/sluice/window"
)

// Clicks per user within any 10 minutes, each window forwarded once when
// it closes. A sliding window exists for each distinct set of clicks at
// most 10 minutes apart: the window ending at a click, and the one
// starting 1ms after it while later clicks fall into it.
func ExampleWindowedBySliding() {
	b := dsl.NewBuilder()
	clicks := dsl.FromTopic(b, "clicks", serde.String, serde.String).GroupByKey()
	dsl.WindowedBySliding(clicks, window.Sliding{TimeDifference: 10 * time.Minute}).
		EmitFinal().
		Count(dsl.Named("clicks-per-10m")).
		ToStream().To("click-counts", nil, nil)
	topo, err := b.Build()
	if err != nil {
		panic(err)
	}

	d, err := testdriver.New(topo)
	if err != nil {
		panic(err)
	}
	defer d.Close()
	in := testdriver.CreateInputTopic(d, "clicks", serde.String, serde.String)
	out := testdriver.CreateOutputTopic(d, "click-counts", window.TimeKeySerde(serde.String, 10*time.Minute), serde.Int64)
	at := func(hhmm string) int64 {
		t, err := time.Parse("2006-01-02 15:04", "2024-05-01 "+hhmm)
		if err != nil {
			panic(err)
		}
		return t.UnixMilli()
	}
	for _, t := range []string{"09:00", "09:04", "09:12", "09:30"} {
		if err := in.PipeAt("alice", "/home", at(t)); err != nil {
			panic(err)
		}
	}
	rs, err := out.ReadRecords()
	if err != nil {
		panic(err)
	}
	clock := func(ms int64) string { return time.UnixMilli(ms).UTC().Format("15:04:05.000") }
	for _, r := range rs {
		fmt.Printf("%s [%s, %s] %d\n", r.Key.Key, clock(r.Key.Window.Start), clock(r.Key.Window.End), r.Value)
	}
	// Output:
	// alice [08:50:00.000, 09:00:00.000] 1
	// alice [08:54:00.000, 09:04:00.000] 2
	// alice [09:00:00.001, 09:10:00.001] 1
	// alice [09:02:00.000, 09:12:00.000] 2
	// alice [09:04:00.001, 09:14:00.001] 1
}

// Reduce over sliding windows of 10ms with 5ms grace, emit-final: the
// input and output of Kafka Streams' KStreamSlidingWindowAggregateTest
// testReduceSmallInput. The windows still open at the end (stream time
// 30, close time 25) are not forwarded.
func ExampleSlidingWindowedStream_Reduce() {
	b := dsl.NewBuilder()
	g := dsl.FromTopic(b, "in", serde.String, serde.String).GroupByKey()
	dsl.WindowedBySliding(g, window.Sliding{TimeDifference: 10 * time.Millisecond, Grace: 5 * time.Millisecond}).
		EmitFinal().
		Reduce(func(agg, v string) string { return agg + "+" + v }).
		ToStream().To("out", nil, nil)
	topo, err := b.Build()
	if err != nil {
		panic(err)
	}

	d, err := testdriver.New(topo)
	if err != nil {
		panic(err)
	}
	defer d.Close()
	in := testdriver.CreateInputTopic(d, "in", serde.String, serde.String)
	out := testdriver.CreateOutputTopic(d, "out", window.TimeKeySerde(serde.String, 10*time.Millisecond), serde.String)
	for i, ts := range []int64{10, 14, 15, 22, 26, 30} {
		if err := in.PipeAt("A", fmt.Sprint(i+1), ts); err != nil {
			panic(err)
		}
	}
	rs, err := out.ReadRecords()
	if err != nil {
		panic(err)
	}
	for _, r := range rs {
		fmt.Printf("%s [%d,%d] %s @%d\n", r.Key.Key, r.Key.Window.Start, r.Key.Window.End, r.Value, r.Timestamp)
	}
	// Output:
	// A [0,10] 1 @10
	// A [4,14] 1+2 @14
	// A [5,15] 1+2+3 @15
	// A [11,21] 2+3 @15
	// A [12,22] 2+3+4 @22
}
