package main

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
)

// The generator writes customers first, then orders in rounds of ten
// minutes of event time, each round once the application has committed
// the one before. Within a round the orders are shuffled, so they reach
// the windowed totals out of order, but never more than ten minutes behind
// the latest order, which the 10 minutes of grace keep on time. An order is
// written once; some are deleted (tombstones) a round or more later; some
// name a customer that is not in the customers table. After the last
// round, one more order per customer, at the last window's end plus the
// grace, closes the last window of every customer. With the customers
// loaded before any order arrives, each order joins once, as its own
// update, and the outputs depend on the input alone: generation.want.

// roundSpan is the event time one round of orders spans.
const roundSpan = int64(10 * 60 * 1000)

// genRecord is a record of the orders topic: an order, or the delete of
// one (value nil).
type genRecord struct {
	order string
	value []byte
	ts    int64
}

type round struct{ records []genRecord }

// totalKey is a window of customer-totals.
type totalKey struct {
	customer string
	start    int64
}

// wantTotal is what customer-totals must hold for a window.
type wantTotal struct {
	total Total
	ts    int64
}

// outKey is a record of orders-enriched as compared: key, JSON value
// (re-encoded canonically; "" for a tombstone) and timestamp.
type outKey struct {
	key, value string
	ts         int64
}

type generation struct {
	customers []Customer
	rounds    []round
	first     int64 // start of the first window
	hours     int
	closeAt   int64 // ts of the closing orders
	orders    int   // orders written, the closing ones included
	unknown   int   // orders of customers not in the table
	deleted   int
	shuffled  int // orders written after a later order of their round
	want      struct {
		enriched map[outKey]int
		totals   map[totalKey]wantTotal
	}
}

var (
	names = []string{"Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Frances", "John", "Leslie", "Margaret"}
	tiers = []string{"gold", "silver", "bronze"}
)

// generate makes about n orders over hours one-hour windows from first
// (an hour boundary, in epoch ms), of 20 customers and a few unknown ones.
func generate(n, hours int, first int64, seed uint64) *generation {
	rng := rand.New(rand.NewPCG(seed, 0x0bde75))
	g := &generation{first: first, hours: hours}
	for i := range 20 {
		g.customers = append(g.customers, Customer{Customer: fmt.Sprintf("c%02d", i+1),
			Name: names[i%len(names)] + fmt.Sprint(i/len(names)+1), Tier: tiers[rng.IntN(len(tiers))]})
	}
	rounds := hours * int(totalsWindow.Milliseconds()/roundSpan)
	g.rounds = make([]round, rounds+1)
	perRound := max(1, n/rounds)
	seq := 0
	newOrder := func(customer string, cents, ts int64) genRecord {
		seq++
		o := Order{Order: fmt.Sprintf("o%06d", seq), Customer: customer, Cents: cents, TS: ts}
		g.orders++
		return genRecord{order: o.Order, value: mustJSON(o), ts: ts}
	}
	for r := range rounds {
		start := first + int64(r)*roundSpan
		for range perRound {
			customer := g.customers[rng.IntN(len(g.customers))].Customer
			if rng.IntN(20) == 0 {
				customer = fmt.Sprintf("x%02d", rng.IntN(3)+1)
				g.unknown++
			}
			rec := newOrder(customer, int64(100+rng.IntN(10_000)), start+rng.Int64N(roundSpan))
			g.rounds[r].records = append(g.rounds[r].records, rec)
			if later := r + 1 + rng.IntN(3); rng.IntN(30) == 0 && later < rounds {
				// The delete's record timestamp is in its round, so that it
				// moves no stream time ahead of the orders.
				g.rounds[later].records = append(g.rounds[later].records,
					genRecord{order: rec.order, ts: first + int64(later)*roundSpan})
				g.deleted++
			}
		}
		rng.Shuffle(len(g.rounds[r].records), func(i, j int) {
			g.rounds[r].records[i], g.rounds[r].records[j] = g.rounds[r].records[j], g.rounds[r].records[i]
		})
		latest := int64(-1)
		for _, rec := range g.rounds[r].records {
			if rec.value == nil {
				continue
			}
			if rec.ts < latest {
				g.shuffled++
			}
			latest = max(latest, rec.ts)
		}
	}
	// The closing orders: one per customer key used, at the last window's
	// end + grace, where the last windows close.
	g.closeAt = first + int64(hours)*totalsWindow.Milliseconds() + totalsGrace.Milliseconds()
	for _, c := range g.customerKeys() {
		g.rounds[rounds].records = append(g.rounds[rounds].records, newOrder(c, 1, g.closeAt))
		if strings.HasPrefix(c, "x") {
			g.unknown++
		}
	}
	g.compute()
	return g
}

