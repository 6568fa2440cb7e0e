package connectors

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

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

// CreateTopics creates the topics that do not exist yet, with the given
// partition count and the broker's default replication factor. Existing
// topics are left as they are. It returns once the broker's metadata lists
// every topic with its partitions (a broker answers CreateTopics before its
// metadata shows the new topic), or when ctx ends.
func CreateTopics(ctx context.Context, brokers []string, partitions int32, topics ...string) error {
	return CreateTopicsWith(ctx, []kgo.Opt{kgo.SeedBrokers(brokers...)}, partitions, topics...)
}

// CreateTopicsWith is CreateTopics with a client made from opts: the seed
// brokers and, on a secured cluster, kgo.DialTLSConfig and kgo.SASL
// (docs/security.md).
func CreateTopicsWith(ctx context.Context, opts []kgo.Opt, partitions int32, topics ...string) error {
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return err
	}
	defer cl.Close()
	resps, err := kadm.NewClient(cl).CreateTopics(ctx, partitions, -1, nil, topics...)
	if err != nil {
		return fmt.Errorf("sluice: create topics %v: %w", topics, err)
	}
	var errs []error
	for _, r := range resps.Sorted() {
		if r.Err != nil && !errors.Is(r.Err, kerr.TopicAlreadyExists) {
			errs = append(errs, fmt.Errorf("sluice: create topic %s: %w", r.Topic, r.Err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	return waitForTopics(ctx, kadm.NewClient(cl), topics)
}

// waitForTopics polls the metadata until every topic in topics is listed
// with partitions, or ctx ends.
func waitForTopics(ctx context.Context, adm *kadm.Client, topics []string) error {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		md, err := adm.Metadata(ctx, topics...)
		missing := slices.DeleteFunc(slices.Clone(topics), func(t string) bool {
			td, ok := md.Topics[t]
			return err == nil && ok && td.Err == nil && len(td.Partitions) > 0
		})
		if len(missing) == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("sluice: created topics %v are not in the broker's metadata: %w", missing, ctx.Err())
		case <-tick.C:
		}
	}
}
