package dsl_test

import (
	"fmt"
	"time"

	"github.com/sluicehq/sluice/dsl"
	"github.com/sluicehq/sluice/operators"
	"github.com/sluicehq/sluice/serde"
	"github.com/sluicehq/sluice/testdriver"
)

// Event time from a field of a JSON value: the records carry the time the
// order was placed, not the time it was produced to Kafka, and an order
// with a negative time is skipped and counted.
func ExampleTimestamps() {
	type order struct {
		Item     string `json:"item"`
		PlacedAt int64  `json:"placed_at"` // ms since the Unix epoch
	}
	b := dsl.NewBuilder()
	orders := dsl.FromTopic(b, "orders", serde.String, serde.JSON[order](), dsl.Named("orders"),
		dsl.Timestamps(func(_ dsl.Maybe[string], o dsl.Maybe[order], _ []operators.Header, kafkaTS int64) int64 {
			if o, ok := o.Get(); ok {
				return o.PlacedAt
			}
			return kafkaTS // a tombstone keeps its Kafka timestamp
		}),
		dsl.OnInvalidTimestamp(dsl.SkipInvalidTimestamp))
	dsl.MapValues(orders, func(o order) string { return o.Item }).To("items", serde.String, serde.String)
	topo, err := b.Build()
	if err != nil {
		panic(err)
	}

	d, err := testdriver.New(topo)
	if err != nil {
		panic(err)
	}
	defer d.Close()
	in := testdriver.CreateInputTopic(d, "orders", serde.String, serde.JSON[order]())
	out := testdriver.CreateOutputTopic(d, "items", serde.String, serde.String)
	produced := time.Date(2024, 5, 2, 0, 0, 0, 0, time.UTC).UnixMilli()
	for _, o := range []order{
		{"tea", time.Date(2024, 5, 1, 9, 30, 0, 0, time.UTC).UnixMilli()},
		{"cake", -1},
		{"scone", time.Date(2024, 5, 1, 9, 45, 0, 0, time.UTC).UnixMilli()},
	} {
		if err := in.PipeAt("alice", o, produced); err != nil {
			panic(err)
		}
	}
	rs, err := out.ReadRecords()
	if err != nil {
		panic(err)
	}
	for _, r := range rs {
		fmt.Println(r.Key, r.Value, time.UnixMilli(r.Timestamp).UTC().Format(time.RFC3339))
	}
	fmt.Println("skipped:", d.DroppedRecords("orders", "invalid-timestamp"))
	// Output:
	// alice tea 2024-05-01T09:30:00Z
	// alice scone 2024-05-01T09:45:00Z
	// skipped: 1
}
