package runtime_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Under exactly-once a global store holds committed records only: neither
// its restore nor its live reader applies a record of an aborted
// transaction (Kafka Streams' global consumer reads read_committed under
// exactly_once_v2).
func TestGlobalTableReadCommittedUnderExactlyOnce(t *testing.T) {
	c := newCluster(t)
	pages, clicks, out, app := topic(t, "pages"), topic(t, "clicks"), topic(t, "enriched"), topic(t, "app")
	c.create(t, 1, pages)
	c.create(t, 1, clicks, out)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	txn := c.client(t, kgo.DefaultProduceTopic(pages), kgo.TransactionalID(app+"-test-producer"))
	aborted := func(kvs ...string) {
		t.Helper()
		if err := txn.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		for i := 0; i+1 < len(kvs); i += 2 {
			if err := txn.ProduceSync(ctx, &kgo.Record{Key: []byte(kvs[i]), Value: []byte(kvs[i+1])}).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
		if err := txn.EndTransaction(ctx, kgo.TryAbort); err != nil {
			t.Fatal(err)
		}
	}
	c.produceKV(t, pages, "/p0", "cat0")
	aborted("/p1", "bad1", "/p0", "bad0")
	c.produceKV(t, clicks, "c1", "/p0", "c2", "/p1")

	in := start(t, globalPipeline(t, pages, clicks, out), eosOptions(c, app)...)
	defer in.stop(t)
	want := map[string]string{"c1": "/p0=cat0", "c2": "/p1=?"}
	if d := diffStrings(c.latestValues(t, out, 2, time.Minute), want); d != "" {
		t.Fatalf("joined with the restored global table: %s", d)
	}

	// While the instance runs: an aborted update of /p0, then a committed
	// row /p2. Once a click joins /p2, the reader has passed the aborted
	// record, and /p0 must still be cat0.
	aborted("/p0", "bad-live")
	c.produceKV(t, pages, "/p2", "cat2")
	keys := 2
	for i := 0; ; i++ {
		k := fmt.Sprintf("w%d", i)
		c.produceKV(t, clicks, k, "/p2")
		keys++
		if got := c.latestValues(t, out, keys, time.Minute); got[k] == "/p2=cat2" {
			break
		}
		if ctx.Err() != nil {
			t.Fatal("the global reader did not read the row /p2 within 2 minutes")
		}
	}
	c.produceKV(t, clicks, "c3", "/p0")
	got := c.latestValues(t, out, keys+1, time.Minute)
	if got["c3"] != "/p0=cat0" {
		t.Errorf("click joined after an aborted update of the global table: %q, want /p0=cat0", got["c3"])
	}
}
