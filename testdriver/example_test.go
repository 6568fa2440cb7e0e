package testdriver_test

import (
	"fmt"
	"strings"

	"github.com/sluicehq/sluice/dsl"
	"github.com/sluicehq/sluice/serde"
	"github.com/sluicehq/sluice/testdriver"
)

// With a record cache and commits on request, the updates of a key between
// two commits come out as one record, with the latest count, in the output
// and in the store's changelog, as the runtime writes them at the end of a
// commit interval.
func ExampleWithRecordCache() {
	b := dsl.NewBuilder()
	dsl.FromTopic(b, "clicks", serde.String, serde.String).GroupByKey().
		Count(dsl.Named("counts")).ToStream().To("click-counts", serde.String, serde.Int64)
	topo, err := b.Build()
	if err != nil {
		panic(err)
	}
	d, err := testdriver.New(topo, testdriver.WithRecordCache(10<<20), testdriver.WithChangelogs(),
		testdriver.CommitOnRequest())
	if err != nil {
		panic(err)
	}
	defer d.Close()
	in := testdriver.CreateInputTopic(d, "clicks", serde.String, serde.String)
	out := testdriver.CreateOutputTopic(d, "click-counts", serde.String, serde.Int64)
	changelog := testdriver.CreateOutputTopic(d, d.ChangelogTopic("counts"), serde.String, serde.Int64)
	for _, user := range []string{"ann", "ann", "ann", "bob"} {
		if err := in.Pipe(user, "click"); err != nil {
			panic(err)
		}
	}
	fmt.Println("before the commit:", out.QueueSize(), "records")
	if err := d.Commit(); err != nil {
		panic(err)
	}
	for _, o := range []*testdriver.OutputTopic[string, int64]{out, changelog} {
		rs, err := o.ReadRecords()
		if err != nil {
			panic(err)
		}
		var line []string
		for _, r := range rs {
			line = append(line, fmt.Sprintf("%s=%d", r.Key, r.Value))
		}
		fmt.Println(strings.Join(line, " "))
	}
	// Output:
	// before the commit: 0 records
	// ann=3 bob=1
	// ann=3 bob=1
}
