package main

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
)

// The generator of -generate and of the tests: users in four regions, a
// catalog of pages, and clicks and purchases over a run of consecutive
// one-minute windows, with clicks out of order, clicks of users the users
// table does not know and clicks of pages the pages table does not know.
// From the same input it computes directly what the topology must write
// (the oracle: want).
//
// The input is fed in rounds, and the next round is produced only once
// the application has committed the previous one (feed). That makes the
// output a function of the input alone. Without it, what a windowed
// operation keeps would depend on how the tasks interleave: region-clicks
// counts records that four upstream tasks write into a repartition topic,
// in whatever order they run, and a task that races ahead would push
// stream time past windows whose clicks a slower task has not yet
// forwarded, making them late; a live stream, produced as it happens,
// does not give a task that lead. Within a round, any order gives the
// same output, because every record of a round is on time at the largest
// event time of that round and the ones before it:
//
//   - a round spans either the first 10 s of a window (the grace period)
//     or its last 50 s; a click out of order is at most 10 s behind the
//     start of its round, so at most in the previous window when the round
//     starts a window, and in the round's own window otherwise. Its window
//     ends at least 10 s (the grace) after the largest event time of the
//     round: on time for region-clicks whatever the order.
//   - the stream-stream join drops nothing for lateness, and its stores
//     keep 11 minutes (10 min before + 1 min grace) behind stream time,
//     more than the 10 minutes of a purchase's window plus the under a
//     minute a record of a round can be behind the round's latest.
//
// The last round holds one click of each region at the last window's end
// + grace, which moves the stream time of every region's task there and
// so closes every window before (those clicks open a next window, which
// stays open).

// regions of the users.
var regions = []string{"eu", "us", "apac", "latam"}

// catalog is the pages table, with the weights the clicks draw them by.
var catalog = []struct {
	path, category string
	weight         int
}{
	{"/home", "landing", 25}, {"/products", "catalog", 18}, {"/products/shoes", "catalog", 10},
	{"/search", "discovery", 10}, {"/cart", "checkout", 10}, {"/checkout", "checkout", 6},
	{"/blog", "content", 8}, {"/pricing", "landing", 5},
}

// unknownPages are clicked but not in the pages table.
var unknownPages = []string{"/promo/spring", "/old/home", "/beta/search"}

// genRecord is one generated record of the clicks or purchases topic.
type genRecord struct {
	purchase bool   // a purchase, else a click
	user     string // the record's key
	value    []byte
}

// round is the records produced together, in generation order.
type round struct {
	records []genRecord
	lo, hi  int64 // the event-time range of its in-order records, [lo, hi)
}

// windowKey names one window of region-clicks.
type windowKey struct {
	region string
	start  int64
}

// windowResult is what region-clicks must write for a window: the count
// and the output record's timestamp (its latest click).
type windowResult struct {
	count int64
	maxTS int64
}

// generation is a generated input and the output it must produce.
type generation struct {
	users   []User
	pages   []Page // the pages topic, in order; the latest value of a page counts
	rounds  []round
	clicks  []Click
	buys    []Purchase
	first   int64 // start of the first window
	windows int   // number of windows holding generated clicks
	closeAt int64 // event time of the closing clicks

	// What the generator made on purpose.
	outOfOrder     int // clicks behind the latest event time generated before them
	previousWindow int // of which in an earlier window than that latest event time
	unknownUsers   int // clicks of users not in the users table
	unknownPages   int // clicks of pages not in the pages table

	want oracle
}

// oracle is the output computed directly from the input: each output
// record, as (key, canonical JSON value, timestamp), with its multiplicity.
type oracle struct {
	enriched   map[outKey]int
	windows    map[windowKey]windowResult
	attributed map[outKey]int
}

// outKey is an output record in a comparable form.
type outKey struct {
	key, value string
	ts         int64
}

func (k outKey) String() string { return fmt.Sprintf("%s %s @%d", k.key, k.value, k.ts) }

