package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"
)

// The generator of -generate and of the tests: page views over a run of
// consecutive windows, mostly in event-time order, with some out of order
// (but within the grace period), some late, some malformed (some of them
// empty), some without a ts and some tombstones, followed by one view of each page far enough in the future
// to close the last window. It also counts what the topology must emit.
//
// Whether a view is late depends on the stream time of the task that
// counts its page, which sees only the views of the pages of its
// partition: more than the views of the page, fewer than all views. So
// the generator makes every view unambiguous: an on-time view is on time
// even for the largest event time generated before it, a late view is late
// even for the largest event time of its page before it. Then the windows
// are the same whatever the number of partitions, provided each task sees
// the views of its pages in the order generated: the generator keys each
// record by its page (the topology ignores input keys; the key only
// chooses the input partition, which is then the partition the repartition
// topic uses for the page, as both have the same partition count and the
// same hash of the same bytes).

// pages are drawn with these weights, so a few pages are popular.
var pages = []struct {
	path   string
	weight int
}{
	{"/home", 30}, {"/products", 20}, {"/cart", 14}, {"/checkout", 10},
	{"/search", 10}, {"/blog", 8}, {"/about", 5}, {"/pricing", 3},
}

// viewKind is what the generator meant a view to be.
type viewKind int

const (
	inOrder    viewKind = iota
	outOfOrder          // behind the largest event time so far, in a window still open
	late                // for a window already closed: dropped
	malformed           // not JSON of a PageView (an empty value sometimes): dropped
	noTS                // no ts: dropped
	tombstone           // a null value: dropped
	closing             // the final view of a page, past the last window's end + grace
)

// genRecord is one generated input record.
type genRecord struct {
	page  string // also the record's key
	value []byte
	ts    int64 // event time; 0 for malformed and noTS
	kind  viewKind
}

// windowKey names one emitted window: a page and the window's start.
type windowKey struct {
	page  string
	start int64
}

// windowResult is what the topology must emit for a window: the count and
// the output record's timestamp (the largest event time counted).
type windowResult struct {
	count int64
	maxTS int64
}

// generation is a generated input and the output it must produce.
type generation struct {
	records []genRecord
	size    int64 // window size, ms
	grace   int64 // ms
	first   int64 // start of the first window
	windows int   // number of windows holding generated views
	closeAt int64 // event time of the closing views
	want    map[windowKey]windowResult
	kinds   map[viewKind]int
	// previousWindow counts the out-of-order views that went to an
	// earlier window than the latest one: only the grace period kept
	// that window open for them.
	previousWindow int
}

// generate makes n views (plus one closing view per page) with event times
// in windows [first, first+windows*size); first must be a multiple of
// size. The same arguments give the same records.
func generate(n, windows int, first int64, size, grace time.Duration, seed uint64) *generation {
	g := &generation{
		size: size.Milliseconds(), grace: grace.Milliseconds(), first: first, windows: windows,
		want: map[windowKey]windowResult{}, kinds: map[viewKind]int{},
	}
	rng := rand.New(rand.NewPCG(seed, 42))
	totalWeight := 0
	for _, p := range pages {
		totalWeight += p.weight
	}
	pick := func() string {
		w := rng.IntN(totalWeight)
		for _, p := range pages {
			if w < p.weight {
				return p.path
			}
			w -= p.weight
		}
		panic("unreachable")
	}
	span := int64(windows) * g.size
	latest := int64(-1)              // largest valid event time so far
	pageLatest := map[string]int64{} // same, per page
	for i := range n {
		page := pick()
		user := fmt.Sprintf("u%d", 1+rng.IntN(50))
		kind := inOrder
		switch r := rng.IntN(1000); {
		case r < 50:
			kind = outOfOrder
		case r < 75:
			kind = late
		case r < 85:
			kind = malformed
		case r < 95:
			kind = noTS
		case r < 100:
			kind = tombstone
		}
		// The event-time clock: view i falls in the i-th slice of the span.
		lo, hi := first+int64(i)*span/int64(n), first+int64(i+1)*span/int64(n)
		ts := lo + rng.Int64N(max(1, hi-lo))
		switch kind {
		case outOfOrder:
			// On time even for the latest event time: in its window, or
			// at most grace behind it.
			from := max(first, min(latest-g.grace, g.windowStart(latest)))
			if latest <= first || from >= latest {
				kind = inOrder
				break
			}
			ts = from + rng.Int64N(latest-from)
			if g.windowStart(ts) < g.windowStart(latest) {
				g.previousWindow++
			}
		case late:
			// Late even for the latest event time of its own page: its
			// window ended at least grace before that.
			pl, ok := pageLatest[page]
			if !ok || pl-g.grace-g.size < first {
				kind = inOrder
				break
			}
			ts = first + rng.Int64N(pl-g.grace-g.size-first+1)
		}
		rec := genRecord{page: page, ts: ts, kind: kind}
		switch kind {
		case malformed:
			rec.ts = 0
			rec.value = []byte(malformedValues[rng.IntN(len(malformedValues))])
		case tombstone:
			rec.ts = 0
			rec.value = nil
		case noTS:
			rec.ts = 0
			rec.value = mustJSON(PageView{User: user, Page: page})
		default:
			rec.value = mustJSON(PageView{User: user, Page: page, TS: ts})
		}
		g.add(rec, &latest, pageLatest)
	}
	// Stream time only moves with records: a view of each page at the last
	// window's end + grace closes it in every task. These views open the
	// next window, which stays open.
	g.closeAt = first + span + g.grace
	for _, p := range pages {
		g.add(genRecord{page: p.path, ts: g.closeAt, kind: closing,
			value: mustJSON(PageView{User: "u1", Page: p.path, TS: g.closeAt})}, &latest, pageLatest)
	}
	return g
}

