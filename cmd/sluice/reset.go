package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

const resetDescription = `Reset an application so that its next run processes its input again, as
Kafka Streams' kafka-streams-application-reset does:

  - the committed offsets of the input topics (-input-topics) in the
    application's consumer group are set: to each partition's start by
    default, or to its end, a time, a duration ago, an offset, or shifted;
  - the committed offsets of intermediate topics (-intermediate-topics, topics
    the application writes and reads back) are set to their end;
  - the application's internal topics are deleted: the topics named
    "<application-id>-...-changelog", "-repartition", and the foreign-key
    join topics "-subscription-registration-topic" and
    "-subscription-response-topic" (the next run creates them again).

It refuses while the consumer group has members (every instance must be
stopped first; -force removes members left behind, e.g. static members whose
session has not yet expired). Output topics are left as they are. Each
instance's local state no longer matches the recreated changelogs: a Sluice
instance finds that on its next start and deletes it, but deleting each
instance's state directory (<state dir>/<application-id>) is the sure way,
as KafkaStreams#cleanUp is in Kafka Streams. Run it with -dry-run first: the
changes cannot be undone.`

// resetTarget is where the input offsets go: one of the -to-* flags.
type resetTarget struct {
	kind     string // "earliest", "latest", "datetime", "duration", "offset", "shift"
	millis   int64  // datetime, duration: the time, epoch milliseconds
	offset   int64  // offset: the offset; shift: the shift
	flagText string
}

// runReset is `sluice reset`.
func runReset(ctx context.Context, args []string, out, errOut io.Writer) error {
	fs := newFlagSet("reset", "-application-id ID [-brokers B] [-input-topics a,b] [-to-...] [-dry-run]", resetDescription, errOut)
	var kf kafkaFlags
	kf.register(fs)
	inputs := fs.String("input-topics", "", "comma-separated input topics whose committed offsets are reset")
	intermediates := fs.String("intermediate-topics", "", "comma-separated intermediate topics (written and read back by the application) whose committed offsets go to their end")
	internal := fs.String("internal-topics", "", "comma-separated internal topics to delete: a subset of those found (a -dry-run lists them); default: all found")
	fs.Bool("to-earliest", false, "reset input offsets to each partition's start offset (the default)")
	fs.Bool("to-latest", false, "reset input offsets to each partition's end offset")
	fs.String("to-datetime", "", "reset input offsets to the first record at or after this time: RFC 3339 (2026-12-07T10:00:00Z), UTC when no zone is given")
	fs.String("by-duration", "", "reset input offsets to the first record at or after this long ago: a Go duration (90m) or ISO 8601 (PT1H30M, P1DT2H)")
	fs.Int64("to-offset", 0, "reset input offsets to this offset (clamped to each partition's start and end)")
	fs.Int64("shift-by", 0, "shift the committed input offsets by this many (negative: back), clamped to each partition's start and end")
	dryRun := fs.Bool("dry-run", false, "print what would be done, change nothing")
	force := fs.Bool("force", false, "remove the group's members instead of refusing (only for members left behind: stop every instance first)")
	if done, err := parseFlags(fs, args); done {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("reset takes no arguments, got %q", fs.Args())
	}
	target, err := parseResetTarget(fs, time.Now())
	if err != nil {
		return err
	}
	adm, cl, err := kf.admin()
	if err != nil {
		return err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(ctx, kf.timeout)
	defer cancel()
	r := &resetter{
		adm: adm, cl: cl, out: out, group: kf.appID,
		inputs: splitList(*inputs), intermediates: splitList(*intermediates), internal: splitList(*internal),
		target: target, dryRun: *dryRun, force: *force,
	}
	return r.reset(ctx)
}

// parseResetTarget reads the -to-* flags, at most one of which may be set.
func parseResetTarget(fs *flag.FlagSet, now time.Time) (resetTarget, error) {
	var set []string
	fs.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "to-earliest", "to-latest", "to-datetime", "by-duration", "to-offset", "shift-by":
			set = append(set, "-"+f.Name)
		}
	})
	if len(set) > 1 {
		return resetTarget{}, usagef("%s cannot be combined: give one of -to-earliest, -to-latest, -to-datetime, -by-duration, -to-offset, -shift-by", strings.Join(set, " and "))
	}
	if len(set) == 0 {
		return resetTarget{kind: "earliest", flagText: "-to-earliest"}, nil
	}
	t := resetTarget{flagText: set[0]}
	value := fs.Lookup(strings.TrimPrefix(set[0], "-")).Value.String()
	switch set[0] {
	case "-to-earliest", "-to-latest":
		if value != "true" {
			return resetTarget{kind: "earliest", flagText: "-to-earliest"}, nil
		}
		t.kind = strings.TrimPrefix(set[0], "-to-")
	case "-to-datetime":
		ts, err := parseDateTime(value)
		if err != nil {
			return t, &usageError{fmt.Sprintf("-to-datetime %q: %v", value, err)}
		}
		t.kind, t.millis = "datetime", ts.UnixMilli()
	case "-by-duration":
		d, err := parseDuration(value)
		if err != nil {
			return t, &usageError{fmt.Sprintf("-by-duration %q: %v", value, err)}
		}
		t.kind, t.millis = "duration", now.Add(-d).UnixMilli()
	case "-to-offset", "-shift-by":
		n, _ := strconv.ParseInt(value, 10, 64) // the flag package checked it
		t.kind, t.offset = "offset", n
		if set[0] == "-shift-by" {
			t.kind = "shift"
		}
	}
	return t, nil
}