// generate makes about n clicks (and a fiftieth as many purchases) with
// event times in the windows [first, first+windows*minute); first must be
// a multiple of a minute. The same arguments give the same records.
func generate(n, windows int, first int64, seed uint64) *generation {
	size, grace := regionWindow.Milliseconds(), regionGrace.Milliseconds()
	g := &generation{first: first, windows: windows}
	rng := rand.New(rand.NewPCG(seed, 10))

	nUsers := max(len(regions), n/25)
	for i := range nUsers {
		region := regions[i%len(regions)] // every region has users
		if i >= len(regions) {
			region = regions[rng.IntN(len(regions))]
		}
		g.users = append(g.users, User{User: fmt.Sprintf("u%d", i+1), Region: region})
	}
	for _, p := range catalog {
		g.pages = append(g.pages, Page{Page: p.path, Category: p.category})
	}
	totalWeight := 0
	for _, p := range catalog {
		totalWeight += p.weight
	}
	pickPage := func() string {
		if rng.IntN(100) < 5 {
			g.unknownPages++
			return unknownPages[rng.IntN(len(unknownPages))]
		}
		w := rng.IntN(totalWeight)
		for _, p := range catalog {
			if w < p.weight {
				return p.path
			}
			w -= p.weight
		}
		panic("unreachable")
	}
	pickUser := func() string {
		if rng.IntN(100) < 3 {
			g.unknownUsers++
			return fmt.Sprintf("u%d", nUsers+1+rng.IntN(20))
		}
		return g.users[rng.IntN(nUsers)].User
	}

	// Rounds: for each window, its first grace and the rest.
	for w := range windows {
		start := first + int64(w)*size
		g.rounds = append(g.rounds, round{lo: start, hi: start + grace}, round{lo: start + grace, hi: start + size})
	}
	span := int64(windows) * size
	latest := int64(-1) // largest event time generated so far
	r := 0
	for i := range n {
		// The event-time clock: click i falls in the i-th slice of the span.
		lo, hi := first+int64(i)*span/int64(n), first+int64(i+1)*span/int64(n)
		ts := lo + rng.Int64N(max(1, hi-lo))
		for ts >= g.rounds[r].hi {
			r++
		}
		rd := &g.rounds[r]
		if rng.IntN(100) < 6 {
			// Out of order: behind the latest event time, at most grace
			// before the round's start.
			if from := max(first, rd.lo-grace); latest > from {
				ts = from + rng.Int64N(latest-from)
				g.outOfOrder++
				if ts-ts%size < latest-latest%size {
					g.previousWindow++
				}
			}
		}
		c := Click{User: pickUser(), Page: pickPage(), TS: ts}
		g.addClick(rd, c)
		latest = max(latest, ts)
		if rng.IntN(50) == 0 {
			// A purchase now, mostly by a user who clicked lately (so it
			// is attributed to some clicks), else by anyone.
			user := g.clicks[len(g.clicks)-1-rng.IntN(min(len(g.clicks), 200))].User
			if rng.IntN(4) == 0 {
				user = pickUser()
			}
			g.addPurchase(rd, Purchase{User: user, Amount: float64(1+rng.IntN(20000)) / 100, TS: max(rd.lo, latest-rng.Int64N(5000))})
		}
	}
	// Stream time moves only with records: a click of each region at the
	// last window's end + grace closes every window in each region's task.
	g.closeAt = first + span + grace
	closing := round{lo: g.closeAt, hi: g.closeAt + 1}
	for _, region := range regions {
		for _, u := range g.users {
			if u.Region == region {
				g.addClick(&closing, Click{User: u.User, Page: "/home", TS: g.closeAt})
				break
			}
		}
	}
	g.rounds = append(g.rounds, closing)
	g.rounds = slices.DeleteFunc(g.rounds, func(r round) bool { return len(r.records) == 0 })
	g.compute()
	return g
}

func (g *generation) addClick(r *round, c Click) {
	g.clicks = append(g.clicks, c)
	r.records = append(r.records, genRecord{user: c.User, value: mustJSON(c)})
}

func (g *generation) addPurchase(r *round, p Purchase) {
	g.buys = append(g.buys, p)
	r.records = append(r.records, genRecord{purchase: true, user: p.User, value: mustJSON(p)})
}

