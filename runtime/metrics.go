package runtime

import (
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the App's Prometheus metrics, registered only when a
// Registerer is configured. Names follow Kafka Streams' where it has one
// (dropped-records-total → sluice_dropped_records_total).
type metrics struct {
	processed *prometheus.CounterVec
	dropped   *prometheus.CounterVec
	// deadLettered counts the records written to the dead-letter queue,
	// by task, node and handler (kind: deserialization, processing,
	// production); each is also in dropped with the reason "dead-letter".
	deadLettered *prometheus.CounterVec
	commits      prometheus.Counter
	commitDur    prometheus.Histogram
	tasks        prometheus.Gauge
	restored     *prometheus.CounterVec
	// restoreRemaining is the number of changelog records a store still
	// has to restore.
	restoreRemaining *prometheus.GaugeVec
	cleaned          prometheus.Counter
	// Under ExactlyOnce: transactions committed, aborted (by reason) and
	// the times this instance was fenced.
	txnCommits prometheus.Counter
	txnAborts  *prometheus.CounterVec
	fenced     prometheus.Counter
	// Standby tasks (standby.go): changelog records applied, lag (records
	// of the changelogs past what a standby applied), promotions to active.
	standbyApplied    *prometheus.CounterVec
	standbyLag        *prometheus.GaugeVec
	standbyPromotions prometheus.Counter
	// staleSkipped counts the changelog records restores and standbys
	// skipped as a former owner's written after a newer owner's
	// (GenerationHeader).
	staleSkipped prometheus.Counter
	// brokersReachable is 1 while the App reaches a broker, 0 before the
	// first answer and during an outage (brokers.go).
	brokersReachable prometheus.Gauge
}

func newMetrics(appID string, reg prometheus.Registerer) (*metrics, error) {
	labels := prometheus.Labels{"application_id": appID}
	m := &metrics{
		processed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_processed_records_total", Help: "Input records processed, by task.", ConstLabels: labels,
		}, []string{"task"}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_dropped_records_total", Help: "Records dropped on purpose (null key, null value, undecodable, late), by task, node and reason.", ConstLabels: labels,
		}, []string{"task", "node", "reason"}),
		deadLettered: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_dead_letter_records_total", Help: "Failed input records written to the dead-letter queue topic, by task, node and the handler that decided it (kind: deserialization, processing, production).", ConstLabels: labels,
		}, []string{"task", "node", "kind"}),
		commits: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sluice_commits_total", Help: "Completed commits.", ConstLabels: labels,
		}),
		commitDur: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "sluice_commit_duration_seconds", Help: "Time to flush state and output and commit offsets.", ConstLabels: labels,
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 14),
		}),
		tasks: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "sluice_active_tasks", Help: "Tasks assigned to this instance.", ConstLabels: labels,
		}),
		restored: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_restored_records_total", Help: "Changelog records restored into stores, by store.", ConstLabels: labels,
		}, []string{"store"}),
		restoreRemaining: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "sluice_restore_remaining_records", Help: "Changelog records a store still has to restore (its partitions restoring at the moment together), by store.", ConstLabels: labels,
		}, []string{"store"}),
		cleaned: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sluice_task_state_deleted_total", Help: "Local state directories of tasks that moved away, deleted after the cleanup delay.", ConstLabels: labels,
		}),
		txnCommits: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sluice_transaction_commits_total", Help: "Transactions committed (ExactlyOnce).", ConstLabels: labels,
		}),
		txnAborts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_transaction_aborts_total", Help: "Transactions aborted (ExactlyOnce), by reason: group (the group moved on), producer (producer epoch bumped, e.g. past the transaction timeout), abortable, error (another failure, or a fatal error's shutdown), lost (partitions lost), shutdown (the final commit did not finish in time), injected (tests).", ConstLabels: labels,
		}, []string{"reason"}),
		fenced: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sluice_fenced_total", Help: "Times this instance was fenced by another with its transactional ID or instance ID.", ConstLabels: labels,
		}),
		standbyApplied: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_standby_records_applied_total", Help: "Changelog records applied by standby tasks, by task.", ConstLabels: labels,
		}, []string{"task"}),
		standbyLag: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "sluice_standby_lag_records", Help: "Changelog records of a standby task not applied yet (end offsets minus applied), by task.", ConstLabels: labels,
		}, []string{"task"}),
		standbyPromotions: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sluice_standby_promotions_total", Help: "Standby tasks that became active on this instance.", ConstLabels: labels,
		}),
		staleSkipped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sluice_changelog_stale_generation_skipped_total", Help: "Changelog records restores and standby tasks skipped: written by a former owner of the task (a zombie) after a newer owner's, by their group generation.", ConstLabels: labels,
		}),
		brokersReachable: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "sluice_brokers_reachable", Help: "1 while the App reaches a Kafka broker; 0 before the first answer and while every broker has failed for a second (an outage).", ConstLabels: labels,
		}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.processed, m.dropped, m.deadLettered, m.commits, m.commitDur, m.tasks, m.restored, m.restoreRemaining, m.cleaned,
			m.txnCommits, m.txnAborts, m.fenced, m.standbyApplied, m.standbyLag, m.standbyPromotions, m.staleSkipped, m.brokersReachable} {
			if err := reg.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return m, nil
}