// parseDateTime parses an RFC 3339 time; without a zone it is UTC (as
// kafka-streams-application-reset reads a time without one).
func parseDateTime(s string) (time.Time, error) {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999Z0700", "2006-01-02T15:04:05.999999999Z07"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	t, err := time.ParseInLocation("2006-01-02T15:04:05.999999999", s, time.UTC)
	if err != nil {
		return time.Time{}, errors.New("not an RFC 3339 time such as 2026-12-07T10:00:00Z or 2026-12-07T10:00:00.000+01:00")
	}
	return t, nil
}

var isoDuration = regexp.MustCompile(`^P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?$`)

// parseDuration parses a Go duration ("90m") or an ISO 8601 one as Java's
// Duration.parse takes ("PT1H30M", "P1DT2H"); it must not be negative.
func parseDuration(s string) (time.Duration, error) {
	if d, err := time.ParseDuration(s); err == nil {
		if d < 0 {
			return 0, errors.New("negative duration")
		}
		return d, nil
	}
	m := isoDuration.FindStringSubmatch(strings.ToUpper(s))
	if m == nil || s == "P" || strings.HasSuffix(strings.ToUpper(s), "T") {
		return 0, errors.New("neither a Go duration (90m) nor an ISO 8601 one (PT1H30M, P1DT2H)")
	}
	var d time.Duration
	for i, unit := range []time.Duration{24 * time.Hour, time.Hour, time.Minute} {
		if m[i+1] != "" {
			n, err := strconv.ParseInt(m[i+1], 10, 64)
			if err != nil {
				return 0, err
			}
			d += time.Duration(n) * unit
		}
	}
	if m[4] != "" {
		f, err := strconv.ParseFloat(m[4], 64)
		if err != nil {
			return 0, err
		}
		d += time.Duration(f * float64(time.Second))
	}
	return d, nil
}

// resetter is one run of reset.
type resetter struct {
	adm    *kadm.Client
	cl     *kgo.Client
	out    io.Writer
	group  string
	target resetTarget

	inputs, intermediates, internal []string
	dryRun, force                   bool

	topics map[string]bool // every topic of the cluster
}

func (r *resetter) printf(format string, args ...any) { fmt.Fprintf(r.out, format, args...) }