// compute fills g.want from the input alone: the users table, the latest
// value of each page, every click and every purchase.
func (g *generation) compute() {
	size, grace := regionWindow.Milliseconds(), regionGrace.Milliseconds()
	region := map[string]string{}
	for _, u := range g.users {
		region[u.User] = u.Region
	}
	category := map[string]string{}
	for _, p := range g.pages {
		category[p.Page] = p.Category
	}
	g.want = oracle{enriched: map[outKey]int{}, windows: map[windowKey]windowResult{}, attributed: map[outKey]int{}}
	streamTime := map[string]int64{} // per region: the region-clicks task's, at the end
	for _, c := range g.clicks {
		r, ok := region[c.User]
		if !ok {
			continue
		}
		e := EnrichedClick{User: c.User, Page: c.Page, Region: r, TS: c.TS}
		if cat, ok := category[c.Page]; ok {
			e.Category = &cat
		}
		g.want.enriched[outKey{c.User, string(mustJSON(e)), c.TS}]++
		k := windowKey{r, c.TS - c.TS%size}
		w := g.want.windows[k]
		w.count++
		w.maxTS = max(w.maxTS, c.TS)
		g.want.windows[k] = w
		streamTime[r] = max(streamTime[r], c.TS)
	}
	// Only windows that closed are written: end + grace <= stream time.
	// A region's task also sees the clicks of the other regions of its
	// partition; the closing clicks make every region's own stream time
	// the largest of all, so its own is the task's.
	maps.DeleteFunc(g.want.windows, func(k windowKey, _ windowResult) bool {
		return k.start+size+grace > streamTime[k.region]
	})
	before, after := attributionWindows.Before.Milliseconds(), attributionWindows.After.Milliseconds()
	byUser := map[string][]Click{}
	for _, c := range g.clicks {
		byUser[c.User] = append(byUser[c.User], c)
	}
	for _, p := range g.buys {
		for _, c := range byUser[p.User] {
			if c.TS >= p.TS-before && c.TS <= p.TS+after {
				a := AttributedPurchase{User: p.User, Page: c.Page, Amount: p.Amount, ClickTS: c.TS, PurchaseTS: p.TS}
				g.want.attributed[outKey{p.User, string(mustJSON(a)), max(p.TS, c.TS)}]++
			}
		}
	}
}

// Emitted is a record read from an output topic.
type Emitted struct {
	Key       string
	Value     []byte
	Timestamp int64 // ms
}

// outputs are the records read from the three output topics, each in the
// order read.
type outputs struct {
	enriched, regions, attributed []Emitted
}

func (o *outputs) total() int { return len(o.enriched) + len(o.regions) + len(o.attributed) }

