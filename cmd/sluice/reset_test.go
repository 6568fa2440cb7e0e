package main

import (
	"context"
	"errors"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicehq/sluice/dsl"
	"github.com/sluicehq/sluice/internal/kafkatest"
	"github.com/sluicehq/sluice/internal/task"
	"github.com/sluicehq/sluice/runtime"
	"github.com/sluicehq/sluice/serde"
	"github.com/sluicehq/sluice/window"
)

// The done-when: word count runs, stops, `sluice reset` (dry run
// first, which changes nothing), and a rerun on the same state directory
// processes the input again from its start and ends with the same counts.
// Under both processing guarantees: exactly-once commits its offsets in
// transactions.
func TestResetThenRerunWordCount(t *testing.T) {
	for _, g := range []struct {
		name string
		opt  runtime.Option
	}{
		{"at-least-once", runtime.ProcessingGuarantee(runtime.AtLeastOnce)},
		{"exactly-once", runtime.ProcessingGuarantee(runtime.ExactlyOnce)},
	} {
		t.Run(g.name, func(t *testing.T) { testResetThenRerun(t, g.opt) })
	}
}

func testResetThenRerun(t *testing.T, guarantee runtime.Option) {
	c := kafkatest.New(t)
	in, out, appID := kafkatest.Topic(t, "in"), kafkatest.Topic(t, "out"), kafkatest.Topic(t, "app")
	c.Create(t, 3, in, out)
	adm := testAdmin(t, c)
	topo := wordCount(t, in, out)
	lines, want := testLines(400, 1)
	produceLines(t, c, in, lines)
	inputEnds := endOffsets(t, adm, in)
	stateDir := t.TempDir()

	first := startApp(t, c, topo, appID, stateDir, guarantee)
	newCountReader(t, c, out, nil).await(t, want)
	// The counts are out; wait for the commit of the input they reflect.
	waitFor(t, 30*time.Second, "the input offsets to be committed", func() (bool, string) {
		got := committed(t, adm, appID)[in]
		return maps.Equal(got, inputEnds), "committed " + formatOffsets(got) + ", input ends " + formatOffsets(inputEnds)
	})
	first.stopApp(t)

	internal := internalTopics(topo, appID)
	if len(internal) != 2 {
		t.Fatalf("word count's internal topics: %v, want a changelog and a repartition topic", internal)
	}
	before := committed(t, adm, appID)
	args := []string{"reset", "-brokers", strings.Join(c.Brokers, ","), "-application-id", appID, "-input-topics", in}

	// A dry run prints the actions and changes nothing.
	stdout, _, err := runCLI(t, append(args, "-dry-run")...)
	if err != nil {
		t.Fatalf("reset -dry-run: %v\n%s", err, stdout)
	}
	mustContain(t, "reset -dry-run's output", stdout, "Dry run", "Partition: 0 Offset: 0", "Partition: 2 Offset: 0",
		internal[0]+": would be deleted", internal[1]+": would be deleted")
	if after := committed(t, adm, appID); !maps.EqualFunc(after, before, maps.Equal) {
		t.Errorf("reset -dry-run changed the committed offsets: %v, before %v", after, before)
	}
	for _, it := range internal {
		if !slices.Contains(topicNames(t, adm), it) {
			t.Errorf("reset -dry-run deleted %s", it)
		}
	}

	// The reset.
	stdout, _, err = runCLI(t, args...)
	if err != nil {
		t.Fatalf("reset: %v\n%s", err, stdout)
	}
	t.Logf("sluice reset:\n%s", stdout)
	mustContain(t, "reset's output", stdout, "Topic: "+in+" Partition: 1 Offset: 0",
		"Topic "+internal[0]+": deleted", "Topic "+internal[1]+": deleted", "Done.")
	if strings.Contains(stdout, "Dry run") {
		t.Errorf("reset's output says dry run:\n%s", stdout)
	}
	got := committed(t, adm, appID)[in]
	for p := range inputEnds {
		if off, ok := got[p]; !ok || off != 0 {
			t.Errorf("after reset, the committed offset of %s partition %d is %d (present %v), want 0", in, p, off, ok)
		}
	}
	topics := topicNames(t, adm)
	for _, it := range internal {
		if slices.Contains(topics, it) {
			t.Errorf("after reset, internal topic %s still exists", it)
		}
	}
	if !slices.Contains(topics, in) || !slices.Contains(topics, out) {
		t.Errorf("reset deleted an input or output topic: topics %v", topics)
	}

	// The rerun, on the same state directory: everything is counted
	// again from the start, to the same counts (not double).
	outEnds := endOffsets(t, adm, out)
	rerun := newCountReader(t, c, out, outEnds)
	second := startApp(t, c, topo, appID, stateDir, guarantee)
	rerun.await(t, want)
	second.stopApp(t)
	for _, it := range internal {
		if !slices.Contains(topicNames(t, adm), it) {
			t.Errorf("the rerun did not create %s again: %v", it, topicNames(t, adm))
		}
	}
}

