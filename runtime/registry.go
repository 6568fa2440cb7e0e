package runtime

import (
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/plugin/kprom"
)

// The App's Prometheus registry. Every App has one, so that /metrics
// (http_ops.go) always has something to serve:
//
//   - no Registerer option: a registry of the App's own, holding the App's
//     metrics, the Kafka client metrics and the Go and process collectors;
//   - a Registerer that is also a prometheus.Gatherer (a
//     *prometheus.Registry, prometheus.DefaultRegisterer): the metrics are
//     registered there and /metrics serves all of it, the caller's own
//     metrics included;
//   - a Registerer only: the metrics are registered there and in a
//     registry of the App's own (with the Go and process collectors),
//     which /metrics serves.

// appRegistry returns where the App registers its metrics and what
// /metrics gathers, for the Registerer option's value user (nil if not
// given).
func appRegistry(user prometheus.Registerer) (prometheus.Registerer, prometheus.Gatherer) {
	if g, ok := user.(prometheus.Gatherer); ok && user != nil {
		return user, g
	}
	own := prometheus.NewRegistry()
	own.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if user == nil {
		return own, own
	}
	return teeRegisterer{user, own}, own
}

// teeRegisterer registers each collector with two registerers: the
// caller's, which cannot be gathered, and the App's own, which /metrics
// serves. A collector is in both or in neither.
type teeRegisterer [2]prometheus.Registerer

func (t teeRegisterer) Register(c prometheus.Collector) error {
	if err := t[0].Register(c); err != nil {
		return err
	}
	if err := t[1].Register(c); err != nil {
		t[0].Unregister(c)
		return err
	}
	return nil
}

func (t teeRegisterer) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		if err := t.Register(c); err != nil {
			panic(err)
		}
	}
}

func (t teeRegisterer) Unregister(c prometheus.Collector) bool {
	a := t[0].Unregister(c)
	b := t[1].Unregister(c)
	return a || b
}

// Kafka client metrics: franz-go's kprom plugin, on every client of the App
// (baseClientOpts), under sluice_kafka_ (connects, bytes and records
// produced and fetched per broker and topic, buffered records, ...), with
// the const labels application_id and client, which names the client:
//
//	admin              the admin client (topic creation, end offsets, ACL checks)
//	main               the group member: it consumes the input and produces output, changelogs and commits
//	txn-offsets        exactly-once on brokers without KIP-890 part 2: the client of TxnOffsetCommit v4
//	global             the reader of the global stores' topics
//	standby            the reader of the standby tasks' changelogs
//	restore-<topic>-<partition>   a restore of one changelog partition, while it lasts
//
// A kprom.Metrics serves one client (it keeps the collectors of the client
// it last saw, and unregisters them all when that client closes), so each
// client gets its own, distinguished by the client label. A client's series
// are unregistered when it closes.

// kafkaMetrics returns the hook that gives the client named client its
// Kafka client metrics, registered with reg.
func kafkaMetrics(reg prometheus.Registerer, log *slog.Logger, appID, client string) kgo.Opt {
	m := kprom.NewMetrics("sluice",
		kprom.Subsystem("kafka"),
		kprom.Registerer(lenientRegisterer{reg, log}),
		kprom.WithStaticLabel(prometheus.Labels{"application_id": appID, "client": client}),
	)
	return kgo.WithHooks(m)
}

// lenientRegisterer is the registerer of the Kafka client metrics: kprom
// registers a client's collectors from kgo.NewClient with MustRegister,
// which would panic there if a collector clashed with one registered
// already (the caller's registry may hold anything); instead the clash is
// logged and the client works without those metrics.
type lenientRegisterer struct {
	prometheus.Registerer
	log *slog.Logger
}

func (r lenientRegisterer) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		if err := r.Register(c); err != nil {
			r.log.Warn("Kafka client metrics: a collector clashes with one registered already; left out", "err", err)
		}
	}
}