// canonical decodes an output record as a V and encodes it again, so that
// records compare whatever the spacing and field order of their JSON.
func canonical[V any](e Emitted) (outKey, V, error) {
	var v V
	dec := json.NewDecoder(strings.NewReader(string(e.Value)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&v); err != nil {
		return outKey{}, v, fmt.Errorf("record %q %s: %w", e.Key, e.Value, err)
	}
	return outKey{e.Key, string(mustJSON(v)), e.Timestamp}, v, nil
}

// covers reports whether every record the generation must produce was
// read (at least as many times as it must be).
func (g *generation) covers(o *outputs) bool {
	return coversSet[EnrichedClick](g.want.enriched, o.enriched) &&
		coversSet[AttributedPurchase](g.want.attributed, o.attributed) &&
		g.coversWindows(o.regions)
}

func coversSet[V any](want map[outKey]int, got []Emitted) bool {
	seen := map[outKey]int{}
	for _, e := range got {
		if k, _, err := canonical[V](e); err == nil {
			seen[k]++
		}
	}
	for k, n := range want {
		if seen[k] < n {
			return false
		}
	}
	return true
}

func (g *generation) coversWindows(got []Emitted) bool {
	seen := map[windowKey]bool{}
	for _, e := range got {
		if _, rc, err := canonical[RegionCount](e); err == nil {
			seen[windowKey{rc.Region, rc.WindowStart}] = true
		}
	}
	for k := range g.want.windows {
		if !seen[k] {
			return false
		}
	}
	return true
}

// maxErrors is how many differences check reports per output topic.
const maxErrors = 10

// check compares the outputs read with those the generation must
// produce. Exactly, unless atLeastOnce: after a crash, at-least-once may
// write a result again, and the records a task wrote to the repartition
// topic before it crashed again too, so then a join result may repeat (an
// identical record) but none may be missing or different, and a window of
// region-clicks may be written more than once, always with the same count,
// which may exceed the direct count by the clicks repartitioned twice,
// never fall short of it.
func (g *generation) check(o *outputs, atLeastOnce bool) error {
	return errors.Join(
		checkSet[EnrichedClick]("clicks-enriched", g.want.enriched, o.enriched, atLeastOnce),
		g.checkWindows(o.regions, atLeastOnce),
		checkSet[AttributedPurchase]("attributed-purchases", g.want.attributed, o.attributed, atLeastOnce))
}

// checkSet compares the multiset of records got with want.
func checkSet[V any](topic string, want map[outKey]int, got []Emitted, atLeastOnce bool) error {
	var errs []error
	seen := map[outKey]int{}
	for _, e := range got {
		k, _, err := canonical[V](e)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		seen[k]++
	}
	missing, extra := 0, 0
	for _, k := range slices.SortedFunc(maps.Keys(seen), compareOutKeys) {
		n, w := seen[k], want[k]
		switch {
		case w == 0:
			extra++
			if extra <= maxErrors {
				errs = append(errs, fmt.Errorf("unexpected record %v (%d times)", k, n))
			}
		case n > w && !atLeastOnce:
			extra++
			if extra <= maxErrors {
				errs = append(errs, fmt.Errorf("record %v written %d times, want %d", k, n, w))
			}
		}
	}
	for _, k := range slices.SortedFunc(maps.Keys(want), compareOutKeys) {
		if seen[k] < want[k] {
			missing++
			if missing <= maxErrors {
				errs = append(errs, fmt.Errorf("record %v written %d times, want %d", k, seen[k], want[k]))
			}
		}
	}
	if len(errs) == 0 {
		return nil
	}
	return fmt.Errorf("%s: %d records read, %d distinct; %d missing, %d unexpected or repeated:\n%w",
		topic, len(got), len(seen), missing, extra, errors.Join(errs...))
}

func compareOutKeys(a, b outKey) int {
	return cmp.Or(strings.Compare(a.key, b.key), cmp.Compare(a.ts, b.ts), strings.Compare(a.value, b.value))
}

// checkWindows compares the windows of region-clicks with want: each
// written with its region as the key, its end, the count and the timestamp
// of its latest click.
func (g *generation) checkWindows(got []Emitted, atLeastOnce bool) error {
	size := regionWindow.Milliseconds()
	var errs []error
	written := map[windowKey][]RegionCount{}
	for _, e := range got {
		_, rc, err := canonical[RegionCount](e)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		k := windowKey{rc.Region, rc.WindowStart}
		written[k] = append(written[k], rc)
		w, ok := g.want.windows[k]
		switch {
		case !ok:
			errs = append(errs, fmt.Errorf("unexpected window %+v (key %q, timestamp %d)", rc, e.Key, e.Timestamp))
		case e.Key != k.region || rc.WindowEnd != k.start+size || e.Timestamp != w.maxTS:
			errs = append(errs, fmt.Errorf("window %+v, key %q, timestamp %d: want end %d, timestamp %d",
				rc, e.Key, e.Timestamp, k.start+size, w.maxTS))
		case rc.Count != w.count && !(atLeastOnce && rc.Count > w.count):
			errs = append(errs, fmt.Errorf("window %+v: want count %d", rc, w.count))
		case len(written[k]) == 2 && !atLeastOnce:
			errs = append(errs, fmt.Errorf("window %+v written twice", rc))
		case len(written[k]) > 1 && rc.Count != written[k][0].Count:
			errs = append(errs, fmt.Errorf("window %+v written again with another count (first %d)", rc, written[k][0].Count))
		}
	}
	for k, w := range g.want.windows {
		if len(written[k]) == 0 {
			errs = append(errs, fmt.Errorf("window %s@%d (count %d) not written", k.region, k.start, w.count))
		}
	}
	if len(errs) > maxErrors {
		errs = append(errs[:maxErrors], fmt.Errorf("and %d more", len(errs)-maxErrors))
	}
	if len(errs) == 0 {
		return nil
	}
	return fmt.Errorf("region-clicks: %d records read:\n%w", len(got), errors.Join(errs...))
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}
