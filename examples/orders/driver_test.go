package main

import (
	"testing"

	"github.com/sluicehq/sluice/serde"
	"github.com/sluicehq/sluice/testdriver"
)

// The topology in the test driver, fed the generated input in the order
// the program writes it, gives exactly the direct computation: the same
// check as -generate, without a broker.
func TestTopologyInDriverEqualsDirectComputation(t *testing.T) {
	topo, err := Topology(defaultTopics)
	if err != nil {
		t.Fatal(err)
	}
	for _, seed := range []uint64{1, 2} {
		d, err := testdriver.New(topo, testdriver.WithRecordCache(10<<20), testdriver.CommitOnRequest())
		if err != nil {
			t.Fatal(err)
		}
		g := generate(1500, 2, t0, seed)
		customers := testdriver.CreateInputTopic(d, defaultTopics.Customers, serde.String, serde.Bytes)
		orders := testdriver.CreateInputTopic(d, defaultTopics.Orders, serde.String, serde.Bytes)
		for _, c := range g.customers {
			if err := customers.PipeAt(c.Customer, mustJSON(c), g.first-totalsWindow.Milliseconds()); err != nil {
				t.Fatal(err)
			}
		}
		for _, r := range g.rounds {
			for _, rec := range r.records {
				if rec.value == nil {
					err = orders.PipeTombstone(rec.order, rec.ts)
				} else {
					err = orders.PipeAt(rec.order, rec.value, rec.ts)
				}
				if err != nil {
					t.Fatal(err)
				}
			}
			if err := d.Commit(); err != nil {
				t.Fatal(err)
			}
		}
		got := &outputs{}
		for topic, dst := range map[string]*[]Emitted{defaultTopics.Enriched: &got.enriched, defaultTopics.Totals: &got.totals} {
			rs, err := testdriver.CreateOutputTopic(d, topic, serde.String, serde.Bytes).ReadRecords()
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range rs {
				e := Emitted{Key: r.Key, Timestamp: r.Timestamp}
				if r.Value != nil {
					e.Value = r.Value
				}
				*dst = append(*dst, e)
			}
		}
		if err := g.check(got); err != nil {
			t.Errorf("seed %d: %v", seed, err)
		}
		d.Close()
	}
}
