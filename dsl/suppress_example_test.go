package dsl_test

import (
	"fmt"
	"time"

	"github.com/sluicehq/sluice/dsl"
	"github.com/sluicehq/sluice/serde"
	"github.com/sluicehq/sluice/testdriver"
	"github.com/sluicehq/sluice/window"
)

// Page views per page and minute, each minute written once with its final
// count: the windowed count forwards every update (here through the record
// cache), and Suppress holds them until the minute closes, its end plus 10
// seconds of grace by the event time of the updates it has seen.
func ExampleTable_Suppress() {
	b := dsl.NewBuilder()
	views := dsl.FromTopic(b, "views", serde.String, serde.String).GroupByKey()
	dsl.WindowedBy(views, window.Tumbling(time.Minute, 10*time.Second)).
		Count(dsl.Named("views-per-minute")).
		Suppress(dsl.UntilWindowCloses(dsl.BufferConfig{}).WithName("final-views")).
		ToStream().To("view-counts", nil, nil)
	topo, err := b.Build()
	if err != nil {
		panic(err)
	}

	d, err := testdriver.New(topo)
	if err != nil {
		panic(err)
	}
	defer d.Close()
	in := testdriver.CreateInputTopic(d, "views", serde.String, serde.String)
	out := testdriver.CreateOutputTopic(d, "view-counts", window.TimeKeySerde(serde.String, time.Minute), serde.Int64)
	at := func(hhmmss string) int64 {
		t, err := time.Parse("2006-01-02 15:04:05", "2024-05-01 "+hhmmss)
		if err != nil {
			panic(err)
		}
		return t.UnixMilli()
	}
	clock := func(ms int64) string { return time.UnixMilli(ms).UTC().Format("15:04") }
	for _, v := range []struct{ page, at string }{
		{"/home", "09:00:05"}, {"/cart", "09:00:30"}, {"/home", "09:00:50"},
		{"/home", "09:01:02"}, // 09:00-09:01 is still open: its grace runs to 09:01:10
		{"/cart", "09:01:12"}, // closes 09:00-09:01
		{"/home", "09:02:30"}, // closes 09:01-09:02
	} {
		if err := in.PipeAt(v.page, "u1", at(v.at)); err != nil {
			panic(err)
		}
		rs, err := out.ReadRecords()
		if err != nil {
			panic(err)
		}
		for _, r := range rs {
			fmt.Printf("at %s: %s-%s %s %d\n", v.at, clock(r.Key.Window.Start), clock(r.Key.Window.End), r.Key.Key, r.Value)
		}
	}
	// Output:
	// at 09:01:12: 09:00-09:01 /cart 1
	// at 09:01:12: 09:00-09:01 /home 2
	// at 09:02:30: 09:01-09:02 /cart 1
	// at 09:02:30: 09:01-09:02 /home 1
}
