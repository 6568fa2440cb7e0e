package main

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/sluicehq/sluice/serde"
	"github.com/sluicehq/sluice/testdriver"
)

// at is t0 plus s seconds.
func at(s float64) int64 { return t0 + int64(s*1000) }

// The topology through the test driver, one record at a time, with what
// each writes to the three outputs, exactly: enrichment from the latest
// user and page (an update of either emits nothing), clicks of unknown
// users dropped by the inner join, a null category for an unknown page,
// attribution of a purchase to its user's clicks in [t-10min, t] with
// both bounds inclusive and out-of-order clicks joining purchases already
// seen, windows per region closed by stream time with their grace, a
// late click still enriched but not counted.
func TestTopologyStepByStep(t *testing.T) {
	topo, err := Topology(defaultTopics)
	if err != nil {
		t.Fatal(err)
	}
	d, err := testdriver.New(topo)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	in := map[string]*testdriver.InputTopic[string, string]{}
	for _, topic := range defaultTopics.inputs() {
		in[topic] = testdriver.CreateInputTopic(d, topic, serde.String, serde.String)
	}
	var outs []*testdriver.OutputTopic[string, string]
	for _, topic := range defaultTopics.outputs() {
		outs = append(outs, testdriver.CreateOutputTopic(d, topic, serde.String, serde.String))
	}
	user := func(u, region string) string { return fmt.Sprintf(`{"user":%q,"region":%q}`, u, region) }
	page := func(p, category string) string { return fmt.Sprintf(`{"page":%q,"category":%q}`, p, category) }
	click := func(u, p string, s float64) string { return fmt.Sprintf(`{"user":%q,"page":%q,"ts":%d}`, u, p, at(s)) }
	buy := func(u string, amount, s float64) string {
		return fmt.Sprintf(`{"user":%q,"amount":%v,"ts":%d}`, u, amount, at(s))
	}
	// Expected output records: topic key value @timestamp.
	enriched := func(u, p, region, category string, s float64) string {
		if category != "null" {
			category = fmt.Sprintf("%q", category)
		}
		return fmt.Sprintf(`clicks-enriched %s {"user":%q,"page":%q,"region":%q,"category":%s,"ts":%d} @%d`,
			u, u, p, region, category, at(s), at(s))
	}
	window := func(region string, start, count int64, maxTS float64) string {
		return fmt.Sprintf(`region-clicks %s {"region":%q,"window_start":%d,"window_end":%d,"count":%d} @%d`,
			region, region, at(float64(start)), at(float64(start+60)), count, at(maxTS))
	}
	attributed := func(u, p string, amount, clickS, buyS float64) string {
		return fmt.Sprintf(`attributed-purchases %s {"user":%q,"page":%q,"amount":%v,"click_ts":%d,"purchase_ts":%d} @%d`,
			u, u, p, amount, at(clickS), at(buyS), at(buyS))
	}
	for i, step := range []struct {
		topic, key, value string
		emits             []string
	}{
		{"users", "u1", user("u1", "eu"), nil},
		{"users", "u2", user("u2", "us"), nil},
		{"pages", "/home", page("/home", "landing"), nil},
		{"clicks", "u1", click("u1", "/home", 5), []string{enriched("u1", "/home", "eu", "landing", 5)}},
		{"clicks", "u3", click("u3", "/home", 6), nil}, // unknown user: not enriched
		{"clicks", "u2", click("u2", "/promo", 20), []string{enriched("u2", "/promo", "us", "null", 20)}},
		{"purchases", "u1", buy("u1", 12.5, 30), []string{attributed("u1", "/home", 12.5, 5, 30)}},
		// An unknown user's clicks are still attributed (the join reads
		// the clicks, not the enriched clicks).
		{"purchases", "u3", buy("u3", 7, 40), []string{attributed("u3", "/home", 7, 6, 40)}},
		// After the purchase: not attributed to it.
		{"clicks", "u1", click("u1", "/cart", 35), []string{enriched("u1", "/cart", "eu", "null", 35)}},
		// Out of order, before the purchase at 30s: attributed to it.
		{"clicks", "u1", click("u1", "/home", 25), []string{
			enriched("u1", "/home", "eu", "landing", 25), attributed("u1", "/home", 12.5, 25, 30)}},
		{"pages", "/cart", page("/cart", "checkout"), nil}, // an update emits nothing
		{"clicks", "u2", click("u2", "/cart", 65), []string{enriched("u2", "/cart", "us", "checkout", 65)}},
		// Stream time 65s: [0s,60s) is open until 70s.
		{"clicks", "u1", click("u1", "/home", 58), []string{enriched("u1", "/home", "eu", "landing", 58)}},
		{"clicks", "u2", click("u2", "/home", 70), []string{
			enriched("u2", "/home", "us", "landing", 70),
			window("eu", 0, 4, 58), window("us", 0, 1, 20)}},
		// Late for [0s,60s), closed: enriched, not counted.
		{"clicks", "u1", click("u1", "/cart", 59), []string{enriched("u1", "/cart", "eu", "checkout", 59)}},
		{"users", "u2", user("u2", "eu"), nil}, // moves; an update emits nothing
		{"clicks", "u2", click("u2", "/home", 100), []string{enriched("u2", "/home", "eu", "landing", 100)}},
		// [25s, 625s]: both bounds inclusive, the click at 5s out.
		{"purchases", "u1", buy("u1", 99.99, 625), []string{
			attributed("u1", "/home", 99.99, 25, 625), attributed("u1", "/cart", 99.99, 35, 625),
			attributed("u1", "/home", 99.99, 58, 625), attributed("u1", "/cart", 99.99, 59, 625)}},
		// A purchase does not move the windows' stream time; this click
		// does, to 626s, which closes [60s,120s) (u2 counted in eu after
		// its move); [600s,660s) stays open.
		{"clicks", "u1", click("u1", "/home", 626), []string{
			enriched("u1", "/home", "eu", "landing", 626),
			window("eu", 60, 1, 100), window("us", 60, 2, 70)}},
		{"clicks", "u1", `{"user":"u1","page":"/home"}`, nil}, // no ts: skipped
	} {
		if err := in[step.topic].PipeAt(step.key, step.value, at(3600)); err != nil {
			t.Fatalf("step %d (%s %s): %v", i, step.topic, step.value, err)
		}
		var got []string
		for j, out := range outs {
			rs, err := out.ReadRecords()
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range rs {
				got = append(got, fmt.Sprintf("%s %s %s @%d", defaultTopics.outputs()[j], r.Key, r.Value, r.Timestamp))
			}
		}
		if strings.Join(got, "\n") != strings.Join(step.emits, "\n") {
			t.Errorf("step %d (%s %s) wrote\n  %s\nwant\n  %s", i, step.topic, step.value,
				strings.Join(got, "\n  "), strings.Join(step.emits, "\n  "))
		}
	}
	for _, c := range []struct {
		node, reason string
		want         int64
	}{
		{regionCount, "late", 1},
		{clickSource, "invalid-timestamp", 1},
	} {
		if n := d.DroppedRecords(c.node, c.reason); n != c.want {
			t.Errorf("dropped by %s for %q: %d, want %d", c.node, c.reason, n, c.want)
		}
	}
}

