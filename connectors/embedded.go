package connectors

import (
	"context"
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// EmbeddedConfig configures an embedded broker. The zero value is a
// single-node, in-memory cluster on a free loopback port.
type EmbeddedConfig struct {
	// Brokers is the number of broker nodes; 0 means 1.
	Brokers int
	// DataDir, if set, persists topics, offsets and groups there, and
	// reloads them on start, so a restart keeps them.
	DataDir string
	// DefaultPartitions is the partition count of auto-created topics; 0
	// means topics are not auto-created.
	DefaultPartitions int32
}

// Embedded is an in-process Kafka cluster (franz-go's kfake). The caller
// must Close it.
type Embedded struct {
	cluster *kfake.Cluster
}

// StartEmbedded starts an embedded cluster and returns once it accepts
// connections.
func StartEmbedded(cfg EmbeddedConfig) (*Embedded, error) {
	opts := []kfake.Opt{kfake.NumBrokers(max(cfg.Brokers, 1))}
	if cfg.DataDir != "" {
		opts = append(opts, kfake.DataDir(cfg.DataDir))
	}
	if cfg.DefaultPartitions > 0 {
		opts = append(opts, kfake.AllowAutoTopicCreation(), kfake.DefaultNumPartitions(int(cfg.DefaultPartitions)))
	}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		return nil, fmt.Errorf("sluice: start embedded broker: %w", err)
	}
	return &Embedded{cluster: c}, nil
}

// Brokers returns the addresses of the cluster's brokers.
func (e *Embedded) Brokers() []string { return e.cluster.ListenAddrs() }

// Cluster returns the underlying kfake cluster, for tests that inject
// faults through its control hooks.
func (e *Embedded) Cluster() *kfake.Cluster { return e.cluster }

// Close stops the cluster (persisting it first, with a data dir).
func (e *Embedded) Close() { e.cluster.Close() }

// CreateTopics creates topics with the given partition count (replication
// factor 1, or the broker default if it has fewer nodes); topics that
// exist already with that count are not an error, with another count they
// are.
func CreateTopics(ctx context.Context, brokers []string, partitions int32, topics ...string) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		return err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	resps, err := adm.CreateTopics(ctx, partitions, -1, nil, topics...)
	if err != nil {
		return fmt.Errorf("sluice: create topics %v: %w", topics, err)
	}
	var errs []error
	var existing []string
	for _, r := range resps.Sorted() {
		switch {
		case errors.Is(r.Err, kerr.TopicAlreadyExists):
			existing = append(existing, r.Topic)
		case r.Err != nil:
			errs = append(errs, fmt.Errorf("sluice: create topic %s: %w", r.Topic, r.Err))
		}
	}
	if len(existing) > 0 {
		md, err := adm.Metadata(ctx, existing...)
		if err != nil {
			return fmt.Errorf("sluice: describe topics %v: %w", existing, err)
		}
		for _, t := range existing {
			if n := int32(len(md.Topics[t].Partitions)); n != partitions {
				errs = append(errs, fmt.Errorf("sluice: topic %s exists with %d partitions, want %d", t, n, partitions))
			}
		}
	}
	return errors.Join(errs...)
}
