package runtime

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicehq/sluice/connectors"
	"github.com/sluicehq/sluice/operators"
)

// BenchmarkSinkSend measures what a sink's send costs on kfake, flushed
// every 1,000 records: "plain" is the send before the production handler
// (a copy of the record, produced with the common promise, as changelog
// records still are), "handled" the sink send with its origin (the input
// record, task, sink, in the record's allocation) and the size check
// against the topic's limit. The difference is the handler's cost per
// record (figures in docs/errors.md, "Production errors").
func BenchmarkSinkSend(b *testing.B) {
	e, err := connectors.StartEmbedded(connectors.EmbeddedConfig{})
	if err != nil {
		b.Fatal(err)
	}
	defer e.Close()
	ctx := context.Background()
	if err := connectors.CreateTopics(ctx, e.Brokers(), 4, "bench-out"); err != nil {
		b.Fatal(err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(e.Brokers()...), kgo.RecordPartitioner(partitioner{}))
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	key, value := []byte("some-key-0123"), make([]byte, 100)
	hs := []operators.Header{{Key: "h", Value: []byte("v")}}
	in := &kgo.Record{Topic: "in", Key: key, Value: value, Offset: 1}
	run := func(b *testing.B, send func(p *producer) error) {
		p := handledProducer(cl)
		p.limits.forTopic("bench-out")
		b.ReportAllocs()
		b.ResetTimer()
		for i := range b.N {
			if err := send(p); err != nil {
				b.Fatal(err)
			}
			if i%1000 == 999 {
				if err := p.flush(ctx); err != nil {
					b.Fatal(err)
				}
			}
		}
		if err := p.flush(ctx); err != nil {
			b.Fatal(err)
		}
	}
	ts := time.Now().UnixMilli()
	b.Run("plain", func(b *testing.B) {
		run(b, func(p *producer) error {
			if err := p.err(); err != nil {
				return err
			}
			p.produceRecord(p.record("bench-out", -1, key, value, hs, ts, nil), p.promise)
			return nil
		})
	})
	b.Run("handled", func(b *testing.B) {
		var c *nodeCollector
		run(b, func(p *producer) error {
			if c == nil {
				r := &runner{}
				c = newTaskCollector(p, r).ForNode("sink").(*nodeCollector)
				r.cur = in
			}
			return c.Send("bench-out", -1, key, value, hs, ts)
		})
	})
}

// BenchmarkSinkRecordMake measures the part of a sink's send the
// production handler changed, without producing: making the record (a
// copy of key, value and headers) before, and with its origin and the size
// check against the topic's limit now.
func BenchmarkSinkRecordMake(b *testing.B) {
	key, value := []byte("some-key-0123"), make([]byte, 100)
	hs := []operators.Header{{Key: "h", Value: []byte("v")}}
	in := &kgo.Record{Topic: "in", Key: key, Value: value, Offset: 1}
	p := newProducer(nil)
	p.limits = &recordLimits{client: 1000012}
	m := map[string]int32{"out": 1000012}
	p.limits.topics.Store(&m)
	var sink *kgo.Record
	b.Run("plain", func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			sink = p.record("out", -1, key, value, hs, 1, nil)
		}
	})
	b.Run("handled", func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			if size := batchBytes(key, value, hs); size > int(p.limits.forTopic("out")) {
				b.Fatal("too large")
			}
			sr := p.sinkRecord("out", -1, nil, key, value, hs, 1)
			sr.ctx.in, sr.ctx.node, sr.ctx.seq, sr.ctx.task = in, "sink", 0, "0_0"
			sink = &sr.rec
		}
	})
	_ = sink
}

// handledProducer returns a producer over cl as an App makes it for sinks:
// with the record limits (the client's default) and the production
// handler (LogAndFail), logging nowhere.
func handledProducer(cl *kgo.Client) *producer {
	p := newProducer(cl)
	p.limits = &recordLimits{client: 1000012, admin: cl, log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	p.handler = &productionHandler{handle: operators.LogAndFail, log: p.limits.log, dropped: func(string, string, string) {}}
	return p
}
