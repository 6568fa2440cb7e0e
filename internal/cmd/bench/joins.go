package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicehq/sluice/connectors"
)

// produceStreams writes the two streams of the stream-stream join (n
// records each to left and right, keys drawn from joinKeys, timestamps 12
// ms apart ending a minute before now, the right stream's 6 ms after the
// left's) and returns the number of pairs the join should write: left and
// right records of one key at most a minute apart.
func produceStreams(produce func(topic, key string, value []byte, ts int64), value func(size int) []byte,
	left, right string, n, joinKeys int, now int64, rng *rand.Rand) (pairs int64) {
	const spacing = 12 // ms
	first := now - int64(n)*spacing - time.Minute.Milliseconds()
	lefts, rights := make([][]int64, joinKeys), make([][]int64, joinKeys)
	for i := range n {
		l, r := rng.IntN(joinKeys), rng.IntN(joinKeys)
		lts, rts := first+int64(i)*spacing, first+int64(i)*spacing+spacing/2
		lefts[l], rights[r] = append(lefts[l], lts), append(rights[r], rts)
		produce(left, fmt.Sprintf("w%05d", l), value(90), lts)
		produce(right, fmt.Sprintf("w%05d", r), value(90), rts)
	}
	window := time.Minute.Milliseconds()
	for k := range joinKeys {
		// Both lists are in time order: count the right records within a
		// minute of each left one with a sliding range.
		lo, hi := 0, 0
		for _, t := range lefts[k] {
			for lo < len(rights[k]) && rights[k][lo] < t-window {
				lo++
			}
			for hi < len(rights[k]) && rights[k][hi] <= t+window {
				hi++
			}
			pairs += int64(hi - lo)
		}
	}
	return pairs
}

// produceStreamJoinInputs writes only the stream-stream join's inputs
// (-table needs no others): two topics of n records each over joinKeys
// keys, as produceJoinInputs writes them.
func produceStreamJoinInputs(ctx context.Context, brokers []string, run string, partitions int32, n, joinKeys int) (joinInputs, error) {
	in := joinInputs{left: run + "-jleft", right: run + "-jright", joinKeys: joinKeys}
	if err := connectors.CreateTopics(ctx, brokers, partitions, in.left, in.right); err != nil {
		return in, err
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ProducerBatchMaxBytes(1<<20), kgo.MaxBufferedRecords(100_000))
	if err != nil {
		return in, err
	}
	defer cl.Close()
	var perr firstError
	produce := func(topic, key string, value []byte, ts int64) {
		cl.Produce(ctx, &kgo.Record{Topic: topic, Key: []byte(key), Value: value, Timestamp: time.UnixMilli(ts)}, perr.promise)
	}
	rng := rand.New(rand.NewPCG(3, 4))
	value := func(size int) []byte {
		b := make([]byte, size)
		for i := range b {
			b[i] = byte('a' + rng.IntN(26))
		}
		return b
	}
	in.pairs = produceStreams(produce, value, in.left, in.right, n, joinKeys, time.Now().UnixMilli(), rng)
	if err := cl.Flush(ctx); err != nil {
		return in, fmt.Errorf("produce to %s and %s: %w", in.left, in.right, err)
	}
	return in, perr.get()
}
