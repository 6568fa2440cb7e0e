package main

// The clickstream topology in runtime.Apps on a broker (kfake, or real
// Kafka with KAFKA_BROKERS): two instances over four partitions write
// exactly the oracle's records; so does a pair of which one is killed with
// kill -9 in the middle and restarted on its state directory, except that
// at-least-once may repeat results, identical; and a global table is
// complete before the first click is joined with it.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sluicehq/sluice/examples/internal/demo"
	"github.com/sluicehq/sluice/runtime"
)

// recentWindows returns the start of the first of n one-minute windows
// that end at the latest minute before now: event times close to the wall
// clock, as a live topic has (changelog retention and the brokers'
// timestamp checks are about the wall clock).
func recentWindows(n int) int64 {
	sz := regionWindow.Milliseconds()
	return time.Now().UnixMilli()/sz*sz - int64(n)*sz
}

// Two instances over four partitions (so each runs some of the tasks of
// the joins, the global table whole, and some of the region counts behind
// the repartition topic) write exactly the records the oracle computes
// from the input: every enriched click, every closed window with its
// count, every purchase-click pair, once each, and nothing else.
func TestTwoInstancesWriteTheOracle(t *testing.T) {
	c := newCluster(t)
	topics := c.testTopics(t, 4)
	g := generate(4000, 4, recentWindows(4), 3)
	c.produceTables(t, topics, g)
	appID := fmt.Sprintf("clickstream-two-%d", time.Now().UnixNano())
	a := start(t, topics, instanceOptions(appID, c.Brokers, t.TempDir())...)
	b := start(t, topics, instanceOptions(appID, c.Brokers, t.TempDir())...)
	c.feed(t, appID, topics, g, nil)
	c.await(t, topics, time.Minute, g.covers)
	a.shutdown(t)
	b.shutdown(t)
	got := c.readAll(t, topics)
	if err := g.check(got, false); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d enriched clicks, %d windows, %d attributed purchases", len(got.enriched), len(got.regions), len(got.attributed))
}

// runChild runs a clickstream App until killed, configured by the
// environment.
func runChild() error {
	var topics Topics
	if err := json.Unmarshal([]byte(os.Getenv("TOPICS")), &topics); err != nil {
		return err
	}
	topo, err := Topology(topics)
	if err != nil {
		return err
	}
	app, err := runtime.New(topo, instanceOptions(os.Getenv("APP_ID"), strings.Split(os.Getenv("BROKERS"), ","), os.Getenv("STATE_DIR"))...)
	if err != nil {
		return err
	}
	return app.Run(context.Background())
}

// kill -9 of one of two instances (a child process) in the middle of the
// input, then a restart on its state directory: no result of the joins is
// missing or different, and none appears that the oracle does not have;
// a result may repeat (it was written, the commit that covers it had
// not happened), identical. Every window of region-clicks is written with
// its timestamp, and each time with the same count, the direct count or
// more: the clicks the killed instance repartitioned before the crash and
// again after are counted twice (at-least-once).
func TestKill9AndRestartLosesNoResult(t *testing.T) {
	c := newCluster(t)
	topics := c.testTopics(t, 4)
	g := generate(12000, 6, recentWindows(6), 5)
	c.produceTables(t, topics, g)
	appID := fmt.Sprintf("clickstream-kill-%d", time.Now().UnixNano())
	dir := t.TempDir()
	names, err := json.Marshal(topics)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "CLICKSTREAM_TEST_CHILD=1", "TOPICS="+string(names),
		"APP_ID="+appID, "BROKERS="+strings.Join(c.Brokers, ","), "STATE_DIR="+dir)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	start(t, topics, instanceOptions(appID, c.Brokers, t.TempDir())...)

	// Kill the child right after a round in the middle of the input is
	// produced, while the instances process it: the kill lands wherever
	// the child is then.
	killRound := len(g.rounds) / 3
	var restarted *instance
	c.feed(t, appID, topics, g, func(round int) error {
		if round != killRound {
			return nil
		}
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			return err
		}
		err := cmd.Wait()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
			return fmt.Errorf("the child ended with %v before it was killed", err)
		}
		restarted = start(t, topics, instanceOptions(appID, c.Brokers, dir)...)
		return nil
	})
	if restarted == nil {
		t.Fatalf("the input has %d rounds: no kill after round %d", len(g.rounds), killRound)
	}
	c.await(t, topics, time.Minute, g.covers)
	got := c.readAll(t, topics)
	if err := g.check(got, true); err != nil {
		t.Fatal(err)
	}
	t.Logf("killed after round %d of %d; %d/%d enriched clicks, %d/%d windows, %d/%d attributed purchases written (oracle/read)",
		killRound+1, len(g.rounds), sum(g.want.enriched), len(got.enriched), len(g.want.windows), len(got.regions),
		sum(g.want.attributed), len(got.attributed))
}

func sum(m map[outKey]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

// The pages global table is complete before the first click is joined
// with it. An application first loads the users and stops; then the pages
// topic gets a first, wrong category of every page, then many other
// pages (30,000 of ~300 bytes: enough that a runtime that did not wait for
// the global table, reading it while processing, was seen to join most
// clicks with a wrong category or none), then the right categories, and
// all the clicks are written at once; then two instances start. Every click of a known page must come
// out of clicks-enriched with the right category: a click joined while the
// table was still loading would meet the wrong one, or none. (Only
// clicks-enriched is checked: with the input written at once, the windows
// of region-clicks depend on how the tasks interleave, see generate.go.)
func TestGlobalTableCompleteBeforeFirstJoin(t *testing.T) {
	c := newCluster(t)
	topics := c.testTopics(t, 4)
	g := generate(2000, 2, recentWindows(2), 9)
	final := g.pages
	g.pages = nil
	appID := fmt.Sprintf("clickstream-global-%d", time.Now().UnixNano())
	dir := t.TempDir()
	c.produceTables(t, topics, g)
	loader := start(t, topics, instanceOptions(appID, c.Brokers, dir)...)
	c.feed(t, appID, topics, &generation{users: g.users}, nil) // the users only
	loader.shutdown(t)

	for _, p := range final {
		g.pages = append(g.pages, Page{Page: p.Page, Category: "not-yet-" + p.Category})
	}
	for i := range 30000 {
		g.pages = append(g.pages, Page{Page: fmt.Sprintf("/archive/%d", i), Category: strings.Repeat("archive", 40)})
	}
	g.pages = append(g.pages, final...)
	g.compute()
	recs := pageRecords(topics, g.pages)
	for _, r := range g.rounds {
		recs = append(recs, r.kafkaRecords(topics)...)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := demo.Produce(ctx, c.Brokers, recs); err != nil {
		t.Fatal(err)
	}

	start(t, topics, instanceOptions(appID, c.Brokers, dir)...)
	start(t, topics, instanceOptions(appID, c.Brokers, t.TempDir())...)
	// Restoring the pages takes a while under the race detector.
	c.await(t, topics, 3*time.Minute, func(o *outputs) bool { return len(o.enriched) >= sum(g.want.enriched) })
	got := c.readAll(t, topics)
	if err := checkSet[EnrichedClick]("clicks-enriched", g.want.enriched, got.enriched, false); err != nil {
		t.Fatal(err)
	}
}