// add appends rec and counts it where the topology must.
func (g *generation) add(rec genRecord, latest *int64, pageLatest map[string]int64) {
	g.records = append(g.records, rec)
	g.kinds[rec.kind]++
	switch rec.kind {
	case inOrder, outOfOrder:
		k := windowKey{rec.page, g.windowStart(rec.ts)}
		r := g.want[k]
		r.count++
		r.maxTS = max(r.maxTS, rec.ts)
		g.want[k] = r
	case late, malformed, noTS, tombstone, closing:
		// Not counted in any window that closes.
	}
	if rec.ts > 0 {
		*latest = max(*latest, rec.ts)
		pageLatest[rec.page] = max(pageLatest[rec.page], rec.ts)
	}
}

func (g *generation) windowStart(ts int64) int64 { return ts - ts%g.size }

// covers reports whether every window the generation must produce was
// written (with whatever count).
func (g *generation) covers(got []Emitted) bool {
	seen := map[windowKey]bool{}
	for _, e := range got {
		k := windowKey{e.Value.Page, e.Value.WindowStart}
		if _, ok := g.want[k]; ok {
			seen[k] = true
		}
	}
	return len(seen) == len(g.want)
}

// check compares the windows written with those the generation must
// produce: each one written with its page as the key, its end, its count
// and the timestamp of its latest view, and no other window. A window
// written twice is an error unless dupsOK (at-least-once after a crash
// may repeat a window, with the same result).
func (g *generation) check(got []Emitted, dupsOK bool) error {
	var errs []error
	seen := map[windowKey]int{}
	for _, e := range got {
		k := windowKey{e.Value.Page, e.Value.WindowStart}
		seen[k]++
		w, ok := g.want[k]
		switch {
		case !ok:
			errs = append(errs, fmt.Errorf("unexpected window %+v (timestamp %d)", e.Value, e.Timestamp))
		case e.Key != k.page || e.Value.WindowEnd != k.start+g.size || e.Value.Count != w.count || e.Timestamp != w.maxTS:
			errs = append(errs, fmt.Errorf("window %+v, key %q, timestamp %d: want count %d, end %d, timestamp %d",
				e.Value, e.Key, e.Timestamp, w.count, k.start+g.size, w.maxTS))
		case seen[k] == 2 && !dupsOK:
			errs = append(errs, fmt.Errorf("window %+v written twice", e.Value))
		}
	}
	for k, w := range g.want {
		if seen[k] == 0 {
			errs = append(errs, fmt.Errorf("window %s@%d (count %d) not written", k.page, k.start, w.count))
		}
	}
	return errors.Join(errs...)
}

// malformedValues are values that do not decode as a PageView. The empty
// value is not JSON either (not a tombstone: those have no value at all).
var malformedValues = []string{
	``,
	`{"user":"u7","page":"/home","ts":`,
	`not json`,
	`{"user":"u7","page":"/home","ts":"yesterday"}`,
	`[1,2,3]`,
}

func mustJSON(v PageView) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}
