package runtime

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// taskID identifies a task: a sub-topology on one partition.
type taskID struct {
	sub       int
	partition int32
}

// String is the Kafka Streams task ID, "<sub-topology>_<partition>".
func (t taskID) String() string { return fmt.Sprintf("%d_%d", t.sub, t.partition) }

// parseTaskID parses String's form.
func parseTaskID(s string) (taskID, error) {
	var t taskID
	var rest string
	n, err := fmt.Sscanf(s, "%d_%d%s", &t.sub, &t.partition, &rest)
	if n == 2 && errors.Is(err, io.EOF) && t.sub >= 0 && t.partition >= 0 {
		return t, nil
	}
	return taskID{}, fmt.Errorf("sluice: %q is not a task ID", s)
}

func (t taskID) compare(o taskID) int {
	if c := cmp.Compare(t.sub, o.sub); c != 0 {
		return c
	}
	return cmp.Compare(t.partition, o.partition)
}

// taskBalancer is the group balancer: it assigns tasks, not partitions.
// A task is (sub-topology, partition) and owns partition p of every topic
// its sub-topology reads, so co-partitioned records of a key meet in one
// instance. Assignment is sticky (a task stays where it was while that keeps
// the group balanced), balanced by task count, spreads each sub-topology's
// tasks over the members, and cooperative (KIP-429): a task that moves is
// first revoked from its owner, and assigned to its new owner in the
// follow-up rebalance, so members that keep their tasks never stop.
type taskBalancer struct {
	// subs maps each Kafka topic the application reads to its sub-topology.
	subs map[string]int
	// topics lists each sub-topology's topics.
	topics map[int][]string
}

func (*taskBalancer) ProtocolName() string { return "sluice-tasks" }
func (*taskBalancer) IsCooperative() bool  { return true }

func (*taskBalancer) JoinGroupMetadata(interests []string, owned map[string][]int32, generation int32) []byte {
	meta := kmsg.NewConsumerMemberMetadata()
	meta.Version = 3
	meta.Topics = interests
	meta.Generation = generation
	for topic, partitions := range owned {
		op := kmsg.NewConsumerMemberMetadataOwnedPartition()
		op.Topic = topic
		op.Partitions = partitions
		meta.OwnedPartitions = append(meta.OwnedPartitions, op)
	}
	slices.SortFunc(meta.OwnedPartitions, func(a, b kmsg.ConsumerMemberMetadataOwnedPartition) int {
		return cmp.Compare(a.Topic, b.Topic)
	})
	return meta.AppendTo(nil)
}

func (*taskBalancer) ParseSyncAssignment(assignment []byte) (map[string][]int32, error) {
	return kgo.ParseConsumerSyncAssignment(assignment)
}

func (b *taskBalancer) MemberBalancer(members []kmsg.JoinGroupResponseMember) (kgo.GroupMemberBalancer, map[string]struct{}, error) {
	cb, err := kgo.NewConsumerBalancer(b, members)
	if err != nil {
		return nil, nil, err
	}
	return cb, cb.MemberTopics(), nil
}

// Balance implements kgo.ConsumerBalancerBalance.
func (b *taskBalancer) Balance(cb *kgo.ConsumerBalancer, partitions map[string]int32) kgo.IntoSyncAssignment {
	var members []string
	prev := map[taskID]string{}
	byID := map[string]*kmsg.JoinGroupResponseMember{}
	cb.EachMember(func(m *kmsg.JoinGroupResponseMember, meta *kmsg.ConsumerMemberMetadata) {
		members = append(members, m.MemberID)
		byID[m.MemberID] = m
		for _, op := range meta.OwnedPartitions {
			sub, ok := b.subs[op.Topic]
			if !ok {
				continue
			}
			for _, p := range op.Partitions {
				prev[taskID{sub, p}] = m.MemberID
			}
		}
	})
	assign := assignTasks(b.tasks(partitions), members, prev)
	plan := cb.NewPlan()
	for t, m := range assign {
		for _, topic := range b.topics[t.sub] {
			if t.partition < partitions[topic] {
				plan.AddPartition(byID[m], topic, t.partition)
			}
		}
	}
	plan.AdjustCooperative(cb)
	return plan
}

// tasks lists the tasks given the topics' partition counts: a sub-topology
// has as many tasks as its largest topic has partitions.
func (b *taskBalancer) tasks(partitions map[string]int32) []taskID {
	var ts []taskID
	for sub, topics := range b.topics {
		var n int32
		for _, t := range topics {
			n = max(n, partitions[t])
		}
		for p := range n {
			ts = append(ts, taskID{sub, p})
		}
	}
	slices.SortFunc(ts, taskID.compare)
	return ts
}

// assignTasks assigns tasks to members: first each task to its previous
// owner while that member is below its quota and its share of the task's
// sub-topology, then the rest to the least loaded members, preferring those
// with the fewest tasks of the same sub-topology. Quotas differ by at most one task. members is in a
// deterministic order (the group's), which breaks ties.
func assignTasks(tasks []taskID, members []string, prev map[taskID]string) map[taskID]string {
	out := make(map[taskID]string, len(tasks))
	if len(members) == 0 {
		return out
	}
	load := make(map[string]int, len(members))
	perSub := map[string]map[int]int{}
	for _, m := range members {
		perSub[m] = map[int]int{}
	}
	// At most extra members may hold base+1 tasks.
	base, extra := len(tasks)/len(members), len(tasks)%len(members)
	fits := func(m string) bool {
		if load[m] < base {
			return true
		}
		if load[m] == base && extra > 0 {
			return true
		}
		return false
	}
	take := func(t taskID, m string) {
		if load[m] == base {
			extra--
		}
		load[m]++
		perSub[m][t.sub]++
		out[t] = m
	}
	// A member keeps a task only up to its share of the task's
	// sub-topology, so that scaling out spreads every sub-topology rather
	// than handing whole sub-topologies to the newcomers.
	subTasks := map[int]int{}
	for _, t := range tasks {
		subTasks[t.sub]++
	}
	share := func(sub int) int { return (subTasks[sub] + len(members) - 1) / len(members) }
	var rest []taskID
	for _, t := range tasks {
		if m, ok := prev[t]; ok && perSub[m] != nil && fits(m) && perSub[m][t.sub] < share(t.sub) {
			take(t, m)
		} else {
			rest = append(rest, t)
		}
	}
	for _, t := range rest {
		best := ""
		for _, m := range members {
			if !fits(m) {
				continue
			}
			if best == "" || load[m] < load[best] ||
				load[m] == load[best] && perSub[m][t.sub] < perSub[best][t.sub] {
				best = m
			}
		}
		take(t, best)
	}
	return out
}