func formatOffsets(m map[int32]int64) string {
	var parts []string
	for _, p := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, strconv.Itoa(int(p))+":"+strconv.FormatInt(m[p], 10))
	}
	return "[" + strings.Join(parts, " ") + "]"
}

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// sluiceBinary builds the command once per test process.
func sluiceBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "sluice-cli-test")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "sluice")
		cmd := exec.Command("go", "build", "-o", binPath, ".")
		if b, err := cmd.CombinedOutput(); err != nil {
			buildErr = errors.New(err.Error() + ": " + string(b))
		}
	})
	if buildErr != nil {
		t.Fatalf("go build: %v", buildErr)
	}
	return binPath
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binPath != "" {
		os.RemoveAll(filepath.Dir(binPath))
	}
	os.Exit(code)
}

// Reset refuses while an instance runs, naming the member, both in-process
// and as the built binary (exit status 1), and changes nothing.
func TestResetRefusedWhileRunning(t *testing.T) {
	c := kafkatest.New(t)
	in, out, appID := kafkatest.Topic(t, "in"), kafkatest.Topic(t, "out"), kafkatest.Topic(t, "app")
	c.Create(t, 2, in, out)
	adm := testAdmin(t, c)
	topo := wordCount(t, in, out)
	lines, want := testLines(50, 2)
	produceLines(t, c, in, lines)
	ra := startApp(t, c, topo, appID, t.TempDir())
	ra.awaitRunning(t)
	newCountReader(t, c, out, nil).await(t, want)
	// The App commits the input's offsets and, later, those of the
	// repartition topic it also reads: wait for both to reach their
	// ends, after which the running App changes no offset.
	consumed := []string{in}
	for _, it := range internalTopics(topo, appID) {
		if strings.HasSuffix(it, "-repartition") {
			consumed = append(consumed, it)
		}
	}
	if len(consumed) < 2 {
		t.Fatalf("word count reads no repartition topic: %v", internalTopics(topo, appID))
	}
	waitFor(t, 30*time.Second, "the offsets of the input and repartition topics to be committed at their ends", func() (bool, string) {
		got := committed(t, adm, appID)
		for _, tp := range consumed {
			if !maps.Equal(got[tp], endOffsets(t, adm, tp)) {
				return false, formatOffsets(got[tp])
			}
		}
		return true, ""
	})
	described, err := adm.DescribeGroups(context.Background(), appID)
	if err != nil {
		t.Fatal(err)
	}
	members := described[appID].Members
	if len(members) != 1 {
		t.Fatalf("group %s has %d members, want the App's one", appID, len(members))
	}
	member := members[0].MemberID
	before := committed(t, adm, appID)
	args := []string{"reset", "-brokers", strings.Join(c.Brokers, ","), "-application-id", appID, "-input-topics", in}

	_, _, err = runCLI(t, args...)
	if err == nil {
		t.Fatal("reset of a running application succeeded")
	}
	mustContain(t, "the error", err.Error(), "is still active", member, "stop every instance")
	if code := exitCode(err, &strings.Builder{}); code != 1 {
		t.Errorf("exit code %d, want 1", code)
	}

	cmd := exec.Command(sluiceBinary(t), args...)
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err = cmd.Run()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Fatalf("sluice reset exited with %v, want exit status 1; stdout:\n%s\nstderr:\n%s", err, stdout.String(), stderr.String())
	}
	mustContain(t, "sluice reset's standard error", stderr.String(), "sluice: consumer group "+appID+" is still active", member)

	if after := committed(t, adm, appID); !maps.EqualFunc(after, before, maps.Equal) {
		t.Errorf("a refused reset changed the committed offsets: %v, before %v", after, before)
	}
	for _, it := range internalTopics(topo, appID) {
		if !slices.Contains(topicNames(t, adm), it) {
			t.Errorf("a refused reset deleted %s", it)
		}
	}
	if s := ra.app.State(); s != runtime.Running {
		t.Errorf("the App is %s after the refused reset, want RUNNING", s)
	}
}