// customerKeys are the customer ids of the orders so far, sorted.
func (g *generation) customerKeys() []string {
	seen := map[string]bool{}
	for _, r := range g.rounds {
		for _, rec := range r.records {
			if rec.value != nil {
				var o Order
				_ = json.Unmarshal(rec.value, &o)
				seen[o.Customer] = true
			}
		}
	}
	var keys []string
	for k := range seen {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// compute fills want, directly from the input: every order enriched with
// its customer (or nulls), every delete a tombstone, and the totals of
// every window that closes by closeAt.
func (g *generation) compute() {
	byID := map[string]Customer{}
	for _, c := range g.customers {
		byID[c.Customer] = c
	}
	g.want.enriched = map[outKey]int{}
	g.want.totals = map[totalKey]wantTotal{}
	size, grace := totalsWindow.Milliseconds(), totalsGrace.Milliseconds()
	for _, r := range g.rounds {
		for _, rec := range r.records {
			if rec.value == nil {
				g.want.enriched[outKey{key: rec.order, ts: rec.ts}]++
				continue
			}
			var o Order
			if err := json.Unmarshal(rec.value, &o); err != nil {
				panic(err)
			}
			e := EnrichedOrder{Order: o.Order, Customer: o.Customer, Cents: o.Cents, TS: o.TS}
			if c, ok := byID[o.Customer]; ok {
				e.Name, e.Tier = &c.Name, &c.Tier
			}
			g.want.enriched[outKey{key: o.Order, value: string(mustJSON(e)), ts: o.TS}]++
			start := o.TS - o.TS%size
			if start+size+grace > g.closeAt {
				continue // not final when the input ends
			}
			k := totalKey{customer: o.Customer, start: start}
			w := g.want.totals[k]
			w.total = Total{Customer: o.Customer, WindowStart: start, WindowEnd: start + size,
				Orders: w.total.Orders + 1, Cents: w.total.Cents + o.Cents}
			w.ts = max(w.ts, o.TS)
			g.want.totals[k] = w
		}
	}
}

// Emitted is a record read from an output topic.
type Emitted struct {
	Key       string
	Value     []byte // nil for a tombstone
	Timestamp int64
}

type outputs struct{ enriched, totals []Emitted }

func (o *outputs) total() int { return len(o.enriched) + len(o.totals) }

// covers reports whether o holds as many records as want in each topic.
func (g *generation) covers(o *outputs) bool {
	n := 0
	for _, c := range g.want.enriched {
		n += c
	}
	return len(o.enriched) >= n && len(o.totals) >= len(g.want.totals)
}

// check compares o with want: every enriched order and tombstone exactly
// once, and every final window exactly once with its final total and the
// timestamp of its latest order, nothing else.
func (g *generation) check(o *outputs) error {
	var errs []string
	got := map[outKey]int{}
	for _, e := range o.enriched {
		k := outKey{key: e.Key, ts: e.Timestamp}
		if e.Value != nil {
			var v EnrichedOrder
			if err := json.Unmarshal(e.Value, &v); err != nil {
				return fmt.Errorf("orders-enriched: record %s: %w", e.Key, err)
			}
			k.value = string(mustJSON(v))
		}
		got[k]++
	}
	for k, n := range g.want.enriched {
		if got[k] != n {
			errs = append(errs, fmt.Sprintf("orders-enriched: %s %q @%d written %d times, want %d", k.key, k.value, k.ts, got[k], n))
		}
	}
	for k, n := range got {
		if _, ok := g.want.enriched[k]; !ok {
			errs = append(errs, fmt.Sprintf("orders-enriched: unexpected %s %q @%d (%d times)", k.key, k.value, k.ts, n))
		}
	}
	seen := map[totalKey]bool{}
	for _, e := range o.totals {
		var v Total
		if err := json.Unmarshal(e.Value, &v); err != nil {
			return fmt.Errorf("customer-totals: record %s: %w", e.Key, err)
		}
		k := totalKey{customer: e.Key, start: v.WindowStart}
		w, ok := g.want.totals[k]
		switch {
		case seen[k]:
			errs = append(errs, fmt.Sprintf("customer-totals: window %s@%d written twice", k.customer, k.start))
		case !ok:
			errs = append(errs, fmt.Sprintf("customer-totals: unexpected window %s@%d: %+v", k.customer, k.start, v))
		case v != w.total || e.Timestamp != w.ts:
			errs = append(errs, fmt.Sprintf("customer-totals: window %s@%d is %+v @%d, want %+v @%d", k.customer, k.start, v, e.Timestamp, w.total, w.ts))
		}
		seen[k] = true
	}
	for k := range g.want.totals {
		if !seen[k] {
			errs = append(errs, fmt.Sprintf("customer-totals: window %s@%d missing", k.customer, k.start))
		}
	}
	if len(errs) > 0 {
		slices.SortFunc(errs, cmp.Compare)
		if len(errs) > 20 {
			errs = append(errs[:20], fmt.Sprintf("... and %d more", len(errs)-20))
		}
		return fmt.Errorf("outputs differ from the direct computation:\n  %s", strings.Join(errs, "\n  "))
	}
	return nil
}

func mustJSON(v any) []byte {
	var b bytes.Buffer
	if err := json.NewEncoder(&b).Encode(v); err != nil {
		panic(err)
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n"))
}
