package dsl_test

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/dsl"
	"github.com/sluicehq/sluice/operators"
	"github.com/sluicehq/sluice/serde"
	"github.com/sluicehq/sluice/testdriver"
	"github.com/sluicehq/sluice/window"
)

// history forwards, for each query "<key>" at t, the user's country at t
// and now, read from the versioned users table.
type history struct {
	users dsl.Table[string, string]
	ctx   operators.ProcessorContext[string, string]
	store *dsl.VersionedTableStore[string, string]
}

func (p *history) Init(ctx operators.ProcessorContext[string, string]) (err error) {
	p.ctx = ctx
	p.store, err = dsl.OpenVersionedTableStore(ctx, p.users)
	return err
}

func (p *history) Process(r operators.Record[string, string]) error {
	then, from, to, ok, err := p.store.GetAsOf(r.Key, r.Timestamp)
	if err != nil {
		return err
	}
	if !ok {
		then = "?"
	}
	until := fmt.Sprint(to)
	if to == math.MaxInt64 {
		until = "now"
	}
	now, ts, ok, err := p.store.Get(r.Key)
	if err != nil {
		return err
	}
	if !ok {
		now = "?"
	}
	r.Value = fmt.Sprintf("%s[%d,%s) now %s@%d", then, from, until, now, ts)
	return p.ctx.Forward(r)
}

func (p *history) Close() error { return nil }

// A processor connected to a versioned table reads it as of a time with
// OpenVersionedTableStore.
func TestOpenVersionedTableStore(t *testing.T) {
	b := dsl.NewBuilder()
	users := dsl.TableFromTopic(b, "users", serde.String, serde.String,
		dsl.Materialized(dsl.StoreOptions{Name: "users", HistoryRetention: time.Minute}))
	queries := dsl.FromTopic(b, "queries", serde.String, serde.String)
	dsl.Process(queries, func() operators.Processor[string, string, string, string] { return &history{users: users} },
		dsl.ConnectStores(users)).To("out", serde.String, serde.String)
	d, _ := opsDriver(t, b)
	uin := testdriver.CreateInputTopic(d, "users", serde.String, serde.String)
	qin := testdriver.CreateInputTopic(d, "queries", serde.String, serde.String)
	out := testdriver.CreateOutputTopic(d, "out", serde.String, serde.String)
	opsOK(t, uin.PipeAt("alice", "NL", 10))
	opsOK(t, uin.PipeAt("alice", "FR", 20))
	opsOK(t, uin.PipeTombstone("alice", 30))
	for _, ts := range []int64{5, 10, 25, 35} {
		opsOK(t, qin.PipeAt("alice", "q", ts))
	}
	opsWant(t, "answers", opsRead(t, out), []string{
		"alice=?[0,0) now ?@0@5", "alice=NL[10,20) now ?@0@10", "alice=FR[20,30) now ?@0@25", "alice=?[0,0) now ?@0@35"})
}

// OpenVersionedTableStore on a table that is not kept in a versioned
// store, and OpenTableStore on one that is, fail naming the store.
func TestOpenVersionedTableStoreErrors(t *testing.T) {
	for _, tc := range []struct {
		name      string
		versioned bool
		want      string
	}{
		{"plain table, versioned view", false, "not a versioned key-value store"},
		{"versioned table, plain view", true, "open it with dsl.OpenVersionedTableStore"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := dsl.NewBuilder()
			users := dsl.TableFromTopic(b, "users", serde.String, serde.String,
				dsl.Materialized(dsl.StoreOptions{Name: "users", HistoryRetention: map[bool]time.Duration{true: time.Minute}[tc.versioned]}))
			queries := dsl.FromTopic(b, "queries", serde.String, serde.String)
			mk := func() operators.Processor[string, string, string, string] { return &history{users: users} }
			if tc.versioned {
				mk = func() operators.Processor[string, string, string, string] { return &enrich{users: users} }
			}
			dsl.Process(queries, mk, dsl.ConnectStores(users)).To("out", serde.String, serde.String)
			topo, err := b.Build()
			opsOK(t, err)
			_, err = testdriver.New(topo)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "users") {
				t.Errorf("testdriver.New = %v, want an error naming the store users and saying %q", err, tc.want)
			}
		})
	}
}

