package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"reflect"
	"regexp"
	"strings"
	"testing"
)

// t0 is an hour boundary (2023-11-14T22:00:00Z): the first window's start.
const t0 = int64(1_699_999_200_000)

// The generator makes what it promises, deterministically: shuffled
// rounds in which no order is more than the grace behind the latest order
// so far (so none is late, whatever the order in which the tasks process
// them), orders of unknown customers, deletes, and a final total for
// every customer in every hour.
func TestGenerator(t *testing.T) {
	for _, seed := range []uint64{1, 2, 3} {
		g := generate(3000, 3, t0, seed)
		if again := generate(3000, 3, t0, seed); !reflect.DeepEqual(g, again) {
			t.Fatalf("seed %d: two generations differ", seed)
		}
		size, grace := totalsWindow.Milliseconds(), totalsGrace.Milliseconds()
		latest := int64(-1)
		for i, r := range g.rounds {
			for _, rec := range r.records {
				latest = max(latest, rec.ts)
			}
			for _, rec := range r.records {
				if end := rec.ts - rec.ts%size + size; rec.value != nil && end+grace <= latest && rec.ts < g.closeAt {
					t.Errorf("seed %d round %d: order %s at %d is late at %d", seed, i, rec.order, rec.ts, latest)
				}
			}
		}
		for what, n := range map[string]int{"out of order": g.shuffled, "of unknown customers": g.unknown, "deleted": g.deleted} {
			if n < 10 {
				t.Errorf("seed %d: %d orders %s, want at least 10", seed, n, what)
			}
		}
		perCustomer := map[string]int{}
		for k := range g.want.totals {
			perCustomer[k.customer]++
		}
		for _, c := range g.customers {
			if perCustomer[c.Customer] != 3 {
				t.Errorf("seed %d: customer %s has %d final windows, want 3", seed, c.Customer, perCustomer[c.Customer])
			}
		}
		nulls := 0
		for k := range g.want.enriched {
			var e EnrichedOrder
			if k.value != "" {
				if err := json.Unmarshal([]byte(k.value), &e); err != nil {
					t.Fatal(err)
				}
				if e.Name == nil {
					nulls++
				}
			}
		}
		if nulls != g.unknown {
			t.Errorf("seed %d: %d enriched orders with a null name, %d orders of unknown customers", seed, nulls, g.unknown)
		}
	}
}

func TestRunDescribe(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), []string{"-describe"}, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	s := out.String()
	for _, want := range []string{"(topic: by-customer-repartition)", "(stores: [hourly-totals])",
		"(topic: orders-enriched)", "(topic: customer-totals)", "subscription-registration"} {
		if !strings.Contains(s, want) {
			t.Errorf("-describe output lacks %q:\n%s", want, s)
		}
	}
}

// -generate on the embedded broker (orders in 4 partitions, customers in
// 2) feeds the input, waits for every output record (checking each against
// the direct computation), prints a summary and returns.
func TestRunGenerateOnEmbeddedBroker(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), []string{"-generate", "2000", "-hours", "2"}, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	s := out.String()
	rows := len(regexp.MustCompile(`(?m)^  c\d\d( +\d+ \(\d+\.\d\d\)){2}$`).FindAllString(s, -1))
	if !strings.HasPrefix(s, "Produced to the embedded broker") || rows != 20 ||
		!strings.Contains(s, "Every record of the two topics matches") {
		t.Errorf("unexpected output (%d customer rows):\n%s", rows, s)
	}
}
