package dsl_test

import (
	"fmt"
	"time"

	"github.com/sluicehq/sluice/dsl"
	"github.com/sluicehq/sluice/serde"
	"github.com/sluicehq/sluice/testdriver"
	"github.com/sluicehq/sluice/window"
)

// Page views per page and minute, by event time, each minute forwarded
// once when it closes (its end plus 10 seconds of grace). The view at
// 09:00:50 arrives out of order but within the grace period; the one at
// 09:00:20 arrives after the window closed and is dropped as late.
func ExampleWindowedBy() {
	b := dsl.NewBuilder()
	views := dsl.FromTopic(b, "views", serde.String, serde.String).GroupByKey()
	dsl.WindowedBy(views, window.Tumbling(time.Minute, 10*time.Second)).
		EmitFinal().
		Count(dsl.Named("views-per-minute")).
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
	for _, v := range []struct{ page, at string }{
		{"/home", "09:00:05"}, {"/cart", "09:00:30"}, {"/home", "09:01:02"},
		{"/home", "09:00:50"}, // out of order, within grace
		{"/home", "09:01:15"}, // stream time passes 09:01:10: 09:00-09:01 closes
		{"/home", "09:00:20"}, // late
		{"/cart", "09:02:30"}, // closes 09:01-09:02
	} {
		if err := in.PipeAt(v.page, "u1", at(v.at)); err != nil {
			panic(err)
		}
	}
	rs, err := out.ReadRecords()
	if err != nil {
		panic(err)
	}
	clock := func(ms int64) string { return time.UnixMilli(ms).UTC().Format("15:04") }
	for _, r := range rs {
		fmt.Printf("%s-%s %s %d\n", clock(r.Key.Window.Start), clock(r.Key.Window.End), r.Key.Key, r.Value)
	}
	fmt.Println("late:", d.DroppedRecords("views-per-minute", "late"))
	// Output:
	// 09:00-09:01 /cart 1
	// 09:00-09:01 /home 2
	// 09:01-09:02 /home 2
	// late: 1
}

// Sessions of activity per user: views less than 5 minutes apart belong
// to one session, and a view between two sessions merges them. Every
// change is forwarded: a merged session first retracts (null value) the
// sessions it replaces.
func ExampleWindowedBySession() {
	b := dsl.NewBuilder()
	views := dsl.FromTopic(b, "views", serde.String, serde.String).GroupByKey()
	dsl.WindowedBySession(views, window.Session{Gap: 5 * time.Minute, Grace: time.Hour}).
		Count(dsl.Named("views-per-session")).
		ToStream().To("sessions", nil, nil)
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
	out := testdriver.CreateOutputTopic(d, "sessions", window.SessionKeySerde(serde.String), serde.Int64)
	at := func(hhmm string) int64 {
		t, err := time.Parse("2006-01-02 15:04", "2024-05-01 "+hhmm)
		if err != nil {
			panic(err)
		}
		return t.UnixMilli()
	}
	for _, t := range []string{"09:00", "09:08", "09:04"} {
		if err := in.PipeAt("alice", "/home", at(t)); err != nil {
			panic(err)
		}
	}
	rs, err := out.ReadRecords()
	if err != nil {
		panic(err)
	}
	clock := func(ms int64) string { return time.UnixMilli(ms).UTC().Format("15:04") }
	for _, r := range rs {
		v := fmt.Sprint(r.Value)
		if r.Tombstone {
			v = "null"
		}
		fmt.Printf("%s [%s, %s] %s\n", r.Key.Key, clock(r.Key.Window.Start), clock(r.Key.Window.End), v)
	}
	// Output:
	// alice [09:00, 09:00] 1
	// alice [09:08, 09:08] 1
	// alice [09:00, 09:00] null
	// alice [09:08, 09:08] null
	// alice [09:00, 09:08] 3
}
