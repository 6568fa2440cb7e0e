package runtime_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicehq/sluice/connectors"
	"github.com/sluicehq/sluice/dsl"
	"github.com/sluicehq/sluice/runtime"
	"github.com/sluicehq/sluice/serde"
)

// An uppercasing service on an embedded broker: build the topology, run it
// as an App, feed it and read its output.
func ExampleApp() {
	ctx := context.Background()
	broker, err := connectors.StartEmbedded(connectors.EmbeddedConfig{})
	if err != nil {
		panic(err)
	}
	defer broker.Close()
	// Local state (checkpoints, Pebble stores) lives in a state directory.
	stateDir, err := os.MkdirTemp("", "lengths-")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(stateDir)
	if err := connectors.CreateTopics(ctx, broker.Brokers(), 1, "names", "lengths"); err != nil {
		panic(err)
	}

	b := dsl.NewBuilder()
	names := dsl.FromTopic(b, "names", serde.String, serde.String)
	dsl.MapValues(names, func(v string) int64 { return int64(len(v)) }).
		To("lengths", serde.String, serde.Int64)
	topo, err := b.Build()
	if err != nil {
		panic(err)
	}
	app, err := runtime.New(topo, runtime.ApplicationID("lengths"), runtime.Brokers(broker.Brokers()...),
		runtime.CommitInterval(100*time.Millisecond), runtime.StateDir(stateDir))
	if err != nil {
		panic(err)
	}
	go app.Run(ctx)
	defer app.Close()

	cl, _ := kgo.NewClient(kgo.SeedBrokers(broker.Brokers()...), kgo.DefaultProduceTopic("names"),
		kgo.ConsumeTopics("lengths"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	defer cl.Close()
	for _, name := range []string{"ada", "grace", "barbara"} {
		cl.ProduceSync(ctx, &kgo.Record{Key: []byte(strings.ToUpper(name[:1])), Value: []byte(name)})
	}
	for n := 0; n < 3; {
		cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) {
			fmt.Println(string(r.Key), binary.BigEndian.Uint64(r.Value))
			n++
		})
	}
	// Output:
	// A 3
	// G 5
	// B 7
}

// Connecting to a secured cluster: TLS with the cluster's CA and SCRAM
// credentials, for every client the App makes. New validates the options
// without connecting; here the password's variable is unset, and the
// error names the option and the user, never a password.
func ExampleSASLScram512() {
	topo, err := wordCountTopology("orders", "order-counts")
	if err != nil {
		panic(err)
	}
	roots := x509.NewCertPool() // roots.AppendCertsFromPEM(the cluster's CA certificate)
	_, err = runtime.New(topo,
		runtime.ApplicationID("orders-app"),
		runtime.Brokers("kafka-1.example.com:9093"),
		runtime.TLS(&tls.Config{RootCAs: roots}),
		runtime.SASLScram512("orders-app", os.Getenv("SLUICE_EXAMPLE_UNSET_PASSWORD")),
	)
	fmt.Println(err)
	// Output: sluice: config SASLScram512: empty password for user orders-app
}
