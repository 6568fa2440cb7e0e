// Package dashboards holds the Grafana dashboard of a Sluice application,
// sluice.json (import it in Grafana, choosing the Prometheus data source
// that scrapes the App's /metrics): the application's state, tasks and
// rebalances, throughput and records lag, process, poll and punctuate
// rates and latencies, commits and transactions, restores and standbys,
// record cache hit ratio, store latencies (at the DEBUG recording level),
// dropped and dead-letter records, and the Kafka clients' metrics.
//
// Every metric its queries name is one the App exports: the package's test
// runs an App and checks each name against the families it registered.
package dashboards

import _ "embed"

// Sluice is the dashboard's JSON (sluice.json).
//
//go:embed sluice.json
var Sluice []byte
