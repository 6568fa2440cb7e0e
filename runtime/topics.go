package runtime

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicehq/sluice/internal/task"
	"github.com/sluicehq/sluice/topology"
)

// layout is where the topology meets a cluster: the Kafka name and
// partition count of every topic the application reads or creates, and the
// number of tasks of each sub-topology.
type layout struct {
	partitions map[string]int32
	tasks      map[int]int32
	// topics lists the Kafka topics each sub-topology reads.
	topics map[int][]string
	// internal are the Kafka names of the internal topics, in topology order.
	internal []string
	kinds    map[string]topology.TopicKind
}

func (a *App) kafkaName(it topology.InternalTopic) string {
	return task.TopicName(a.cfg.appID, it.Name)
}

// planTopics reads the partition counts of the source topics, derives those
// of the internal topics, and enforces co-partitioning: the source topics
// of a sub-topology that keeps state must have equal partition counts, and
// a repartition topic among them whose count the user did not set takes
// theirs (see copartition).
func (a *App) planTopics(ctx context.Context, adm *kadm.Client) (*layout, error) {
	l := &layout{partitions: map[string]int32{}, tasks: map[int]int32{}, topics: map[int][]string{}, kinds: map[string]topology.TopicKind{}}
	external := a.topo.SourceTopics()
	if len(external) > 0 {
		md, err := adm.Metadata(ctx, external...)
		if err != nil {
			return nil, &BrokerError{Brokers: a.brokers, Err: err}
		}
		var missing []string
		for _, t := range external {
			td, ok := md.Topics[t]
			if !ok || errors.Is(td.Err, kerr.UnknownTopicOrPartition) || len(td.Partitions) == 0 {
				missing = append(missing, t)
				continue
			}
			if td.Err != nil {
				return nil, fmt.Errorf("sluice: describe topic %s: %w", t, td.Err)
			}
			l.partitions[t] = int32(len(td.Partitions))
		}
		if len(missing) > 0 {
			return nil, &MissingTopicError{Topics: missing}
		}
	}
	if err := a.checkDeadLetterTopic(ctx, adm); err != nil {
		return nil, err
	}
	for _, st := range a.topo.SubTopologies() {
		for _, n := range st.Sources {
			for _, t := range n.Topics {
				if n.Internal {
					t = task.TopicName(a.cfg.appID, t)
				}
				l.topics[st.ID] = append(l.topics[st.ID], t)
			}
		}
	}
	byName := map[string]topology.InternalTopic{}
	for _, it := range a.topo.InternalTopics() {
		name := a.kafkaName(it)
		byName[name] = it
		l.internal = append(l.internal, name)
		l.kinds[name] = it.Kind
		if it.Kind == topology.Repartition && it.Partitions > 0 {
			l.partitions[name] = it.Partitions
		}
	}
	copartition := map[int][]string{}
	for _, g := range a.topo.CoPartitionGroups() {
		for _, t := range g.Topics {
			copartition[g.SubTopology] = append(copartition[g.SubTopology], t.KafkaName(a.cfg.appID))
		}
	}
	// The repartition topics whose partition count the user set
	// (Repartition with Partitions): co-partitioning cannot change them.
	enforced := map[string]bool{}
	for name, it := range byName {
		if it.Kind == topology.Repartition && it.Partitions > 0 {
			enforced[name] = true
		}
	}
	// Derive the partition count of each repartition topic from the
	// sub-topology that writes it (the largest count of that
	// sub-topology's inputs): a fixed point over the DAG, and resolveLoop
	// when a sub-topology reads a repartition topic it writes. As Kafka
	// Streams' RepartitionTopics, this comes before co-partitioning, so a
	// count that co-partitioning changes below does not flow further
	// downstream.
	derived := map[int]int32{}
	for changed := true; changed; {
		changed = false
		for _, st := range a.topo.SubTopologies() {
			if _, done := derived[st.ID]; done {
				continue
			}
			if n, ok := subPartitions(l.topics[st.ID], l.partitions); ok {
				derived[st.ID] = n
				changed = true
			}
		}
		for name, it := range byName {
			if _, done := l.partitions[name]; done || it.Kind != topology.Repartition {
				continue
			}
			if n, ok := derived[it.SubTopology]; ok {
				l.partitions[name] = n
				changed = true
			}
		}
		if !changed {
			changed = l.resolveLoop(byName)
		}
	}
	for _, st := range a.topo.SubTopologies() {
		if _, ok := derived[st.ID]; !ok {
			return nil, fmt.Errorf("sluice: cannot derive the partition count of sub-topology %d", st.ID)
		}
	}
	// Then co-partitioning, and the task count of each sub-topology from
	// the final counts of its inputs.
	for _, st := range a.topo.SubTopologies() {
		if err := l.copartition(st.ID, copartition[st.ID], byName, enforced); err != nil {
			return nil, err
		}
	}
	for _, st := range a.topo.SubTopologies() {
		l.tasks[st.ID], _ = subPartitions(l.topics[st.ID], l.partitions)
	}
	for name, it := range byName {
		if it.Kind == topology.Changelog {
			l.partitions[name] = l.tasks[it.SubTopology]
		}
	}
	return l, nil
}

