package main

import (
	"context"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// report is the verification of one run's output.
type report struct {
	exactlyOnce bool
	records     int64 // input records
	keys        int   // keys in the input
	outputs     int64 // output records (committed)

	lost       int64 // values of 1..n_k missing from the output
	duplicated int64 // exactly-once: values seen more than once (each extra copy)
	outOfOrder int64 // exactly-once: values below the one before them
	repeats    int64 // at-least-once: values seen more than once (allowed)
	overCount  int64 // values above n_k, or below 1
	wrongFinal int   // at-least-once: keys whose last value is not n_k
	unknownKey int64 // output records of keys not in the input
	malformed  int64 // values that are not 8-byte counts
	examples   []string
}

func (r *report) violations() int64 {
	v := r.lost + r.overCount + int64(r.wrongFinal) + r.unknownKey + r.malformed
	if r.exactlyOnce {
		v += r.duplicated + r.outOfOrder
	}
	return v
}

func (r *report) example(format string, args ...any) {
	if len(r.examples) < 10 {
		r.examples = append(r.examples, fmt.Sprintf(format, args...))
	}
}

// check compares each key's output values (in offset order) with its
// input count.
func check(exactlyOnce bool, inputs map[string]int64, outputs map[string][]int64, malformed int64) *report {
	r := &report{exactlyOnce: exactlyOnce, keys: len(inputs), malformed: malformed}
	keys := make([]string, 0, len(inputs))
	for k, n := range inputs {
		keys = append(keys, k)
		r.records += n
	}
	slices.Sort(keys)
	for k, vs := range outputs {
		r.outputs += int64(len(vs))
		if _, ok := inputs[k]; !ok {
			r.unknownKey += int64(len(vs))
			r.example("key %q: %d output records, no input record", k, len(vs))
		}
	}
	for _, k := range keys {
		n, vs := inputs[k], outputs[k]
		seen := make([]int, n+1)
		for i, v := range vs {
			if v < 1 || v > n {
				r.overCount++
				r.example("key %q: value %d outside 1..%d (output record %d of the key)", k, v, n, i)
				continue
			}
			seen[v]++
			if seen[v] > 1 {
				if exactlyOnce {
					r.duplicated++
					r.example("key %q: value %d written %d times", k, v, seen[v])
				} else {
					r.repeats++
				}
			}
			if exactlyOnce && i > 0 && v < vs[i-1] {
				r.outOfOrder++
				r.example("key %q: value %d after %d", k, v, vs[i-1])
			}
		}
		missing := int64(0)
		for v := int64(1); v <= n; v++ {
			if seen[v] == 0 {
				missing++
			}
		}
		if missing > 0 {
			r.lost += missing
			r.example("key %q: %d of the values 1..%d missing", k, missing, n)
		}
		if !exactlyOnce && n > 0 && (len(vs) == 0 || vs[len(vs)-1] != n) {
			r.wrongFinal++
			last := int64(0)
			if len(vs) > 0 {
				last = vs[len(vs)-1]
			}
			r.example("key %q: final count %d, want %d", k, last, n)
		}
	}
	return r
}

// readTopic reads every committed record of topic (read_committed, from
// each partition's start to its end at the time of the call, which must
// be its last stable offset too) and calls fn with each.
func readTopic(ctx context.Context, brokers []string, topic string, fn func(*kgo.Record), extra ...kgo.Opt) error {
	adm, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		return err
	}
	ends, err := kadm.NewClient(adm).ListEndOffsets(ctx, topic)
	adm.Close()
	if err != nil {
		return fmt.Errorf("list end offsets of %s: %w", topic, err)
	}
	if err := ends.Error(); err != nil {
		return fmt.Errorf("list end offsets of %s: %w", topic, err)
	}
	want := map[int32]int64{}
	offsets := map[int32]kgo.Offset{}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Offset > 0 {
			want[o.Partition] = o.Offset
			offsets[o.Partition] = kgo.NewOffset().AtStart()
		}
	})
	if len(want) == 0 {
		return nil
	}
	// Control records (transaction markers) are kept so that the read
	// reaches each partition's end even when it ends with a marker or
	// with aborted records, which read_committed filters out.
	opts := []kgo.Opt{kgo.SeedBrokers(brokers...), kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.KeepControlRecords(), kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: offsets})}
	cl, err := kgo.NewClient(append(opts, extra...)...)
	if err != nil {
		return err
	}
	defer cl.Close()
	for len(want) > 0 {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("reading %s: %d partitions not read to their end (%v): %w", topic, len(want), want, err)
		}
		var ferr error
		fs.EachError(func(t string, p int32, err error) {
			ferr = errors.Join(ferr, fmt.Errorf("fetch %s partition %d: %w", t, p, err))
		})
		if ferr != nil {
			return ferr
		}
		fs.EachRecord(func(r *kgo.Record) {
			end, ok := want[r.Partition]
			if !ok || r.Offset >= end {
				return
			}
			if !r.Attrs.IsControl() {
				fn(r)
			}
			if r.Offset >= end-1 {
				delete(want, r.Partition)
			}
		})
	}
	return nil
}

