package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
)

const lagDescription = `Show how far an application is behind its input: for each partition its
consumer group consumes (the input topics and the repartition topics its
sub-topologies read), the group's committed offset, the partition's end
offset (high watermark), and the lag, end minus committed; then the total
lag, and the lag per topic. A partition a member is assigned but that has no
committed offset shows "-" and counts as lagging from its start offset (as
kadm counts it; kafka-consumer-groups shows no lag for it). A group with no
committed offsets says so.`

// partitionLag is one line of lag's output.
type partitionLag struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	// Committed is the group's committed offset, absent without one.
	Committed *int64 `json:"committed"`
	End       int64  `json:"end"`
	Lag       int64  `json:"lag"`
}

// topicLag is the total lag of one topic.
type topicLag struct {
	Topic string `json:"topic"`
	Lag   int64  `json:"lag"`
}

// groupLag is lag's result.
type groupLag struct {
	Group      string         `json:"group"`
	State      string         `json:"state"`
	Members    int            `json:"members"`
	Partitions []partitionLag `json:"partitions"`
	Topics     []topicLag     `json:"topics"`
	TotalLag   int64          `json:"total_lag"`
}

// runLag is `sluice lag`.
func runLag(ctx context.Context, args []string, out, errOut io.Writer) error {
	fs := newFlagSet("lag", "-application-id ID [-brokers B] [-topics a,b] [-json]", lagDescription, errOut)
	var kf kafkaFlags
	kf.register(fs)
	topics := fs.String("topics", "", "comma-separated topics to show (also their partitions without a committed offset); default: every topic the group commits or is assigned")
	asJSON := fs.Bool("json", false, "print JSON instead of a table")
	if done, err := parseFlags(fs, args); done {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("lag takes no arguments, got %q", fs.Args())
	}
	adm, cl, err := kf.admin()
	if err != nil {
		return err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(ctx, kf.timeout)
	defer cancel()
	gl, err := computeLag(ctx, adm, kf.appID, splitList(*topics))
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(gl)
	}
	printLag(out, gl)
	return nil
}

// computeLag reads the group's committed offsets, its members' assignments
// and the end offsets of its topics. only, if not empty, limits it to
// those topics, listing each of their partitions.
func computeLag(ctx context.Context, adm *kadm.Client, group string, only []string) (*groupLag, error) {
	gl := &groupLag{Group: group, Partitions: []partitionLag{}, Topics: []topicLag{}}
	described, err := adm.DescribeGroups(ctx, group)
	if err != nil {
		return nil, fmt.Errorf("describe consumer group %s: %w", group, err)
	}
	d := described[group]
	switch {
	case d.Err == nil:
		gl.State, gl.Members = d.State, len(d.Members)
	case errors.Is(d.Err, kerr.GroupIDNotFound):
		gl.State = "Dead"
	default:
		return nil, fmt.Errorf("describe consumer group %s: %w", group, d.Err)
	}
	committed, err := adm.FetchOffsets(ctx, group)
	if err == nil {
		err = committed.Error()
	}
	if err != nil && !errors.Is(err, kerr.GroupIDNotFound) {
		return nil, fmt.Errorf("fetch the committed offsets of consumer group %s: %w", group, err)
	}
	// The partitions shown: committed or assigned, or those of -topics.
	type tp struct {
		topic     string
		partition int32
	}
	show := map[tp]bool{}
	committed.Each(func(o kadm.OffsetResponse) {
		if o.Err == nil && o.At >= 0 {
			show[tp{o.Topic, o.Partition}] = true
		}
	})
	for _, m := range d.Members {
		if c, ok := m.Assigned.AsConsumer(); ok {
			for _, t := range c.Topics {
				for _, p := range t.Partitions {
					show[tp{t.Topic, p}] = true
				}
			}
		}
	}
	topicSet := map[string]bool{}
	for k := range show {
		topicSet[k.topic] = true
	}
	if len(only) > 0 {
		topicSet = map[string]bool{}
		for _, t := range only {
			topicSet[t] = true
		}
	}
	if len(topicSet) == 0 {
		return gl, nil
	}
	topics := slices.Sorted(maps.Keys(topicSet))
	ends, err := adm.ListEndOffsets(ctx, topics...)
	if err != nil {
		return nil, fmt.Errorf("list end offsets of %s: %w", strings.Join(topics, ", "), err)
	}
	starts, err := adm.ListStartOffsets(ctx, topics...)
	if err != nil {
		return nil, fmt.Errorf("list start offsets of %s: %w", strings.Join(topics, ", "), err)
	}
	if len(only) > 0 {
		for k := range show {
			if !topicSet[k.topic] {
				delete(show, k)
			}
		}
		for _, t := range only {
			if _, ok := ends[t]; !ok {
				return nil, fmt.Errorf("topic %s not found", t)
			}
			for p := range ends[t] {
				show[tp{t, p}] = true
			}
		}
	}
	keys := slices.SortedFunc(maps.Keys(show), func(a, b tp) int {
		if c := strings.Compare(a.topic, b.topic); c != 0 {
			return c
		}
		return int(a.partition) - int(b.partition)
	})
	byTopic := map[string]int64{}
	for _, k := range keys {
		end, ok := ends.Lookup(k.topic, k.partition)
		if !ok {
			// A committed offset of a deleted topic (or partition).
			continue
		}
		if end.Err != nil {
			return nil, fmt.Errorf("end offset of topic %s partition %d: %w", k.topic, k.partition, end.Err)
		}
		pl := partitionLag{Topic: k.topic, Partition: k.partition, End: end.Offset}
		if c, ok := committed.Lookup(k.topic, k.partition); ok && c.Err == nil && c.At >= 0 {
			at := c.At
			pl.Committed = &at
			pl.Lag = end.Offset - at
		} else if s, ok := starts.Lookup(k.topic, k.partition); ok && s.Err == nil {
			pl.Lag = end.Offset - s.Offset
		} else {
			pl.Lag = end.Offset
		}
		pl.Lag = max(pl.Lag, 0)
		gl.Partitions = append(gl.Partitions, pl)
		gl.TotalLag += pl.Lag
		byTopic[k.topic] += pl.Lag
	}
	for _, t := range slices.Sorted(maps.Keys(byTopic)) {
		gl.Topics = append(gl.Topics, topicLag{Topic: t, Lag: byTopic[t]})
	}
	return gl, nil
}

// printLag prints gl as a table.
func printLag(out io.Writer, gl *groupLag) {
	fmt.Fprintf(out, "Consumer group %s: state %s, %d members\n", gl.Group, gl.State, gl.Members)
	anyCommit := false
	for _, p := range gl.Partitions {
		anyCommit = anyCommit || p.Committed != nil
	}
	if !anyCommit {
		fmt.Fprintf(out, "Consumer group %s has no committed offsets.\n", gl.Group)
		if len(gl.Partitions) == 0 {
			return
		}
	}
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TOPIC\tPARTITION\tCOMMITTED\tEND\tLAG")
	for _, p := range gl.Partitions {
		c := "-"
		if p.Committed != nil {
			c = fmt.Sprint(*p.Committed)
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%d\t%d\n", p.Topic, p.Partition, c, p.End, p.Lag)
	}
	_ = tw.Flush()
	parts := make([]string, len(gl.Topics))
	for i, t := range gl.Topics {
		parts[i] = fmt.Sprintf("%s %d", t.Topic, t.Lag)
	}
	fmt.Fprintf(out, "Total lag: %d (%s)\n", gl.TotalLag, strings.Join(parts, ", "))
}