// The versioned store and the join buffer log to their changelogs in the
// test driver too (WithChangelogs), as in the runtime.
func TestVersionedChangelogsInDriver(t *testing.T) {
	b := dsl.NewBuilder()
	users := dsl.TableFromTopic(b, "users", serde.String, serde.String,
		dsl.Materialized(dsl.StoreOptions{Name: "users", HistoryRetention: time.Minute}))
	dsl.JoinTable(dsl.FromTopic(b, "clicks", serde.String, serde.String), users, func(_, c, u string) string { return c + "@" + u },
		dsl.JoinGrace(time.Second), dsl.Named("enrich")).To("out", serde.String, serde.String)
	d, _ := opsDriver(t, b, testdriver.WithChangelogs())
	uin := testdriver.CreateInputTopic(d, "users", serde.String, serde.String)
	cin := testdriver.CreateInputTopic(d, "clicks", serde.String, serde.String)
	opsOK(t, uin.PipeAt("alice", "NL", 2000))
	opsOK(t, uin.PipeAt("alice", "FR", 1000))
	opsOK(t, cin.PipeAt("alice", "/home", 1500))
	opsOK(t, cin.PipeAt("alice", "/cart", 3000))
	if got := d.ChangelogTopic("users"); got != "app-users-changelog" && !strings.HasSuffix(got, "-users-changelog") {
		t.Errorf("ChangelogTopic(users) = %q", got)
	}
	versions, err := testdriver.CreateOutputTopic(d, d.ChangelogTopic("users"), serde.String, serde.String).ReadRecords()
	opsOK(t, err)
	var vs []string
	for _, r := range versions {
		vs = append(vs, fmt.Sprintf("%s=%s@%d", r.Key, r.Value, r.Timestamp))
	}
	opsWant(t, "users changelog", vs, []string{"alice=NL@2000", "alice=FR@1000"})
	buffer := testdriver.CreateOutputTopic(d, d.ChangelogTopic("enrich-Buffer"), serde.Bytes, serde.Bytes)
	rs, err := buffer.ReadRecords()
	opsOK(t, err)
	var got []string
	for _, r := range rs {
		got = append(got, fmt.Sprintf("tombstone=%v@%d", r.Tombstone, r.Timestamp))
	}
	// /home buffered, /cart buffered, /home released by /cart.
	if !slices.Equal(got, []string{"tombstone=false@1500", "tombstone=false@3000", "tombstone=true@3000"}) {
		t.Errorf("buffer changelog: %v", got)
	}
}

