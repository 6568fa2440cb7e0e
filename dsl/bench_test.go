package dsl_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/dsl"
	"github.com/sluicehq/sluice/serde"
	"github.com/sluicehq/sluice/testdriver"
	"github.com/sluicehq/sluice/window"
)

// reportRate adds records/s to a benchmark whose op is one input record.
func reportRate(b *testing.B, records int) {
	b.ReportMetric(float64(records)/b.Elapsed().Seconds(), "records/s")
}

// BenchmarkStatelessChain pipes records through Filter → MapValues → To in
// the test driver: decode, two operators, encode and capture, per record.
// allocs/op is allocations per record.
func BenchmarkStatelessChain(b *testing.B) {
	for _, bc := range []struct {
		name string
		run  func(b *testing.B)
	}{
		{"bytes-int64", benchChain(serde.Bytes, func(i int) []byte { return []byte(fmt.Sprintf("key-%04d", i%1000)) })},
		{"string-int64", benchChain(serde.String, func(i int) string { return fmt.Sprintf("key-%04d", i%1000) })},
	} {
		b.Run(bc.name, bc.run)
	}
}

func benchChain[K any](keys serde.Serde[K], key func(int) K) func(b *testing.B) {
	return func(b *testing.B) {
		bld := dsl.NewBuilder()
		s := dsl.FromTopic(bld, "in", keys, serde.Int64).
			Filter(func(_ K, v int64) bool { return v%10 != 0 })
		dsl.MapValues(s, func(v int64) int64 { return v * 2 }).To("out", keys, serde.Int64)
		topo, err := bld.Build()
		if err != nil {
			b.Fatal(err)
		}
		d, err := testdriver.New(topo)
		if err != nil {
			b.Fatal(err)
		}
		defer d.Close()
		in := testdriver.CreateInputTopic(d, "in", keys, serde.Int64)
		ks := make([]K, 1000)
		for i := range ks {
			ks[i] = key(i)
		}
		b.ReportAllocs()
		b.ResetTimer()
		for i := range b.N {
			if err := in.PipeAt(ks[i%len(ks)], int64(i), int64(i)); err != nil {
				b.Fatal(err)
			}
		}
		reportRate(b, b.N)
	}
}

// BenchmarkWordCount pipes lines of 10 words (from 10,000 distinct words)
// through word count in the test driver: split, repartition in memory,
// count in the in-memory store, write each updated count. One op is one
// line.
func BenchmarkWordCount(b *testing.B) {
	topo := wordCountTopology(b)
	d, err := testdriver.New(topo)
	if err != nil {
		b.Fatal(err)
	}
	defer d.Close()
	in := testdriver.CreateInputTopic(d, "input", serde.String, serde.String)
	lines := make([]string, 1000)
	for i := range lines {
		var sb strings.Builder
		for j := range 10 {
			fmt.Fprintf(&sb, "word%d ", (i*10+j*7919)%10000)
		}
		lines[i] = sb.String()
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if err := in.Pipe("", lines[i%len(lines)]); err != nil {
			b.Fatal(err)
		}
	}
	reportRate(b, b.N)
	b.ReportMetric(float64(10*b.N)/b.Elapsed().Seconds(), "words/s")
}

// BenchmarkStreamJoin pipes records alternately into the two inputs of an
// inner and an outer stream-stream join in the test driver (10,000 keys,
// 1 ms apart, 1 minute windows: each record meets about 12 others of its
// key), with in-memory window stores. One op is one input record.
func BenchmarkStreamJoin(b *testing.B) {
	for _, outer := range []bool{false, true} {
		name := map[bool]string{false: "inner", true: "outer"}[outer]
		b.Run(name, func(b *testing.B) {
			bld := dsl.NewBuilder()
			l := dsl.FromTopic(bld, "l", serde.String, serde.Int64)
			r := dsl.FromTopic(bld, "r", serde.String, serde.Int64)
			w := window.JoinTimeDifference(time.Minute)
			var out dsl.Stream[string, int64]
			if outer {
				out = dsl.OuterJoin(l, r, func(_ string, a, b dsl.Maybe[int64]) int64 { return a.Or(0) + b.Or(0) }, w)
			} else {
				out = dsl.Join(l, r, func(_ string, a, b int64) int64 { return a + b }, w)
			}
			out.To("out", serde.String, serde.Int64)
			topo, err := bld.Build()
			if err != nil {
				b.Fatal(err)
			}
			d, err := testdriver.New(topo)
			if err != nil {
				b.Fatal(err)
			}
			defer d.Close()
			ins := []*testdriver.InputTopic[string, int64]{
				testdriver.CreateInputTopic(d, "l", serde.String, serde.Int64),
				testdriver.CreateInputTopic(d, "r", serde.String, serde.Int64),
			}
			keys := make([]string, 10000)
			for i := range keys {
				keys[i] = fmt.Sprintf("key-%05d", i)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				if err := ins[i%2].PipeAt(keys[(i*7919)%len(keys)], int64(i), int64(i)); err != nil {
					b.Fatal(err)
				}
			}
			reportRate(b, b.N)
		})
	}
}