// resolveLoop gives an unresolved repartition topic the largest partition
// count among the known inputs of the sub-topology that writes it, and
// reports whether it resolved one. It breaks the wait of a sub-topology
// that reads a repartition topic it writes (merged by a shared store), as
// Kafka Streams' RepartitionTopics.computePartitionCount skips inputs
// without a count.
func (l *layout) resolveLoop(byName map[string]topology.InternalTopic) bool {
	names := make([]string, 0, len(byName))
	for name := range byName {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		it := byName[name]
		if _, done := l.partitions[name]; done || it.Kind != topology.Repartition {
			continue
		}
		var n int32
		for _, t := range l.topics[it.SubTopology] {
			n = max(n, l.partitions[t])
		}
		if n > 0 {
			l.partitions[name] = n
			return true
		}
	}
	return false
}

// subPartitions is the task count of a sub-topology: the largest partition
// count of its topics, once all are known.
func subPartitions(topics []string, partitions map[string]int32) (int32, bool) {
	var n int32
	for _, t := range topics {
		c, ok := partitions[t]
		if !ok {
			return 0, false
		}
		n = max(n, c)
	}
	return n, true
}

// copartition enforces the co-partition group of sub-topology sub (the
// topology's CoPartitionGroups, in Kafka names) as Kafka Streams'
// CopartitionedTopicsEnforcer does, before the sub-topology's task count
// is taken:
//   - the group's external topics must have equal partition counts (else a
//     CoPartitionError naming each with its count), and that count is the
//     group's;
//   - in a group of repartition topics only, the group's count is the one
//     the user set for some of them (all that were set must agree), else
//     the largest count derived from their writers;
//   - each repartition topic of the group whose count the user did not set
//     takes the group's count (a stream of a 2-partition topic rekeyed and
//     joined with a 4-partition table goes through a 4-partition
//     repartition topic), and one whose count the user set must have it.
//
// It runs once every repartition topic has its derived count. Only the
// sub-topology reads a repartition topic of its group, so changing its
// count here changes no other sub-topology's task count.
func (l *layout) copartition(sub int, group []string, byName map[string]topology.InternalTopic, enforced map[string]bool) error {
	if len(group) == 0 {
		return nil
	}
	var external, set, flexible []string
	for _, t := range group {
		it, internal := byName[t]
		switch {
		case !internal || it.Kind != topology.Repartition:
			external = append(external, t)
		case enforced[t]:
			set = append(set, t)
		default:
			flexible = append(flexible, t)
		}
	}
	var n int32
	switch {
	case len(external) > 0:
		n = l.partitions[external[0]]
		for _, t := range external[1:] {
			if l.partitions[t] != n {
				return l.coPartitionError(sub, external)
			}
		}
		for _, t := range set {
			if l.partitions[t] != n {
				return l.coPartitionError(sub, []string{t, external[0]})
			}
		}
	case len(set) > 0:
		n = l.partitions[set[0]]
		for _, t := range set[1:] {
			if l.partitions[t] != n {
				return l.coPartitionError(sub, set)
			}
		}
	default:
		for _, t := range flexible {
			n = max(n, l.partitions[t])
		}
	}
	for _, t := range flexible {
		l.partitions[t] = n
	}
	return nil
}

func (l *layout) coPartitionError(sub int, topics []string) error {
	e := &CoPartitionError{SubTopology: sub, Topics: topics}
	for _, t := range topics {
		e.Partitions = append(e.Partitions, l.partitions[t])
	}
	return e
}