func (r *resetter) reset(ctx context.Context) error {
	if err := r.checkMembers(ctx); err != nil {
		return err
	}
	all, err := r.adm.ListTopics(ctx)
	if err != nil {
		return fmt.Errorf("list topics: %w", err)
	}
	r.topics = map[string]bool{}
	for _, t := range all.Names() {
		r.topics[t] = true
	}
	if r.dryRun {
		r.printf("Dry run: these are the actions a reset would take; nothing is changed.\n")
	}
	missing, err := r.resetOffsets(ctx)
	if err != nil {
		return err
	}
	if err := r.deleteInternalTopics(ctx); err != nil {
		return err
	}
	if len(missing) > 0 {
		return fmt.Errorf("topics not found, skipped: %s", strings.Join(missing, ", "))
	}
	r.printf("Done.\n")
	return nil
}

// checkMembers refuses a group with members, or removes them with -force.
func (r *resetter) checkMembers(ctx context.Context) error {
	described, err := r.adm.DescribeGroups(ctx, r.group)
	if err != nil {
		return fmt.Errorf("describe consumer group %s: %w", r.group, err)
	}
	g, ok := described[r.group]
	if !ok {
		return fmt.Errorf("describe consumer group %s: not in the broker's answer", r.group)
	}
	if g.Err != nil {
		if errors.Is(g.Err, kerr.GroupIDNotFound) {
			return nil
		}
		return fmt.Errorf("describe consumer group %s: %w", r.group, g.Err)
	}
	if len(g.Members) == 0 {
		return nil
	}
	names := make([]string, len(g.Members))
	for i, m := range g.Members {
		names[i] = describeMember(m)
	}
	if !r.force {
		return fmt.Errorf("consumer group %s is still active (state %s) and has these members: %s; stop every instance of the application before resetting it (-force removes members left behind)",
			r.group, g.State, strings.Join(names, "; "))
	}
	if r.dryRun {
		r.printf("Dry run: would remove every member of consumer group %s: %s\n", r.group, strings.Join(names, "; "))
		return nil
	}
	r.printf("Removing every member of consumer group %s: %s\n", r.group, strings.Join(names, "; "))
	req := kmsg.NewPtrLeaveGroupRequest()
	req.Group = r.group
	for _, m := range g.Members {
		lm := kmsg.NewLeaveGroupRequestMember()
		lm.MemberID = m.MemberID
		lm.InstanceID = m.InstanceID
		reason := "sluice reset -force"
		lm.Reason = &reason
		req.Members = append(req.Members, lm)
	}
	resp, err := req.RequestWith(ctx, r.cl)
	if err != nil {
		return fmt.Errorf("remove the members of consumer group %s: %w", r.group, err)
	}
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
		return fmt.Errorf("remove the members of consumer group %s: %w", r.group, err)
	}
	for _, m := range resp.Members {
		if err := kerr.ErrorForCode(m.ErrorCode); err != nil {
			return fmt.Errorf("remove member %s of consumer group %s: %w", m.MemberID, r.group, err)
		}
	}
	return nil
}

// describeMember names a member as the group knows it.
func describeMember(m kadm.DescribedGroupMember) string {
	s := fmt.Sprintf("member %s (client %s, host %s", m.MemberID, m.ClientID, m.ClientHost)
	if m.InstanceID != nil {
		s += ", instance " + *m.InstanceID
	}
	return s + ")"
}