// The -to-* flags set the offsets Kafka's tool sets, clamped to each
// partition's range; missing topics are reported and exit 1.
func TestResetTargets(t *testing.T) {
	c := kafkatest.New(t)
	in := kafkatest.Topic(t, "in")
	c.Create(t, 1, in)
	adm := testAdmin(t, c)
	group := kafkatest.Topic(t, "app")
	// Ten records one minute apart, the last one a minute ago.
	now := time.Now().Truncate(time.Millisecond)
	cl := c.Client(t, kgo.DefaultProduceTopic(in))
	var rs []*kgo.Record
	for i := range 10 {
		rs = append(rs, &kgo.Record{Value: []byte(strconv.Itoa(i)), Timestamp: now.Add(time.Duration(i-10) * time.Minute)})
	}
	if err := cl.ProduceSync(context.Background(), rs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	commit := func(off int64) {
		t.Helper()
		os := kadm.Offsets{}
		os.Add(kadm.Offset{Topic: in, Partition: 0, At: off, LeaderEpoch: -1})
		if err := adm.CommitAllOffsets(context.Background(), group, os); err != nil {
			t.Fatal(err)
		}
	}
	base := []string{"reset", "-brokers", strings.Join(c.Brokers, ","), "-application-id", group, "-input-topics", in}
	for _, tc := range []struct {
		name   string
		flags  []string
		start  int64
		want   int64
		output string
	}{
		{"default is earliest", nil, 7, 0, "(-to-earliest)"},
		{"to-earliest", []string{"-to-earliest"}, 7, 0, ""},
		{"to-latest", []string{"-to-latest"}, 2, 10, ""},
		{"to-offset", []string{"-to-offset", "4"}, 7, 4, ""},
		{"to-offset past the end", []string{"-to-offset", "40"}, 7, 10, "offset 40 is past the end offset: set to 10"},
		{"shift-by back", []string{"-shift-by", "-3"}, 7, 4, ""},
		{"shift-by before the start", []string{"-shift-by", "-30"}, 7, 0, "before the start offset: set to 0"},
		{"to-datetime", []string{"-to-datetime", now.Add(-4*time.Minute - time.Second).UTC().Format(time.RFC3339Nano)}, 0, 6, ""},
		{"to-datetime without zone is UTC", []string{"-to-datetime", now.Add(-4 * time.Minute).UTC().Format("2006-01-02T15:04:05.000")}, 0, 6, ""},
		{"to-datetime after the last record", []string{"-to-datetime", now.Add(time.Hour).UTC().Format(time.RFC3339)}, 0, 10, "has no record at or after"},
		{"by-duration Go", []string{"-by-duration", "150s"}, 0, 8, ""},
		{"by-duration ISO 8601", []string{"-by-duration", "PT2M30S"}, 0, 8, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			commit(tc.start)
			stdout, _, err := runCLI(t, append(slices.Clone(base), tc.flags...)...)
			if err != nil {
				t.Fatalf("reset %v: %v\n%s", tc.flags, err, stdout)
			}
			mustContain(t, "the output", stdout, "Topic: "+in+" Partition: 0 Offset: "+strconv.FormatInt(tc.want, 10), tc.output)
			if got := committed(t, adm, group)[in][0]; got != tc.want {
				t.Errorf("committed offset %d, want %d", got, tc.want)
			}
		})
	}

	t.Run("two targets", func(t *testing.T) {
		_, _, err := runCLI(t, append(slices.Clone(base), "-to-latest", "-to-offset", "3")...)
		var ue *usageError
		if !errors.As(err, &ue) || !strings.Contains(err.Error(), "-to-latest and -to-offset cannot be combined") {
			t.Errorf("err = %v, want a usage error naming both flags", err)
		}
	})
	t.Run("missing input topic", func(t *testing.T) {
		commit(5)
		stdout, _, err := runCLI(t, "reset", "-brokers", strings.Join(c.Brokers, ","), "-application-id", group,
			"-input-topics", in+",no-such-topic")
		if err == nil || !strings.Contains(err.Error(), "no-such-topic") {
			t.Errorf("err = %v, want one naming no-such-topic", err)
		}
		mustContain(t, "the output", stdout, "Topic no-such-topic not found: skipped", "Topic: "+in+" Partition: 0 Offset: 0")
		if got := committed(t, adm, group)[in][0]; got != 0 {
			t.Errorf("the existing topic's offset is %d, want 0: a missing topic must not stop the others' reset", got)
		}
	})
}