// A history retention where no versioned store can be is a Build error
// naming the option, the operation and the store.
func TestHistoryRetentionBuildErrors(t *testing.T) {
	for _, tc := range []struct {
		name  string
		build func(b *dsl.Builder)
		want  string
	}{
		{"windowed aggregation", func(b *dsl.Builder) {
			dsl.WindowedBy(dsl.FromTopic(b, "in", serde.String, serde.String).GroupByKey(), window.Tumbling(time.Minute, 0)).
				Count(dsl.Materialized(dsl.StoreOptions{Name: "w", HistoryRetention: time.Minute}))
		}, "store w: option Materialized(StoreOptions{HistoryRetention: 1m0s}) does not apply to a windowed aggregation"},
		{"AddKeyValueStore", func(b *dsl.Builder) {
			dsl.AddKeyValueStore(b, dsl.StoreOptions{Name: "kv", HistoryRetention: time.Minute}, serde.String, serde.String)
		}, "store kv: StoreOptions{HistoryRetention: 1m0s} does not apply to AddKeyValueStore"},
		{"negative", func(b *dsl.Builder) {
			dsl.TableFromTopic(b, "t", serde.String, serde.String, dsl.Materialized(dsl.StoreOptions{Name: "t", HistoryRetention: -time.Second}))
		}, "store t: option Materialized(StoreOptions{HistoryRetention: -1s}) of TableFromTopic: the history retention is negative"},
		{"sub-millisecond", func(b *dsl.Builder) {
			dsl.TableFromTopic(b, "t", serde.String, serde.String, dsl.Materialized(dsl.StoreOptions{Name: "t", HistoryRetention: time.Microsecond}))
		}, "must be whole milliseconds"},
		{"negative grace", func(b *dsl.Builder) {
			tb := dsl.TableFromTopic(b, "t", serde.String, serde.String, dsl.Materialized(dsl.StoreOptions{Name: "t", HistoryRetention: time.Minute}))
			dsl.JoinTable(dsl.FromTopic(b, "s", serde.String, serde.String), tb, func(_, v, t string) string { return v + t },
				dsl.JoinGrace(-time.Second), dsl.Named("j")).To("out", nil, nil)
		}, "node j: JoinGrace(-1s) is negative"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := dsl.NewBuilder()
			tc.build(b)
			_, err := b.Build()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Build = %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

// A left join with grace joins a null-key stream record at once, with an
// absent table value, as without grace: it has no key to wait under
// (Kafka Streams 4.3.1 fails on it in its buffer).
func TestLeftJoinGraceNullKey(t *testing.T) {
	b := dsl.NewBuilder()
	tb := dsl.TableFromTopic(b, "users", serde.String, serde.String,
		dsl.Materialized(dsl.StoreOptions{Name: "users", HistoryRetention: time.Minute}))
	dsl.LeftJoinTable(dsl.FromTopic(b, "clicks", serde.String, serde.String), tb,
		func(k dsl.Maybe[string], v string, u dsl.Maybe[string]) string {
			return k.Or("<none>") + ":" + v + "+" + u.Or("null")
		},
		dsl.JoinGrace(10*time.Millisecond)).To("out", serde.String, serde.String)
	d, _ := opsDriver(t, b)
	uin := testdriver.CreateInputTopic(d, "users", serde.String, serde.String)
	cin := testdriver.CreateInputTopic(d, "clicks", serde.String, serde.String)
	out := testdriver.CreateOutputTopic(d, "out", serde.String, serde.String)
	opsOK(t, uin.PipeAt("a", "NL", 0))
	opsOK(t, cin.PipeAt("a", "x", 5))
	opsWant(t, "buffered", opsRead(t, out), nil)
	opsOK(t, cin.PipeRecord(operators.Record[string, string]{NullKey: true, Value: "y", Timestamp: 6}))
	opsWant(t, "null key", opsRead(t, out), []string{"<null>=<none>:y+null@6"})
	opsOK(t, cin.PipeAt("a", "z", 15))
	opsWant(t, "released", opsRead(t, out), []string{"a=a:x+NL@5"})
}

// The records a grace join releases keep their own headers through a
// record cache downstream (review F5): a count below the join forwards, at
// commit, each key's count with the headers of the click that last
// updated it.
func TestGraceJoinReleasedHeadersThroughCache(t *testing.T) {
	b := dsl.NewBuilder()
	users := dsl.TableFromTopic(b, "users", serde.String, serde.String,
		dsl.Materialized(dsl.StoreOptions{Name: "users", HistoryRetention: time.Minute}))
	clicks := dsl.FromTopic(b, "clicks", serde.String, serde.String)
	j := dsl.JoinTable(clicks, users, func(_, c, u string) string { return c + "@" + u }, dsl.JoinGrace(10*time.Millisecond), dsl.Named("enrich"))
	j.GroupByKey().Count().ToStream().To("out", serde.String, serde.Int64)
	d, _ := opsDriver(t, b, testdriver.WithRecordCache(1<<20), testdriver.CommitOnRequest())
	uin := testdriver.CreateInputTopic(d, "users", serde.String, serde.String)
	cin := testdriver.CreateInputTopic(d, "clicks", serde.String, serde.String)
	out := testdriver.CreateOutputTopic(d, "out", serde.String, serde.Int64)
	opsOK(t, uin.PipeAt("a", "A", 0))
	opsOK(t, uin.PipeAt("b", "B", 0))
	opsOK(t, cin.PipeRecord(operators.Record[string, string]{Key: "a", Value: "c1", Timestamp: 100, Headers: hdr("h", "AAAA")}))
	opsOK(t, cin.PipeRecord(operators.Record[string, string]{Key: "b", Value: "c2", Timestamp: 200, Headers: hdr("h", "BBBB")}))
	opsOK(t, cin.PipeRecord(operators.Record[string, string]{Key: "z", Value: "c3", Timestamp: 300, Headers: hdr("h", "ZZZZ")}))
	opsOK(t, d.Commit())
	got := opsRead(t, out)
	slices.Sort(got)
	opsWant(t, "counts", got, []string{"a=1@100 h:AAAA", "b=1@200 h:BBBB"})
}
