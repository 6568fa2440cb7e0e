package runtime

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
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

// parseTaskID parses String's form, and only it: decimal numbers without
// sign, spaces or leading zeros, so that no other directory of the state
// directory is taken for a task's (FuzzParseTaskID).
func parseTaskID(s string) (taskID, error) {
	sub, part, ok := strings.Cut(s, "_")
	a, aok := parseCanonicalUint(sub, 31)
	b, bok := parseCanonicalUint(part, 31)
	if !ok || !aok || !bok {
		return taskID{}, fmt.Errorf("sluice: %q is not a task ID", s)
	}
	return taskID{sub: int(a), partition: int32(b)}, nil
}

// parseCanonicalUint parses a non-negative decimal number of at most bits
// bits written as strconv.FormatUint writes it.
func parseCanonicalUint(s string, bits int) (uint64, bool) {
	if s == "" || (len(s) > 1 && s[0] == '0') || strings.TrimLeft(s, "0123456789") != "" {
		return 0, false
	}
	n, err := strconv.ParseUint(s, 10, bits)
	return n, err == nil
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
// instance. The leader's assignment is Kafka Streams' high-availability
// assignment (hassign.go): balanced by task count, sticky (a task stays
// where it runs, or returns to the instance whose local state of it is the
// most caught up, keyed by instance or process ID so that stickiness
// survives a restart), spread over the members per sub-topology, with
// standby and warm-up replicas of stateful tasks, and cooperative
// (KIP-429): a task that moves is first revoked from its owner, and
// assigned to its new owner in the follow-up rebalance, so members that
// keep their tasks never stop.
//
// Members report their process ID and the offset sums of their local
// state in the member metadata's user data (memberData); the leader sends
// each member its standby and warm-up tasks in the assignment's user data
// (assignmentData).
type taskBalancer struct {
	// subs maps each Kafka topic the application reads to its sub-topology.
	subs map[string]int
	// topics lists each sub-topology's topics.
	topics map[int][]string
	// changelogs lists the changelog topics of each sub-topology's
	// persistent logged stores: its tasks are the stateful ones.
	changelogs map[int][]string

	process processID
	// host is the advertised host of this instance ("" without one).
	host    string
	offsets *taskOffsets // what JoinGroupMetadata reports
	log     *slog.Logger

	standbys        int
	maxWarmups      int
	acceptableLag   int64
	probingInterval time.Duration
	// endOffsets lists the end offsets of topics (the leader's lag
	// computation); nil: lags unknown.
	endOffsets func(ctx context.Context, topics []string) (map[topicPartition]int64, error)
	// forceRebalance rejoins the group (the client's ForceRebalance), for
	// the probing rebalance; ctx ends the balancer's timers.
	forceRebalance func()
	ctx            context.Context

	// assigned is this member's assignment data from its latest sync.
	assigned atomic.Pointer[assignmentData]

	probeMu    sync.Mutex
	probeTimer *time.Timer
	probeStop  func() bool // unregisters the timer's stop at ctx's end
	probeAt    time.Time
}

// newBalancer makes the App's balancer for layout l.
func (a *App) newBalancer(l *layout) *taskBalancer {
	b := &taskBalancer{
		subs: map[string]int{}, topics: l.topics, changelogs: map[int][]string{},
		process: a.processID, host: a.advertised, offsets: &a.offsets, log: a.log,
		standbys: a.cfg.standbys, maxWarmups: a.cfg.maxWarmups, acceptableLag: a.cfg.acceptableLag,
		probingInterval: a.cfg.probingInterval, ctx: a.groupCtx,
	}
	for sub, ts := range l.topics {
		for _, t := range ts {
			b.subs[t] = sub
		}
	}
	// Stateful, for the assignment, are the tasks with persistent logged
	// stores: only those have copies (local state left behind, standbys)
	// that can be caught up; an in-memory store restores from its
	// changelog's start wherever it opens.
	b.changelogs = a.persistentChangelogs()
	b.endOffsets = func(ctx context.Context, topics []string) (map[topicPartition]int64, error) {
		ends, err := kadm.NewClient(a.admin).ListEndOffsets(ctx, topics...)
		if err != nil {
			return nil, err
		}
		if err := ends.Error(); err != nil {
			return nil, err
		}
		m := map[topicPartition]int64{}
		ends.Each(func(o kadm.ListedOffset) { m[topicPartition{o.Topic, o.Partition}] = o.Offset })
		return m, nil
	}
	// The offset sums of the task directories on disk, for the first
	// join's member metadata.
	a.scanLocalOffsets(b.changelogs)
	b.forceRebalance = func() {
		// a.client is set under a.mu; ForceRebalance runs without it
		// (it takes the client's group lock, which the client may hold
		// while a group callback waits for a.mu).
		a.mu.Lock()
		cl := a.client
		a.mu.Unlock()
		if cl != nil {
			cl.ForceRebalance()
		}
	}
	return b
}

func (*taskBalancer) ProtocolName() string { return "sluice-tasks" }
func (*taskBalancer) IsCooperative() bool  { return true }

// JoinGroupMetadata runs in the group goroutine: it reads the offset sums
// from their snapshot, never a.mu.
func (b *taskBalancer) JoinGroupMetadata(interests []string, owned map[string][]int32, generation int32) []byte {
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
	d := memberData{process: b.process, host: b.host}
	if b.offsets != nil {
		d.sums = b.offsets.snapshot()
	}
	meta.UserData = encodeMemberData(d)
	return meta.AppendTo(nil)
}

// ParseSyncAssignment returns the assigned partitions and keeps the
// standby and warm-up tasks for onAssigned (standbyAssignment). Malformed
// user data is logged and taken as no standbys: the partitions are still
// right.
func (b *taskBalancer) ParseSyncAssignment(assignment []byte) (map[string][]int32, error) {
	var ka kmsg.ConsumerMemberAssignment
	if err := ka.ReadFrom(assignment); err != nil {
		return nil, fmt.Errorf("sluice: sync assignment parse failed: %w", err)
	}
	m := make(map[string][]int32, len(ka.Topics))
	for _, t := range ka.Topics {
		m[t.Topic] = t.Partitions
	}
	d, err := decodeAssignmentData(ka.UserData)
	if err != nil && b.log != nil {
		b.log.Error("assignment without its standby tasks", "err", err)
	}
	b.assigned.Store(&d)
	return m, nil
}

// standbyTasks is this instance's standby and warm-up tasks of its latest
// sync (for tests and diagnostics).
func (a *App) standbyTasks() []taskID {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.bal == nil {
		return nil
	}
	return a.bal.standbyAssignment().standbys
}

// standbyAssignment is this member's standby and warm-up tasks (sorted)
// from its latest sync.
func (b *taskBalancer) standbyAssignment() assignmentData {
	if d := b.assigned.Load(); d != nil {
		return *d
	}
	return assignmentData{}
}

func (b *taskBalancer) MemberBalancer(members []kmsg.JoinGroupResponseMember) (kgo.GroupMemberBalancer, map[string]struct{}, error) {
	cb, err := kgo.NewConsumerBalancer(b, members)
	if err != nil {
		return nil, nil, err
	}
	return cb, cb.MemberTopics(), nil
}

// endOffsetsTimeout bounds the leader's listing of the changelog end
// offsets during a rebalance.
const endOffsetsTimeout = 5 * time.Second

// Balance implements kgo.ConsumerBalancerBalance: the leader's assignment.
func (b *taskBalancer) Balance(cb *kgo.ConsumerBalancer, partitions map[string]int32) kgo.IntoSyncAssignment {
	tasks := b.tasks(partitions)
	in := haInput{
		tasks: tasks, stateful: map[taskID]bool{}, running: map[taskID]string{}, sums: map[string]map[taskID]int64{},
		standbys: b.standbys, maxWarmups: b.maxWarmups, acceptableLag: b.acceptableLag,
	}
	for _, t := range tasks {
		if len(b.changelogs[t.sub]) > 0 {
			in.stateful[t] = true
		}
	}
	member := map[string]*kmsg.JoinGroupResponseMember{} // client key → member
	hostOf := map[string]string{}                        // client key → advertised host
	claimGen := map[taskID]int32{}                       // generation of in.running's claim
	cb.EachMember(func(m *kmsg.JoinGroupResponseMember, meta *kmsg.ConsumerMemberMetadata) {
		d, err := decodeMemberData(meta.UserData)
		if err != nil && b.log != nil {
			b.log.Warn("member metadata without offset sums: the member counts as having no local state",
				"member_id", m.MemberID, "err", err)
		}
		key := clientKey(m, d, err == nil)
		if other, dup := member[key]; dup {
			// Two members with one process ID (a copied state
			// directory): tell them apart by member ID.
			if b.log != nil {
				b.log.Warn("two members with one process ID (a copied state directory?): the second loses its stickiness; delete process.id in one of the copies",
					"client", key, "member_id", other.MemberID, "other_member_id", m.MemberID)
			}
			key = "member:" + m.MemberID
		}
		member[key] = m
		hostOf[key] = d.host
		in.clients = append(in.clients, key)
		in.sums[key] = d.sums
		// A stale claim (a member that missed rebalances, KIP-792)
		// loses to one of a later generation, as in franz-go's
		// AdjustCooperative.
		for _, op := range meta.OwnedPartitions {
			sub, ok := b.subs[op.Topic]
			if !ok {
				continue
			}
			for _, p := range op.Partitions {
				t := taskID{sub, p}
				if g, claimed := claimGen[t]; !claimed || meta.Generation > g {
					in.running[t], claimGen[t] = key, meta.Generation
				}
			}
		}
	})
	for _, c := range in.clients {
		for t, sum := range in.sums[c] {
			if _, ok := in.running[t]; !ok && sum == offsetSumRunning {
				in.running[t] = c
			}
		}
	}
	in.ends = b.changelogEnds(tasks, in.stateful)
	ha := assignHA(in)

	plan := cb.NewPlan()
	for t, c := range ha.active {
		for _, topic := range b.topics[t.sub] {
			if t.partition < partitions[topic] {
				plan.AddPartition(member[c], topic, t.partition)
			}
		}
	}
	plan.AdjustCooperative(cb)
	// A task held back by the cooperative protocol (its partitions are
	// revoked from their owner first) is a standby of its new owner until
	// the follow-up rebalance assigns it: a standby there keeps its state
	// current rather than closing it.
	got := plan.AsMemberIDMap()
	data := map[string][]byte{}
	hosts := b.hostTasks(in.clients, hostOf, ha)
	for _, c := range in.clients {
		d := assignmentData{standbys: ha.standby[c], warmups: ha.warmup[c], hosts: hosts}
		for t, owner := range ha.active {
			if owner != c || !in.stateful[t] {
				continue
			}
			held := true
			for _, topic := range b.topics[t.sub] {
				if slices.Contains(got[member[c].MemberID][topic], t.partition) {
					held = false
				}
			}
			if held {
				d.standbys = append(slices.Clone(d.standbys), t)
			}
		}
		slices.SortFunc(d.standbys, taskID.compare)
		d.standbys = slices.Compact(d.standbys)
		if len(d.standbys) > 0 || len(d.hosts) > 0 {
			data[member[c].MemberID] = encodeAssignmentData(d)
		}
	}
	if b.log != nil {
		b.log.Info("assigned tasks", "clients", len(in.clients), "tasks", len(tasks), "stateful", len(in.stateful),
			"lags_known", in.ends != nil, "standbys", ha.standby, "warmups", ha.warmup, "movements", ha.movements,
			"probing_rebalance", ha.probe)
	}
	b.scheduleProbe(ha.probe)
	return &haSyncAssignment{plan: plan, data: data}
}

// hostTasks lists each advertised host's active and standby tasks of
// plan ha, sorted by host (Kafka Streams' partitionsByHost and
// standbyPartitionsByHost). Two clients advertising one host (a
// misconfiguration) share its entry.
func (b *taskBalancer) hostTasks(clients []string, hostOf map[string]string, ha haPlan) []hostTasks {
	byHost := map[string]*hostTasks{}
	for _, c := range clients {
		h := hostOf[c]
		if h == "" {
			continue
		}
		ht := byHost[h]
		if ht == nil {
			ht = &hostTasks{host: h}
			byHost[h] = ht
		} else if b.log != nil {
			b.log.Warn("two members advertise one host: interactive queries cannot tell them apart; set runtime.AdvertisedAddr",
				"host", h, "client", c)
		}
		for t, owner := range ha.active {
			if owner == c {
				ht.active = append(ht.active, t)
			}
		}
		ht.standbys = append(ht.standbys, ha.standby[c]...)
	}
	out := make([]hostTasks, 0, len(byHost))
	for _, ht := range byHost {
		slices.SortFunc(ht.active, taskID.compare)
		slices.SortFunc(ht.standbys, taskID.compare)
		ht.active, ht.standbys = slices.Compact(ht.active), slices.Compact(ht.standbys)
		out = append(out, *ht)
	}
	slices.SortFunc(out, func(x, y hostTasks) int { return cmp.Compare(x.host, y.host) })
	return out
}

// clientKey keys a member's client: its instance ID, else its process ID,
// else its member ID, so that a restarted instance (a new member ID, no
// owned partitions) is the same client for the assignment.
func clientKey(m *kmsg.JoinGroupResponseMember, d memberData, decoded bool) string {
	switch {
	case m.InstanceID != nil && *m.InstanceID != "":
		return "instance:" + *m.InstanceID
	case decoded:
		return "process:" + d.process.String()
	}
	return "member:" + m.MemberID
}

// changelogEnds returns each stateful task's changelog end offset sum, or
// nil when they could not all be listed within endOffsetsTimeout.
func (b *taskBalancer) changelogEnds(tasks []taskID, stateful map[taskID]bool) map[taskID]int64 {
	if b.endOffsets == nil || len(stateful) == 0 {
		return nil
	}
	var topics []string
	for _, ts := range b.changelogs {
		topics = append(topics, ts...)
	}
	slices.Sort(topics)
	topics = slices.Compact(topics)
	ctx := b.ctx
	if ctx == nil {
		ctx = context.Background()
	}
	ctx, cancel := context.WithTimeout(ctx, endOffsetsTimeout)
	defer cancel()
	ends, err := b.endOffsets(ctx, topics)
	if err != nil {
		if b.log != nil {
			b.log.Warn("assignment without lags: could not list the changelog end offsets; tasks stay where they are",
				"changelogs", topics, "err", err)
		}
		return nil
	}
	sums := map[taskID]int64{}
	for _, t := range tasks {
		if !stateful[t] {
			continue
		}
		var sum int64
		for _, topic := range b.changelogs[t.sub] {
			end, ok := ends[topicPartition{topic, t.partition}]
			if !ok {
				if b.log != nil {
					b.log.Warn("assignment without lags: no end offset listed", "topic", topic, "partition", t.partition)
				}
				return nil
			}
			sum = addSaturating(sum, max(end, 0))
		}
		sums[t] = sum
	}
	return sums
}

// scheduleProbe arms (or, with due false, disarms) the probing rebalance:
// the leader rejoins after the probing interval, which rebalances the
// group so that warm-ups that caught up take their tasks (Kafka Streams'
// probing.rebalance.interval.ms).
func (b *taskBalancer) scheduleProbe(due bool) {
	b.probeMu.Lock()
	defer b.probeMu.Unlock()
	if b.probeTimer != nil {
		b.probeTimer.Stop()
		b.probeStop()
		b.probeTimer, b.probeStop, b.probeAt = nil, nil, time.Time{}
	}
	if !due || b.forceRebalance == nil || b.probingInterval <= 0 {
		return
	}
	ctx := b.ctx
	if ctx == nil {
		ctx = context.Background()
	}
	if ctx.Err() != nil {
		return
	}
	var t *time.Timer
	t = time.AfterFunc(b.probingInterval, func() {
		b.probeMu.Lock()
		current := b.probeTimer == t
		if current {
			b.probeStop()
			b.probeTimer, b.probeStop, b.probeAt = nil, nil, time.Time{}
		}
		b.probeMu.Unlock()
		if current && ctx.Err() == nil {
			if b.log != nil {
				b.log.Info("probing rebalance: checking whether the warm-up replicas caught up")
			}
			b.forceRebalance()
		}
	})
	b.probeTimer, b.probeAt = t, time.Now().Add(b.probingInterval)
	b.probeStop = context.AfterFunc(ctx, func() { t.Stop() })
}

// probeDue is when the probing rebalance is due; zero when none is.
func (b *taskBalancer) probeDue() time.Time {
	b.probeMu.Lock()
	defer b.probeMu.Unlock()
	return b.probeAt
}

// haSyncAssignment is the leader's plan with each member's assignment
// data in the user data of its consumer-protocol assignment.
type haSyncAssignment struct {
	plan *kgo.BalancePlan
	data map[string][]byte // member ID → encodeAssignmentData
}

func (p *haSyncAssignment) IntoSyncAssignment() []kmsg.SyncGroupRequestGroupAssignment {
	as := p.plan.IntoSyncAssignment()
	for i := range as {
		ud := p.data[as[i].MemberID]
		if ud == nil {
			continue
		}
		var ka kmsg.ConsumerMemberAssignment
		if err := ka.ReadFrom(as[i].MemberAssignment); err != nil {
			continue // not reached: the plan encoded it
		}
		ka.UserData = ud
		as[i].MemberAssignment = ka.AppendTo(nil)
	}
	return as
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

// assignTasks assigns tasks to members, balanced and sticky
// (assignBalanced without preferences or initial loads).
func assignTasks(tasks []taskID, members []string, prev map[taskID]string) map[taskID]string {
	return assignBalanced(tasks, members, prev, nil, nil)
}