// resetOffsets commits the new offsets of the input and intermediate
// topics, and returns those of them that do not exist.
func (r *resetter) resetOffsets(ctx context.Context) (missing []string, err error) {
	if len(r.inputs) == 0 && len(r.intermediates) == 0 {
		r.printf("No input or intermediate topics given: no offsets to reset.\n")
		return nil, nil
	}
	var inputs, intermediates []string
	for _, t := range r.inputs {
		if r.topics[t] {
			inputs = append(inputs, t)
		} else {
			missing = append(missing, t)
		}
	}
	for _, t := range r.intermediates {
		if r.topics[t] {
			intermediates = append(intermediates, t)
		} else {
			missing = append(missing, t)
		}
	}
	for _, t := range missing {
		r.printf("Topic %s not found: skipped\n", t)
	}
	present := append(slices.Clone(inputs), intermediates...)
	if len(present) == 0 {
		return missing, nil
	}
	starts, err := r.adm.ListStartOffsets(ctx, present...)
	if err == nil {
		err = starts.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("list start offsets of %s: %w", strings.Join(present, ", "), err)
	}
	ends, err := r.adm.ListEndOffsets(ctx, present...)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("list end offsets of %s: %w", strings.Join(present, ", "), err)
	}
	targets, err := r.inputTargets(ctx, inputs, starts, ends)
	if err != nil {
		return nil, err
	}
	offsets := kadm.Offsets{}
	if len(inputs) > 0 {
		r.printf("Reset the offsets of input topics %s (%s) in consumer group %s:\n", strings.Join(inputs, ", "), r.target.flagText, r.group)
		for _, t := range inputs {
			for _, p := range sortedPartitions(ends[t]) {
				off := targets[t][p]
				r.printf("Topic: %s Partition: %d Offset: %d\n", t, p, off)
				offsets.Add(kadm.Offset{Topic: t, Partition: p, At: off, LeaderEpoch: -1})
			}
		}
	}
	if len(intermediates) > 0 {
		r.printf("Set the offsets of intermediate topics %s to their end in consumer group %s:\n", strings.Join(intermediates, ", "), r.group)
		for _, t := range intermediates {
			for _, p := range sortedPartitions(ends[t]) {
				off := ends[t][p].Offset
				r.printf("Topic: %s Partition: %d Offset: %d\n", t, p, off)
				offsets.Add(kadm.Offset{Topic: t, Partition: p, At: off, LeaderEpoch: -1})
			}
		}
	}
	if r.dryRun {
		return missing, nil
	}
	resps, err := r.adm.CommitOffsets(ctx, r.group, offsets)
	if err == nil {
		err = resps.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("commit the new offsets in consumer group %s: %w", r.group, err)
	}
	return missing, nil
}

func sortedPartitions(m map[int32]kadm.ListedOffset) []int32 {
	return slices.Sorted(maps.Keys(m))
}

// inputTargets computes the new offset of every partition of inputs.
func (r *resetter) inputTargets(ctx context.Context, inputs []string, starts, ends kadm.ListedOffsets) (map[string]map[int32]int64, error) {
	out := map[string]map[int32]int64{}
	if len(inputs) == 0 {
		return out, nil
	}
	var byTime kadm.ListedOffsets
	var committed kadm.OffsetResponses
	var err error
	switch r.target.kind {
	case "datetime", "duration":
		byTime, err = r.adm.ListOffsetsAfterMilli(ctx, r.target.millis, inputs...)
		if err == nil {
			err = byTime.Error()
		}
		if err != nil {
			return nil, fmt.Errorf("list offsets of %s at %s: %w", strings.Join(inputs, ", "), time.UnixMilli(r.target.millis).UTC().Format(time.RFC3339Nano), err)
		}
	case "shift":
		committed, err = r.adm.FetchOffsets(ctx, r.group)
		if err == nil {
			err = committed.Error()
		}
		if err != nil {
			return nil, fmt.Errorf("fetch the committed offsets of consumer group %s: %w", r.group, err)
		}
	}
	for _, t := range inputs {
		out[t] = map[int32]int64{}
		for p, end := range ends[t] {
			start := starts[t][p].Offset
			var off int64
			switch r.target.kind {
			case "earliest":
				off = start
			case "latest":
				off = end.Offset
			case "datetime", "duration":
				lo, ok := byTime.Lookup(t, p)
				if !ok || lo.Offset < 0 || lo.Offset >= end.Offset {
					r.printf("Topic %s partition %d has no record at or after %s: its offset is set to its end offset %d\n",
						t, p, time.UnixMilli(r.target.millis).UTC().Format(time.RFC3339Nano), end.Offset)
					off = end.Offset
				} else {
					off = lo.Offset
				}
			case "offset":
				off = r.clamp(t, p, r.target.offset, start, end.Offset)
			case "shift":
				// Without a commit, the position is the end, as for the
				// Java tool's consumer (auto.offset.reset=latest).
				pos := end.Offset
				if c, ok := committed.Lookup(t, p); ok && c.At >= 0 {
					pos = c.At
				}
				off = r.clamp(t, p, pos+r.target.offset, start, end.Offset)
			}
			out[t][p] = off
		}
	}
	return out, nil
}