// verify reads the input (counting records per key) and the output (the
// values per key in offset order) and checks them.
func verify(ctx context.Context, brokers []string, in, out string, exactlyOnce bool) (*report, error) {
	inputs := map[string]int64{}
	if err := readTopic(ctx, brokers, in, func(r *kgo.Record) { inputs[string(r.Key)]++ }); err != nil {
		return nil, err
	}
	outputs := map[string][]int64{}
	var malformed int64
	var firstBad string
	if err := readTopic(ctx, brokers, out, func(r *kgo.Record) {
		if r.Value == nil || len(r.Value) != 8 {
			if malformed == 0 {
				firstBad = fmt.Sprintf("%s partition %d offset %d: value %x is not an 8-byte count", out, r.Partition, r.Offset, r.Value)
			}
			malformed++
			return
		}
		outputs[string(r.Key)] = append(outputs[string(r.Key)], int64(binary.BigEndian.Uint64(r.Value)))
	}); err != nil {
		return nil, err
	}
	rep := check(exactlyOnce, inputs, outputs, malformed)
	if firstBad != "" {
		rep.examples = append([]string{firstBad}, rep.examples...)
	}
	return rep, nil
}

func verifyMain(args []string) error {
	fs := flag.NewFlagSet("chaos verify", flag.ContinueOnError)
	brokers := fs.String("brokers", "", "seed brokers, comma-separated")
	in := fs.String("in", "", "input topic")
	out := fs.String("out", "", "output topic")
	guarantee := fs.String("guarantee", "eos", "eos or alos: what to check")
	timeout := fs.Duration("timeout", 5*time.Minute, "bound on reading both topics")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *brokers == "" || *in == "" || *out == "" {
		return errors.New("verify: -brokers, -in and -out are required")
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	rep, err := verify(ctx, strings.Split(*brokers, ","), *in, *out, *guarantee == "eos")
	if err != nil {
		return err
	}
	printVerification(rep)
	if rep.violations() > 0 {
		return fmt.Errorf("%d violations", rep.violations())
	}
	return nil
}

func printVerification(r *report) {
	g := "at-least-once"
	if r.exactlyOnce {
		g = "exactly-once"
	}
	fmt.Printf("verification (%s, read_committed): %d input records, %d keys, %d output records\n", g, r.records, r.keys, r.outputs)
	row := func(name string, v int64, bad bool) {
		mark := ""
		if bad && v > 0 {
			mark = "  VIOLATION"
		}
		fmt.Printf("  %-28s %10d%s\n", name, v, mark)
	}
	row("lost", r.lost, true)
	if r.exactlyOnce {
		row("duplicated", r.duplicated, true)
		row("out of order", r.outOfOrder, true)
	} else {
		row("repeated (allowed)", r.repeats, false)
		row("keys with a wrong final", int64(r.wrongFinal), true)
	}
	row("over-counted (> n_k)", r.overCount, true)
	row("unknown keys", r.unknownKey, true)
	row("malformed values", r.malformed, true)
	for _, e := range r.examples {
		fmt.Println("   e.g.", e)
	}
}