func TestIsInternalTopic(t *testing.T) {
	for topic, want := range map[string]bool{
		"app-counts-changelog":                                             true,
		"app-counts-repartition":                                           true,
		"app-fk-subscription-registration-topic":                           true,
		"app-fk-subscription-response-topic":                               true,
		"app-KTABLE-FK-JOIN-SUBSCRIPTION-REGISTRATION-0000000006-topic":    true,
		"app-KTABLE-FK-JOIN-SUBSCRIPTION-RESPONSE-0000000014-topic":        true,
		"app-KSTREAM-AGGREGATE-STATE-STORE-0000000003-changelog":           true,
		"other-counts-changelog":                                           false,
		"app-counts":                                                       false,
		"app2-counts-changelog":                                            false,
		"app":                                                              false,
		"app-KTABLE-FK-JOIN-SUBSCRIPTION-REGISTRATION-0000000006-topic-xx": false,
	} {
		if got := isInternalTopic("app", topic); got != want {
			t.Errorf("isInternalTopic(app, %s) = %v, want %v", topic, got, want)
		}
	}
}

func TestParseDuration(t *testing.T) {
	for s, want := range map[string]time.Duration{
		"90m": 90 * time.Minute, "PT1H30M": 90 * time.Minute, "P1DT2H": 26 * time.Hour,
		"P2D": 48 * time.Hour, "PT0.5S": 500 * time.Millisecond, "pt10s": 10 * time.Second,
	} {
		if got, err := parseDuration(s); err != nil || got != want {
			t.Errorf("parseDuration(%q) = %v, %v; want %v", s, got, err, want)
		}
	}
	for _, s := range []string{"", "P", "PT", "-5m", "P1Y", "1 hour", "PT1H30"} {
		if d, err := parseDuration(s); err == nil {
			t.Errorf("parseDuration(%q) = %v, want an error", s, d)
		}
	}
}

func TestParseDateTime(t *testing.T) {
	want := time.Date(2026, 12, 7, 10, 0, 0, 500e6, time.UTC)
	for _, s := range []string{"2026-12-07T10:00:00.5Z", "2026-12-07T11:00:00.500+01:00", "2026-12-07T10:00:00.500",
		"2026-12-07T11:00:00.500+0100", "2026-12-07T11:00:00.500+01"} {
		got, err := parseDateTime(s)
		if err != nil || !got.Equal(want) {
			t.Errorf("parseDateTime(%q) = %v, %v; want %v", s, got, err, want)
		}
	}
	for _, s := range []string{"", "2026-12-07", "yesterday", "2026-12-07 10:00:00"} {
		if got, err := parseDateTime(s); err == nil {
			t.Errorf("parseDateTime(%q) = %v, want an error", s, got)
		}
	}
}

