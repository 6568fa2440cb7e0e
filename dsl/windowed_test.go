package dsl_test

// Data-driven tests of windowed aggregations through the test driver: each
// file in testdata/windows describes a window definition, an emit mode and
// an aggregation, the input records (key, timestamp, value) and the exact
// output expected, and optionally the store's contents at the end and the
// late records dropped. The expectations follow Kafka Streams' semantics
// (KStreamWindowAggregate, KStreamSessionWindowAggregate,
// KStreamSlidingWindowAggregate).
//
// Format, one directive per line ('#' starts a comment):
//
//	window tumbling size=10ms grace=5ms
//	window hopping size=10ms advance=5ms grace=0s
//	window session gap=5ms grace=0s
//	window sliding diff=10ms grace=0s
//	emit update|final
//	agg count|sum|concat       (sum: int values; concat: string values joined with "+")
//	retention 1m               (the store's retention, Materialized.Retention)
//	in <key> <ts> [value]      (pipe a record; value defaults to "1")
//	out <key> <start> <end> <value>|delete @<ts>
//	store <key> <start> <end> <value>   (after the input, the store holds exactly these)
//	late <n>                   (records dropped as late)

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/dsl"
	"github.com/sluicehq/sluice/operators"
	"github.com/sluicehq/sluice/serde"
	"github.com/sluicehq/sluice/state"
	"github.com/sluicehq/sluice/testdriver"
	"github.com/sluicehq/sluice/window"
)

type windowCase struct {
	kind                            string // tumbling, hopping, session, sliding
	size, advance, grace, gap, diff time.Duration
	final                           bool
	agg                             string
	retention                       time.Duration
	in                              []windowInput
	out, store                      []string
	late                            int64
	hasStore, hasLate               bool
}

type windowInput struct {
	key   string
	ts    int64
	value string
}

