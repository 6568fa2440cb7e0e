// Package demo holds what the examples' -generate modes share: producing
// generated input and waiting for it, feeding it in rounds that each wait
// for the application's commits, and reading the dropped-records counter.
package demo

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Ends are end offsets per topic and partition: the offset after the last
// record.
type Ends map[string]map[int32]int64

func (e Ends) mark(topic string, p int32, end int64) {
	if e[topic] == nil {
		e[topic] = map[int32]int64{}
	}
	e[topic][p] = max(e[topic][p], end)
}

// Produce writes records and waits for them; it returns the end offset of
// each partition written to.
func Produce(ctx context.Context, brokers []string, recs []*kgo.Record) (Ends, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	ends := Ends{}
	for _, r := range cl.ProduceSync(ctx, recs...) {
		if r.Err != nil {
			return nil, fmt.Errorf("produce to %s: %w", r.Record.Topic, r.Err)
		}
		ends.mark(r.Record.Topic, r.Record.Partition, r.Record.Offset+1)
	}
	return ends, nil
}

// Feed writes rounds of records. Before each round, and after the last,
// it waits until the application (consumer group Group) has committed, on
// each partition written to, at least the offset after the last record
// written there, and on each partition of the Internal topics their end
// offset, unmoved while it looked: everything is processed, so that the
// outputs depend on the input alone, not on the order in which tasks ran.
type Feed struct {
	Brokers []string
	Group   string
	// Written are topics written before the application started (tables):
	// the first round waits for their end offsets as they are when Run
	// starts.
	Written []string
	// Internal are the internal topics the application reads back
	// (repartition topics, a foreign-key join's subscription and response
	// topics), with the application ID prefix. Without them a round waits
	// for the inputs alone: enough when no task can overtake another
	// through an internal topic.
	Internal []string
	// Timeout bounds each wait.
	Timeout time.Duration
	// AppDone ends a wait with an error when the application stops.
	AppDone <-chan error
	// Between, if not nil, is called after each round is produced (with
	// its index), before the wait that follows.
	Between func(round int) error
}

// Run feeds the rounds.
func (f Feed) Run(ctx context.Context, rounds [][]*kgo.Record) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(f.Brokers...))
	if err != nil {
		return err
	}
	defer cl.Close()
	w := &waiter{Feed: f, adm: kadm.NewClient(cl), produced: Ends{}}
	if len(f.Written) > 0 {
		listed, err := w.adm.ListEndOffsets(ctx, f.Written...)
		if err != nil {
			return err
		}
		listed.Each(func(o kadm.ListedOffset) { w.produced.mark(o.Topic, o.Partition, o.Offset) })
	}
	for i, recs := range rounds {
		if err := w.await(ctx); err != nil {
			return fmt.Errorf("before round %d of %d: %w", i+1, len(rounds), err)
		}
		ends, err := Produce(ctx, f.Brokers, recs)
		if err != nil {
			return err
		}
		for topic, ps := range ends {
			for p, end := range ps {
				w.produced.mark(topic, p, end)
			}
		}
		if f.Between != nil {
			if err := f.Between(i); err != nil {
				return err
			}
		}
	}
	if err := w.await(ctx); err != nil {
		return fmt.Errorf("after the last round: %w", err)
	}
	return nil
}

type waiter struct {
	Feed
	adm      *kadm.Client
	produced Ends
}

// await waits until nothing is behind.
func (w *waiter) await(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, w.Timeout)
	defer cancel()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		behind, err := w.behind(ctx)
		if err == nil && len(behind) == 0 {
			return nil
		}
		select {
		case err := <-w.AppDone:
			return cmp.Or(err, errors.New("the application stopped before it had processed the input"))
		case <-ctx.Done():
			if err != nil {
				return fmt.Errorf("offsets of group %s not committed after %v: %w", w.Group, w.Timeout, err)
			}
			return fmt.Errorf("offsets of group %s not committed after %v: %s", w.Group, w.Timeout, strings.Join(behind, ", "))
		case <-tick.C:
		}
	}
}

// behind lists the partitions whose records the group has not all
// committed, and the internal ones written to while it looked.
func (w *waiter) behind(ctx context.Context) ([]string, error) {
	if !slices.ContainsFunc(slices.Collect(maps.Values(w.produced)), func(ps map[int32]int64) bool {
		return slices.ContainsFunc(slices.Collect(maps.Values(ps)), func(end int64) bool { return end > 0 })
	}) && len(w.Internal) == 0 {
		return nil, nil // nothing written yet
	}
	ends, err := w.internalEnds(ctx)
	if err != nil {
		return nil, err
	}
	committed, err := w.adm.FetchOffsets(ctx, w.Group)
	if err != nil {
		return nil, err
	}
	again, err := w.internalEnds(ctx)
	if err != nil {
		return nil, err
	}
	var behind []string
	for _, want := range []Ends{w.produced, again} {
		for _, topic := range slices.Sorted(maps.Keys(want)) {
			for _, p := range slices.Sorted(maps.Keys(want[topic])) {
				end := want[topic][p]
				if ends[topic] != nil && ends[topic][p] != end {
					behind = append(behind, fmt.Sprintf("%s/%d growing", topic, p))
					continue
				}
				if end == 0 {
					continue
				}
				if c, ok := committed.Lookup(topic, p); !ok || c.Err != nil || c.At < end {
					behind = append(behind, fmt.Sprintf("%s/%d at %d of %d", topic, p, c.At, end))
				}
			}
		}
	}
	return behind, nil
}

// internalEnds are the end offsets of the Internal topics. A topic the
// application has not created yet is an error, to wait on.
func (w *waiter) internalEnds(ctx context.Context) (Ends, error) {
	ends := Ends{}
	if len(w.Internal) == 0 {
		return ends, nil
	}
	listed, err := w.adm.ListEndOffsets(ctx, w.Internal...)
	if err != nil {
		return nil, err
	}
	for _, topic := range w.Internal {
		ps, ok := listed[topic]
		if !ok || len(ps) == 0 {
			return nil, fmt.Errorf("internal topic %s not created yet", topic)
		}
		ends[topic] = map[int32]int64{}
		for p, o := range ps {
			if o.Err != nil {
				return nil, fmt.Errorf("end offset of %s/%d: %w", topic, p, o.Err)
			}
			ends[topic][p] = o.Offset
		}
	}
	return ends, nil
}

// Dropped sums the counter sluice_dropped_records_total of g by reason.
func Dropped(g prometheus.Gatherer) map[string]int64 {
	n := map[string]int64{}
	mfs, err := g.Gather()
	if err != nil {
		return n
	}
	for _, mf := range mfs {
		if mf.GetName() != "sluice_dropped_records_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "reason" {
					n[l.GetValue()] += int64(m.GetCounter().GetValue())
				}
			}
		}
	}
	return n
}