// The generator's records through the test driver (one task for each
// sub-topology), round by round with the records of each round shuffled:
// whatever the order within the rounds, the outputs are the oracle's.
func TestGeneratedInputThroughDriverInAnyOrderWithinRounds(t *testing.T) {
	for _, seed := range []uint64{1, 2} {
		g := generate(3000, 4, t0, seed)
		topo, err := Topology(defaultTopics)
		if err != nil {
			t.Fatal(err)
		}
		d, err := testdriver.New(topo)
		if err != nil {
			t.Fatal(err)
		}
		in := map[string]*testdriver.InputTopic[string, []byte]{}
		for _, topic := range defaultTopics.inputs() {
			in[topic] = testdriver.CreateInputTopic(d, topic, serde.String, serde.Bytes)
		}
		for _, p := range g.pages {
			if err := in["pages"].Pipe(p.Page, mustJSON(p)); err != nil {
				t.Fatal(err)
			}
		}
		for _, u := range g.users {
			if err := in["users"].Pipe(u.User, mustJSON(u)); err != nil {
				t.Fatal(err)
			}
		}
		rng := rand.New(rand.NewPCG(seed, 99))
		for _, r := range g.rounds {
			recs := append([]genRecord(nil), r.records...)
			rng.Shuffle(len(recs), func(i, j int) { recs[i], recs[j] = recs[j], recs[i] })
			for _, rec := range recs {
				topic := "clicks"
				if rec.purchase {
					topic = "purchases"
				}
				if err := in[topic].Pipe(rec.user, rec.value); err != nil {
					t.Fatal(err)
				}
			}
		}
		got := &outputs{}
		for _, o := range []struct {
			topic string
			to    *[]Emitted
		}{{"clicks-enriched", &got.enriched}, {"region-clicks", &got.regions}, {"attributed-purchases", &got.attributed}} {
			rs, err := testdriver.CreateOutputTopic(d, o.topic, serde.String, serde.Bytes).ReadRecords()
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range rs {
				*o.to = append(*o.to, Emitted{Key: r.Key, Value: r.Value, Timestamp: r.Timestamp})
			}
		}
		if err := g.check(got, false); err != nil {
			t.Errorf("seed %d: %v", seed, err)
		}
		if n := d.DroppedRecords(regionCount, "late"); n != 0 {
			t.Errorf("seed %d: %d clicks dropped as late, want none", seed, n)
		}
		_ = d.Close()
	}
}
