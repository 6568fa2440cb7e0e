package runtime_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicehq/sluice/connectors"
	"github.com/sluicehq/sluice/dsl"
	"github.com/sluicehq/sluice/runtime"
	"github.com/sluicehq/sluice/serde"
)

// Interactive queries: count words, then read the counts from Go through a
// typed view of the store, and over HTTP from the App's server, which any
// instance of the application answers (forwarding to the key's owner).
func ExampleKeyValueStoreView() {
	ctx := context.Background()
	broker, err := connectors.StartEmbedded(connectors.EmbeddedConfig{})
	if err != nil {
		panic(err)
	}
	defer broker.Close()
	stateDir, err := os.MkdirTemp("", "words-")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(stateDir)
	if err := connectors.CreateTopics(ctx, broker.Brokers(), 2, "words"); err != nil {
		panic(err)
	}
	b := dsl.NewBuilder()
	dsl.FromTopic(b, "words", serde.String, serde.String).GroupByKey().Count(dsl.Named("counts"))
	topo, err := b.Build()
	if err != nil {
		panic(err)
	}
	app, err := runtime.New(topo, runtime.ApplicationID("words"), runtime.Brokers(broker.Brokers()...),
		runtime.StateDir(stateDir), runtime.HTTPAddr("127.0.0.1:0"))
	if err != nil {
		panic(err)
	}
	go app.Run(ctx)
	defer app.Close()

	cl, _ := kgo.NewClient(kgo.SeedBrokers(broker.Brokers()...), kgo.DefaultProduceTopic("words"))
	defer cl.Close()
	for _, w := range []string{"stream", "table", "stream"} {
		cl.ProduceSync(ctx, &kgo.Record{Key: []byte(w), Value: []byte(w)})
	}

	counts, err := runtime.KeyValueStoreView[string, int64](app, "counts")
	if err != nil {
		panic(err)
	}
	// The store answers once the App has joined, restored and counted.
	for {
		s, _, err1 := counts.Get("stream")
		t, _, err2 := counts.Get("table")
		if err := errors.Join(err1, err2); err != nil && !errors.Is(err, runtime.ErrStoreNotReady) {
			panic(err)
		}
		if s == 2 && t == 1 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	all, _ := counts.All()
	for _, kv := range all {
		fmt.Println(kv.Key, kv.Value)
	}
	resp, err := http.Get(app.HTTPURL() + "/stores/counts/keys/table")
	if err != nil {
		panic(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	fmt.Println(resp.StatusCode, strings.TrimSpace(string(body)))
	// Output:
	// stream 2
	// table 1
	// 200 {"key":"table","value":1}
}
