package main

import (
	"context"
	"encoding/json"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/internal/kafkatest"
)

// lag's numbers are kadm's (Client.Lag), and the input's lag is the lines
// produced while the application was stopped.
func TestLag(t *testing.T) {
	c := kafkatest.New(t)
	in, out, appID := kafkatest.Topic(t, "in"), kafkatest.Topic(t, "out"), kafkatest.Topic(t, "app")
	c.Create(t, 3, in, out)
	adm := testAdmin(t, c)
	topo := wordCount(t, in, out)
	lines, want := testLines(120, 3)
	produceLines(t, c, in, lines)
	inputEnds := endOffsets(t, adm, in)
	ra := startApp(t, c, topo, appID, t.TempDir())
	newCountReader(t, c, out, nil).await(t, want)
	waitFor(t, 30*time.Second, "the input offsets to be committed", func() (bool, string) {
		got := committed(t, adm, appID)[in]
		return maps.Equal(got, inputEnds), formatOffsets(got)
	})
	ra.stopApp(t)
	const more = 37
	extra, _ := testLines(more, 4)
	produceLines(t, c, in, extra)

	stdout, _, err := runCLI(t, "lag", "-brokers", strings.Join(c.Brokers, ","), "-application-id", appID, "-json")
	if err != nil {
		t.Fatalf("lag -json: %v", err)
	}
	var got groupLag
	if err := json.Unmarshal([]byte(stdout), &got); err != nil {
		t.Fatalf("lag -json's output: %v\n%s", err, stdout)
	}
	lags, err := adm.Lag(context.Background(), appID)
	if err != nil {
		t.Fatal(err)
	}
	kl := lags[appID]
	if kl.Error() != nil {
		t.Fatal(kl.Error())
	}
	if got.State != kl.State || got.Members != 0 {
		t.Errorf("state %s with %d members, want kadm's %s with none", got.State, got.Members, kl.State)
	}
	if n := len(kl.Lag.Sorted()); len(got.Partitions) != n {
		t.Errorf("%d partitions, kadm has %d:\n%s", len(got.Partitions), n, stdout)
	}
	var inputLag int64
	for _, p := range got.Partitions {
		k, ok := kl.Lag.Lookup(p.Topic, p.Partition)
		if !ok {
			t.Errorf("topic %s partition %d: not in kadm's lag", p.Topic, p.Partition)
			continue
		}
		if p.Committed == nil || *p.Committed != k.Commit.At || p.End != k.End.Offset || p.Lag != k.Lag {
			t.Errorf("topic %s partition %d: committed %v end %d lag %d; kadm: committed %d end %d lag %d",
				p.Topic, p.Partition, p.Committed, p.End, p.Lag, k.Commit.At, k.End.Offset, k.Lag)
		}
		if p.Topic == in {
			inputLag += p.Lag
		}
	}
	if got.TotalLag != kl.Lag.Total() {
		t.Errorf("total lag %d, kadm's %d", got.TotalLag, kl.Lag.Total())
	}
	if inputLag != more {
		t.Errorf("the input's lag is %d, want the %d lines produced while the app was stopped", inputLag, more)
	}
	for _, tl := range got.Topics {
		if tl.Topic == in && tl.Lag != more {
			t.Errorf("the lag of topic %s is %d, want %d", in, tl.Lag, more)
		}
	}

	// The table says the same.
	stdout, _, err = runCLI(t, "lag", "-brokers", strings.Join(c.Brokers, ","), "-application-id", appID)
	if err != nil {
		t.Fatalf("lag: %v", err)
	}
	t.Logf("sluice lag:\n%s", stdout)
	mustContain(t, "lag's output", stdout, "Consumer group "+appID+": state Empty, 0 members", "TOPIC", "COMMITTED",
		"Total lag: ", in+" 37")

	// -topics limits the table to the input.
	stdout, _, err = runCLI(t, "lag", "-brokers", strings.Join(c.Brokers, ","), "-application-id", appID, "-topics", in, "-json")
	if err != nil {
		t.Fatalf("lag -topics: %v", err)
	}
	var only groupLag
	if err := json.Unmarshal([]byte(stdout), &only); err != nil {
		t.Fatal(err)
	}
	if len(only.Partitions) != 3 || only.TotalLag != more {
		t.Errorf("lag -topics %s: %d partitions, total %d; want 3 and %d", in, len(only.Partitions), only.TotalLag, more)
	}
}

// A group that never committed says so; one of its input's partitions
// (-topics) has no committed offset and lags by all its records, as kadm
// counts it.
func TestLagNoCommits(t *testing.T) {
	c := kafkatest.New(t)
	in := kafkatest.Topic(t, "in")
	c.Create(t, 2, in)
	lines, _ := testLines(10, 5)
	produceLines(t, c, in, lines)
	group := kafkatest.Topic(t, "app")
	stdout, _, err := runCLI(t, "lag", "-brokers", strings.Join(c.Brokers, ","), "-application-id", group)
	if err != nil {
		t.Fatalf("lag: %v", err)
	}
	mustContain(t, "lag's output", stdout, "Consumer group "+group+" has no committed offsets.")
	if strings.Contains(stdout, "TOPIC") {
		t.Errorf("lag printed a table for a group without offsets:\n%s", stdout)
	}

	stdout, _, err = runCLI(t, "lag", "-brokers", strings.Join(c.Brokers, ","), "-application-id", group, "-topics", in)
	if err != nil {
		t.Fatalf("lag -topics: %v", err)
	}
	mustContain(t, "lag -topics' output", stdout, "has no committed offsets", "Total lag: 10 ("+in+" 10)")
	if strings.Count(stdout, " - ") < 2 {
		t.Errorf("lag -topics: want a \"-\" committed offset per partition:\n%s", stdout)
	}

}