// createInternalTopics creates the repartition and changelog topics with
// their configs; existing ones must have the planned partition count. As
// Kafka Streams, it creates only the topics that do not exist, so that an
// application whose internal topics were created for it needs no CREATE
// ACL; it then checks the principal's access to them (authz.go).
func (a *App) createInternalTopics(ctx context.Context, adm *kadm.Client, l *layout) error {
	configs := map[string]map[string]string{}
	for _, it := range a.topo.InternalTopics() {
		configs[a.kafkaName(it)] = it.Config
	}
	need := a.internalTopicOps(l)
	if len(l.internal) == 0 {
		return nil
	}
	have, err := a.topicAccess(ctx, l.internal, need)
	if err != nil {
		return err
	}
	var errs []error
	for _, name := range l.internal {
		if ops, ok := have[name]; ok && ops != nil {
			continue // exists: awaitTopics checks its partition count
		}
		cfg := map[string]*string{}
		for k, v := range configs[name] {
			cfg[k] = &v
		}
		resp, err := adm.CreateTopic(ctx, l.partitions[name], -1, cfg, name)
		if err == nil {
			err = resp.Err
		}
		switch {
		case err == nil:
			a.log.Info("created internal topic", "topic", name, "partitions", l.partitions[name], "kind", l.kinds[name])
		case errors.Is(err, kerr.TopicAlreadyExists):
			// Created earlier, or by another instance starting now:
			// awaitTopics checks its partition count.
		case isAuthError(err):
			errs = append(errs, a.asAuthError(err, kmsg.ACLResourceTypeTopic, name, kmsg.ACLOperationCreate))
		default:
			errs = append(errs, fmt.Errorf("sluice: create internal topic %s: %w", name, err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	if err := a.awaitTopics(ctx, adm, l); err != nil {
		return err
	}
	if have, err = a.topicAccess(ctx, l.internal, need); err != nil {
		return err
	}
	return a.checkTopicOps(l.internal, need, have)
}

// awaitTopics waits until the metadata shows every internal topic with a
// leader for each of its partitions: a broker creates topics
// asynchronously, and a task must not look for a changelog before it is
// there. An internal topic with another partition count than planned is an
// error.
func (a *App) awaitTopics(ctx context.Context, adm *kadm.Client, l *layout) error {
	for {
		md, err := adm.Metadata(ctx, l.internal...)
		if err == nil {
			ready := true
			for _, name := range l.internal {
				td := md.Topics[name]
				n := int32(len(td.Partitions))
				if n > 0 && n != l.partitions[name] {
					return fmt.Errorf("sluice: internal topic %s has %d partitions, the topology needs %d: delete it or reset the application",
						name, n, l.partitions[name])
				}
				if td.Err != nil || n != l.partitions[name] {
					ready = false
					break
				}
				for _, p := range td.Partitions {
					if p.Err != nil || p.Leader < 0 {
						ready = false
					}
				}
			}
			if ready {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("sluice: internal topics %v not ready: %w", l.internal, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// sourceTopics lists every topic the application consumes, sorted.
func (l *layout) sourceTopics() []string {
	var ts []string
	for _, topics := range l.topics {
		ts = append(ts, topics...)
	}
	slices.Sort(ts)
	return slices.Compact(ts)
}

// checkDeadLetterTopic checks that the dead-letter queue topic, if one is
// set (DeadLetterQueue), exists: Sluice creates no topic but its internal
// ones, and a handler's first DeadLetter must not be the moment a missing
// topic shows.
func (a *App) checkDeadLetterTopic(ctx context.Context, adm *kadm.Client) error {
	dlq := a.cfg.deadLetter
	if dlq == "" {
		return nil
	}
	md, err := adm.Metadata(ctx, dlq)
	if err != nil {
		return &BrokerError{Brokers: a.brokers, Err: err}
	}
	td, ok := md.Topics[dlq]
	if !ok || errors.Is(td.Err, kerr.UnknownTopicOrPartition) || len(td.Partitions) == 0 {
		return &MissingTopicError{Topics: []string{dlq}, Option: "DeadLetterQueue"}
	}
	if td.Err != nil {
		return fmt.Errorf("sluice: describe the dead-letter queue topic %s (DeadLetterQueue): %w", dlq, td.Err)
	}
	return nil
}
