package runtime

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicehq/sluice/internal/kafkatest"
	"github.com/sluicehq/sluice/operators"
)

// Recycled sink records (sinkRecords): sinks on several goroutines write
// to topics new to their client (franz-go's waitUnknownTopic holds the
// first record's context), flushing now and then; every record must
// reach the broker with its own key, value and headers, and the race
// detector must see no access to a recycled record.
func TestRecycledSinkRecordsStress(t *testing.T) {
	// Subtest names go into topic names: only Kafka's topic characters.
	t.Run("direct", func(t *testing.T) { recycledSinkRecordsStress(t, false) })
	t.Run("staged", func(t *testing.T) { recycledSinkRecordsStress(t, true) })
}

// recycledSinkRecordsStress is TestRecycledSinkRecordsStress, its sends
// staged in one round (producer.beginRound) if round is set.
func recycledSinkRecordsStress(t *testing.T, round bool) {
	const workers, per, topics = 4, 3000, 8
	kc := kafkatest.New(t)
	var names []string
	for i := range topics {
		names = append(names, kafkatest.Topic(t, fmt.Sprint("out", i)))
	}
	kc.Create(t, 3, names...) // created, but new to the producer's client
	ctx := context.Background()
	p := handledProducer(kc.Client(t, kgo.RecordPartitioner(partitioner{})))
	if round {
		p.beginRound()
	}
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			r := &runner{}
			c := newTaskCollector(p, r).ForNode(fmt.Sprint("sink", w)).(*nodeCollector)
			for i := range per {
				r.cur = &kgo.Record{Topic: "in", Offset: int64(i)}
				k := fmt.Sprintf("w%d-%d", w, i)
				v := strings.Repeat(k, 1+i%9)
				topic := names[(i/200+w)%topics]
				var by []byte
				if i%3 == 0 {
					by = []byte(k)
				}
				var err error
				if by != nil {
					err = c.SendPartitionedBy(topic, by, []byte(k), []byte(v), []operators.Header{{Key: "k", Value: []byte(k)}}, time.Now().UnixMilli())
				} else {
					err = c.Send(topic, -1, []byte(k), []byte(v), []operators.Header{{Key: "k", Value: []byte(k)}}, time.Now().UnixMilli())
				}
				if err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if round {
		p.endRound()
	}
	fctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := p.flush(fctx); err != nil {
		t.Fatal(err)
	}
	rd := kc.Client(t, kgo.ConsumeTopics(names...), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	seen := map[string]bool{}
	for len(seen) < workers*per && fctx.Err() == nil {
		fs := rd.PollFetches(fctx)
		fs.EachRecord(func(r *kgo.Record) {
			k := string(r.Key)
			if seen[k] {
				t.Errorf("record %s twice", k)
			}
			seen[k] = true
			var i, w int
			fmt.Sscanf(k, "w%d-%d", &w, &i)
			if string(r.Value) != strings.Repeat(k, 1+i%9) || len(r.Headers) != 1 || string(r.Headers[0].Value) != k {
				t.Errorf("record %s: value %q headers %v: not what was sent", k, r.Value, r.Headers)
			}
		})
	}
	if len(seen) != workers*per {
		t.Fatalf("%d records read, want %d", len(seen), workers*per)
	}
}