func parseWindowCase(t *testing.T, path string) windowCase {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	c := windowCase{agg: "count"}
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		fs := strings.Fields(line)
		if len(fs) == 0 {
			continue
		}
		bad := func(format string, args ...any) {
			t.Fatalf("%s:%d: %s", path, n, fmt.Sprintf(format, args...))
		}
		dur := func(s string) time.Duration {
			d, err := time.ParseDuration(s)
			if err != nil {
				bad("%v", err)
			}
			return d
		}
		switch fs[0] {
		case "window":
			c.kind = fs[1]
			for _, kv := range fs[2:] {
				k, v, _ := strings.Cut(kv, "=")
				switch k {
				case "size":
					c.size = dur(v)
				case "advance":
					c.advance = dur(v)
				case "grace":
					c.grace = dur(v)
				case "gap":
					c.gap = dur(v)
				case "diff":
					c.diff = dur(v)
				default:
					bad("unknown window parameter %q", k)
				}
			}
		case "emit":
			c.final = fs[1] == "final"
		case "agg":
			c.agg = fs[1]
		case "retention":
			c.retention = dur(fs[1])
		case "in":
			ts, err := strconv.ParseInt(fs[2], 10, 64)
			if err != nil {
				bad("%v", err)
			}
			v := "1"
			if len(fs) > 3 {
				v = fs[3]
			}
			c.in = append(c.in, windowInput{fs[1], ts, v})
		case "out":
			c.out = append(c.out, strings.Join(fs[1:], " "))
		case "store":
			c.hasStore = true
			c.store = append(c.store, strings.Join(fs[1:], " "))
		case "late":
			c.hasLate = true
			if c.late, err = strconv.ParseInt(fs[1], 10, 64); err != nil {
				bad("%v", err)
			}
		default:
			bad("unknown directive %q", fs[0])
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return c
}

// buildWindowCase builds in → groupByKey → windowed aggregation → out.
// The aggregate is kept as a string so that every aggregation writes the
// same output format.
func buildWindowCase(t *testing.T, c windowCase) (*testdriver.Driver, func() []string, func() []string) {
	t.Helper()
	b := dsl.NewBuilder()
	g := dsl.FromTopic(b, "in", serde.String, serde.String).GroupByKey()
	mat := []dsl.StoreOption{dsl.Named("agg"), dsl.Materialized(dsl.StoreOptions{Name: "agg", Retention: c.retention})}
	init := func() string { return "" }
	add := func(_ string, v, agg string) string {
		switch c.agg {
		case "count":
			n, _ := strconv.Atoi(agg)
			return strconv.Itoa(n + 1)
		case "sum":
			a, _ := strconv.Atoi(agg)
			x, _ := strconv.Atoi(v)
			return strconv.Itoa(a + x)
		}
		if agg == "" {
			return v
		}
		return agg + "+" + v
	}
	merge := func(_ string, a, b string) string {
		switch c.agg {
		case "count", "sum":
			x, _ := strconv.Atoi(a)
			y, _ := strconv.Atoi(b)
			return strconv.Itoa(x + y)
		}
		if a == "" {
			return b
		}
		return a + "+" + b
	}
	var keys serde.Serde[window.Windowed[string]]
	switch c.kind {
	case "tumbling", "hopping":
		w := window.Time{Size: c.size, Advance: c.advance, Grace: c.grace}
		ws := dsl.WindowedBy(g, w)
		if c.final {
			ws = ws.EmitFinal()
		}
		dsl.WindowedAggregate(ws, init, add, serde.String, mat...).ToStream().To("out", nil, nil)
		keys = window.TimeKeySerde(serde.String, c.size)
	case "session":
		ss := dsl.WindowedBySession(g, window.Session{Gap: c.gap, Grace: c.grace})
		if c.final {
			ss = ss.EmitFinal()
		}
		dsl.SessionAggregate(ss, init, add, merge, serde.String, mat...).ToStream().To("out", nil, nil)
		keys = window.SessionKeySerde(serde.String)
	case "sliding":
		sw := dsl.WindowedBySliding(g, window.Sliding{TimeDifference: c.diff, Grace: c.grace})
		if c.final {
			sw = sw.EmitFinal()
		}
		dsl.SlidingAggregate(sw, init, add, serde.String, mat...).ToStream().To("out", nil, nil)
		keys = window.TimeKeySerde(serde.String, c.diff)
		c.size = c.diff // the stored windows end diff after their start
	default:
		t.Fatalf("unknown window kind %q", c.kind)
	}
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	d, err := testdriver.New(topo)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Close() })
	out := testdriver.CreateOutputTopic(d, "out", keys, serde.String)
	readOut := func() []string {
		rs, err := out.ReadRecords()
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, r := range rs {
			v := r.Value
			if r.Tombstone {
				v = "delete"
			}
			got = append(got, fmt.Sprintf("%s %d %d %s @%d", r.Key.Key, r.Key.Window.Start, r.Key.Window.End, v, r.Timestamp))
		}
		return got
	}
	readStore := func() []string {
		var got []string
		switch s := d.Store("agg").(type) {
		case *state.WindowStore:
			for k, v := range s.All() {
				_, agg, err := operators.DecodeTimestamped(v)
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, fmt.Sprintf("%s %d %d %s", k.Key, k.Start, k.Start+c.size.Milliseconds(), agg))
			}
		case *state.SessionStore:
			for k, v := range s.All() {
				got = append(got, fmt.Sprintf("%s %d %d %s", k.Key, k.Start, k.End, v))
			}
		default:
			t.Fatalf("store agg is a %T", s)
		}
		return got
	}
	return d, readOut, readStore
}

func TestWindowedAggregationData(t *testing.T) {
	files, err := filepath.Glob("testdata/windows/*.txt")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no test files in testdata/windows")
	}
	for _, path := range files {
		t.Run(strings.TrimSuffix(filepath.Base(path), ".txt"), func(t *testing.T) {
			c := parseWindowCase(t, path)
			d, readOut, readStore := buildWindowCase(t, c)
			in := testdriver.CreateInputTopic(d, "in", serde.String, serde.String)
			for _, r := range c.in {
				if err := in.PipeAt(r.key, r.value, r.ts); err != nil {
					t.Fatal(err)
				}
			}
			if got := readOut(); !slices.Equal(got, c.out) {
				t.Errorf("output:\n got  %q\n want %q", got, c.out)
			}
			if c.hasStore {
				if got := readStore(); !slices.Equal(got, c.store) {
					t.Errorf("store:\n got  %q\n want %q", got, c.store)
				}
			}
			late := d.DroppedRecords("agg", "late")
			if c.hasLate && late != c.late {
				t.Errorf("late records dropped: got %d, want %d", late, c.late)
			}
		})
	}
}