// A stopped static member stays in the group until its session times out:
// reset refuses, naming its instance ID; -force (-dry-run first, which
// removes nothing) removes it and resets.
func TestResetForceRemovesStaticMember(t *testing.T) {
	c := kafkatest.New(t)
	in, out, appID := kafkatest.Topic(t, "in"), kafkatest.Topic(t, "out"), kafkatest.Topic(t, "app")
	c.Create(t, 2, in, out)
	adm := testAdmin(t, c)
	topo := wordCount(t, in, out)
	lines, want := testLines(30, 6)
	produceLines(t, c, in, lines)
	ra := startApp(t, c, topo, appID, t.TempDir(), runtime.InstanceID("node-1"), runtime.SessionTimeout(5*time.Minute))
	newCountReader(t, c, out, nil).await(t, want)
	ra.stopApp(t)
	members := func() []kadm.DescribedGroupMember {
		d, err := adm.DescribeGroups(context.Background(), appID)
		if err != nil {
			t.Fatal(err)
		}
		return d[appID].Members
	}
	if m := members(); len(m) != 1 || m[0].InstanceID == nil || *m[0].InstanceID != "node-1" {
		t.Fatalf("the broker did not keep the stopped static member until its session timeout: %+v", m)
	}
	args := []string{"reset", "-brokers", strings.Join(c.Brokers, ","), "-application-id", appID, "-input-topics", in}
	_, _, err := runCLI(t, args...)
	if err == nil || !strings.Contains(err.Error(), "instance node-1") {
		t.Fatalf("reset with a static member left: %v, want a refusal naming instance node-1", err)
	}
	stdout, _, err := runCLI(t, append(args, "-force", "-dry-run")...)
	if err != nil {
		t.Fatalf("reset -force -dry-run: %v", err)
	}
	mustContain(t, "reset -force -dry-run's output", stdout, "would remove every member", "instance node-1")
	if len(members()) != 1 {
		t.Error("reset -force -dry-run removed the member")
	}
	stdout, _, err = runCLI(t, append(args, "-force")...)
	if err != nil {
		t.Fatalf("reset -force: %v\n%s", err, stdout)
	}
	mustContain(t, "reset -force's output", stdout, "Removing every member", "instance node-1", "Partition: 1 Offset: 0", "Done.")
	if m := members(); len(m) != 0 {
		t.Errorf("after reset -force the group has members %+v", m)
	}
}

// Every internal topic the runtime creates for a topology (named as
// runtime/topics.go names them) is one reset deletes: changelogs (key-value,
// window, suppression), repartition topics, and the foreign-key join's
// subscription and response topics, named and generated.
func TestIsInternalTopicOfTopologies(t *testing.T) {
	const appID = "shop"
	b := dsl.NewBuilder()
	orders := dsl.TableFromTopic(b, "orders", serde.String, serde.String)
	customers := dsl.TableFromTopic(b, "customers", serde.String, serde.String)
	fk := func(_, v string) dsl.Maybe[string] { return dsl.Some(v) }
	join := func(_, v, o string) string { return v + o }
	named := dsl.TableJoinForeignKey(orders, customers, fk, join, serde.String, dsl.Named("enrich"))
	generated := dsl.TableJoinForeignKey(named, customers, fk, join, serde.String)
	generated.ToStream().To("enriched", serde.String, serde.String)
	words := dsl.FromTopic(b, "lines", serde.Bytes, serde.String)
	dsl.WindowedBy(dsl.GroupByValue(words, func(w string) string { return w }, serde.String),
		window.Tumbling(time.Minute, 0)).Count(dsl.Named("per-minute")).
		Suppress(dsl.UntilWindowCloses(dsl.BufferConfig{})).ToStream()
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, it := range topo.InternalTopics() {
		name := task.TopicName(appID, it.Name)
		kinds = append(kinds, name)
		if !isInternalTopic(appID, name) {
			t.Errorf("internal topic %s (%v) is not one reset deletes", name, it.Kind)
		}
	}
	for _, want := range []string{"-subscription-registration-topic", "-subscription-response-topic", "KTABLE-FK-JOIN-SUBSCRIPTION-REGISTRATION-", "-repartition", "-changelog"} {
		if !slices.ContainsFunc(kinds, func(n string) bool { return strings.Contains(n, want) }) {
			t.Errorf("no internal topic with %q among %v: the test does not cover it", want, kinds)
		}
	}
	for _, user := range []string{"orders", "customers", "enriched", "lines"} {
		if isInternalTopic(appID, user) {
			t.Errorf("user topic %s taken for an internal one", user)
		}
	}
	t.Logf("internal topics: %v", kinds)
}