// clamp keeps off within [start, end], saying so when it moves it.
func (r *resetter) clamp(t string, p int32, off, start, end int64) int64 {
	switch {
	case off > end:
		r.printf("Topic %s partition %d: offset %d is past the end offset: set to %d\n", t, p, off, end)
		return end
	case off < start:
		r.printf("Topic %s partition %d: offset %d is before the start offset: set to %d\n", t, p, off, start)
		return start
	}
	return off
}

// isInternalTopic tells whether topic is named as one of the internal
// topics of application appID: changelog, repartition, and foreign-key
// join subscription and response topics (StreamsResetter's
// matchesInternalTopicFormat: Sluice names them as Kafka Streams does).
func isInternalTopic(appID, topic string) bool {
	if !strings.HasPrefix(topic, appID+"-") {
		return false
	}
	return strings.HasSuffix(topic, "-changelog") || strings.HasSuffix(topic, "-repartition") ||
		strings.HasSuffix(topic, "-subscription-registration-topic") ||
		strings.HasSuffix(topic, "-subscription-response-topic") ||
		generatedFKTopic.MatchString(topic)
}

var generatedFKTopic = regexp.MustCompile(`.+-KTABLE-FK-JOIN-SUBSCRIPTION-(REGISTRATION|RESPONSE)-\d+-topic$`)

// deleteInternalTopics deletes the application's internal topics (or the
// -internal-topics subset) and waits until the brokers no longer list them.
func (r *resetter) deleteInternalTopics(ctx context.Context) error {
	var found []string
	for t := range r.topics {
		// An input or intermediate topic named like an internal one is
		// not deleted (KAFKA-7930).
		if isInternalTopic(r.group, t) && !slices.Contains(r.inputs, t) && !slices.Contains(r.intermediates, t) {
			found = append(found, t)
		}
	}
	slices.Sort(found)
	del := found
	if len(r.internal) > 0 {
		for _, t := range r.internal {
			if !slices.Contains(found, t) {
				return usagef("-internal-topics: %s is not one of the application's internal topics (%s); a -dry-run without -internal-topics lists them",
					t, strings.Join(found, ", "))
			}
		}
		del = r.internal
	}
	if len(del) == 0 {
		r.printf("No internal topics of application %s found.\n", r.group)
		return nil
	}
	r.printf("Delete the internal topics of application %s:\n", r.group)
	if r.dryRun {
		for _, t := range del {
			r.printf("Topic %s: would be deleted\n", t)
		}
		return nil
	}
	resps, err := r.adm.DeleteTopics(ctx, del...)
	if err != nil {
		return fmt.Errorf("delete topics %s: %w", strings.Join(del, ", "), err)
	}
	var errs []error
	for _, t := range del {
		resp, ok := resps[t]
		switch {
		case !ok:
			errs = append(errs, fmt.Errorf("delete topic %s: not in the broker's answer", t))
		case resp.Err != nil && !errors.Is(resp.Err, kerr.UnknownTopicOrPartition):
			errs = append(errs, fmt.Errorf("delete topic %s: %w", t, resp.Err))
		default:
			r.printf("Topic %s: deleted\n", t)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	return r.awaitDeleted(ctx, del)
}

// awaitDeleted waits until the brokers list none of topics: a broker
// deletes a topic asynchronously, and an application started before that
// would find its old internal topics.
func (r *resetter) awaitDeleted(ctx context.Context, topics []string) error {
	for {
		all, err := r.adm.ListTopics(ctx)
		if err == nil {
			var left []string
			for _, t := range topics {
				if all.Has(t) {
					left = append(left, t)
				}
			}
			if len(left) == 0 {
				return nil
			}
			err = fmt.Errorf("still listed: %s", strings.Join(left, ", "))
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for the deletion of topics %s: %w (%w)", strings.Join(topics, ", "), ctx.Err(), err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}
