package runtime_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicehq/sluice/dsl"
	"github.com/sluicehq/sluice/internal/kafkatest"
	"github.com/sluicehq/sluice/runtime"
	"github.com/sluicehq/sluice/serde"
	"github.com/sluicehq/sluice/topology"
	"github.com/sluicehq/sluice/window"
)

// viewsApp runs one instance counting the records of topic in per key
// ("counts"), per key and minute ("minutes") and per key and session of
// 10s inactivity ("sessions"), over records at base+offsets.
type viewsApp struct {
	app  *runtime.App
	base time.Time
	// partition is where each key's records landed.
	partition map[string]int32
}

func startViewsApp(t *testing.T) *viewsApp {
	t.Helper()
	c := kafkatest.New(t)
	in, users, countries := kafkatest.Topic(t, "in"), kafkatest.Topic(t, "users"), kafkatest.Topic(t, "countries")
	c.Create(t, 4, in, users, countries)
	base := time.Now().Truncate(time.Minute).Add(-10 * time.Minute)
	// Records: a at +0s, +5s, +70s (two minutes, two sessions); b at
	// +1s; c at +2s, +3s.
	type rec struct {
		key string
		at  time.Duration
	}
	recs := []rec{{"a", 0}, {"b", time.Second}, {"c", 2 * time.Second}, {"c", 3 * time.Second}, {"a", 5 * time.Second}, {"a", 70 * time.Second}}
	cl := c.Client(t, kgo.DefaultProduceTopic(in))
	v := &viewsApp{base: base, partition: map[string]int32{}}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, r := range recs {
		res := cl.ProduceSync(ctx, &kgo.Record{Key: []byte(r.key), Value: []byte("v"), Timestamp: base.Add(r.at)})
		if err := res.FirstErr(); err != nil {
			t.Fatal(err)
		}
		v.partition[r.key] = res[0].Record.Partition
	}
	for _, kv := range [][2]string{{"fr", "France"}, {"de", "Germany"}} {
		if err := cl.ProduceSync(ctx, &kgo.Record{Topic: countries, Key: []byte(kv[0]), Value: []byte(kv[1]), Timestamp: base}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	for i, kv := range [][2]string{{"u1", "alice"}, {"u2", "bob"}, {"u1", "alicia"}} {
		r := &kgo.Record{Topic: users, Key: []byte(kv[0]), Value: []byte(kv[1]), Timestamp: base.Add(time.Duration(i) * time.Second)}
		if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}

	b := dsl.NewBuilder()
	g := dsl.FromTopic(b, in, serde.String, serde.String).GroupByKey()
	g.Count(dsl.Named("counts"))
	dsl.WindowedBy(g, window.Tumbling(time.Minute, time.Hour)).Count(dsl.Named("minutes"))
	dsl.WindowedBySession(g, window.Session{Gap: 10 * time.Second, Grace: time.Hour}).Count(dsl.Named("sessions"))
	dsl.TableFromTopic(b, users, serde.String, serde.String, dsl.Materialized(dsl.StoreOptions{Name: "users", HistoryRetention: time.Hour}))
	dsl.GlobalTableFromTopic(b, countries, serde.String, serde.String, dsl.Materialized(dsl.StoreOptions{Name: "countries"}))
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	app, err := runtime.New(topo, runtime.ApplicationID(kafkatest.Topic(t, "app")), runtime.Brokers(c.Brokers...),
		runtime.StateDir(t.TempDir()), runtime.HTTPAddr("127.0.0.1:0"), runtime.CommitInterval(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- app.Run(context.Background()) }()
	t.Cleanup(func() {
		_ = app.Close()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	v.app = app
	// Processed: the latest record's count is there.
	kv, err := runtime.KeyValueStoreView[string, int64](app, "counts")
	if err != nil {
		t.Fatal(err)
	}
	us, err := runtime.KeyValueStoreView[string, string](app, "users")
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(time.Minute)
	for {
		if u, ok, err := us.Get("u1"); err != nil || !ok || u != "alicia" {
			if err != nil && !errors.Is(err, runtime.ErrStoreNotReady) {
				t.Fatalf("users Get(u1): %v", err)
			}
			if time.Now().After(deadline) {
				t.Fatalf("users: u1 = %q, %v, %v within a minute; want alicia", u, ok, err)
			}
			time.Sleep(20 * time.Millisecond)
			continue
		}
		n, ok, err := kv.Get("a")
		if err == nil && ok && n == 3 {
			if m, ok, err := kv.Get("c"); err == nil && ok && m == 2 {
				break
			}
		}
		if err != nil && !errors.Is(err, runtime.ErrStoreNotReady) {
			t.Fatalf("Get(a): %v", err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("counts not there within a minute: %d %v %v", n, ok, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return v
}

func TestStoreViews(t *testing.T) {
	v := startViewsApp(t)
	app := v.app

	kv, err := runtime.KeyValueStoreView[string, int64](app, "counts")
	if err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]int64{"a": 3, "b": 1, "c": 2} {
		if n, ok, err := kv.Get(k); err != nil || !ok || n != want {
			t.Errorf("Get(%s) = %d, %v, %v; want %d", k, n, ok, err, want)
		}
	}
	if n, ok, err := kv.Get("zz"); err != nil || ok {
		t.Errorf("Get(zz) = %d, %v, %v; want not found", n, ok, err)
	}
	all, err := kv.All()
	if err != nil {
		t.Fatal(err)
	}
	if got := fmtKVs(all); got != "a=3 b=1 c=2" {
		t.Errorf("All = %s", got)
	}
	rng, err := kv.Range("b", "c")
	if err != nil {
		t.Fatal(err)
	}
	if got := fmtKVs(rng); got != "b=1 c=2" {
		t.Errorf("Range(b, c) = %s, want b=1 c=2 (both ends inclusive)", got)
	}

	// Windows of a: two windows of a minute.
	ws, err := runtime.WindowStoreView[string, int64](app, "minutes")
	if err != nil {
		t.Fatal(err)
	}
	wins, err := ws.Fetch("a", v.base.Add(-time.Hour), v.base.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if len(wins) != 2 || !wins[0].Start.Equal(v.base) || !wins[0].End.Equal(v.base.Add(time.Minute)) || wins[0].Value != 2 ||
		!wins[1].Start.Equal(v.base.Add(time.Minute)) || wins[1].Value != 1 {
		t.Errorf("Fetch(a) = %+v, want [base, base+1m) = 2, [base+1m, base+2m) = 1", wins)
	}
	if wins, err := ws.Fetch("a", v.base.Add(time.Minute), v.base.Add(time.Hour)); err != nil || len(wins) != 1 {
		t.Errorf("Fetch(a) from the second window = %+v, %v; want that window alone", wins, err)
	}
	fa, err := ws.FetchAll(v.base.Add(-time.Hour), v.base.Add(time.Hour))
	if err != nil || len(fa) != 4 || fa[0].Key != "a" || fa[2].Key != "b" || fa[3].Key != "c" || fa[3].Value != 2 {
		t.Errorf("FetchAll = %+v, %v; want a, a, b, c=2", fa, err)
	}

	// Sessions of a: [0s, 5s] = 2 and [70s, 70s] = 1.
	ss, err := runtime.SessionStoreView[string, int64](app, "sessions")
	if err != nil {
		t.Fatal(err)
	}
	sess, err := ss.Fetch("a")
	if err != nil {
		t.Fatal(err)
	}
	if len(sess) != 2 || !sess[0].Start.Equal(v.base) || !sess[0].End.Equal(v.base.Add(5*time.Second)) || sess[0].Value != 2 ||
		!sess[1].Start.Equal(v.base.Add(70*time.Second)) || sess[1].Value != 1 {
		t.Errorf("sessions of a = %+v", sess)
	}

	// Key metadata: this instance, the partition the producer chose.
	for k, p := range v.partition {
		md, err := runtime.QueryMetadataForKey(app, "counts", k)
		if err != nil {
			t.Fatal(err)
		}
		if md.Active != app.AdvertisedAddr() || md.Partition != p || md.Task != fmt.Sprintf("0_%d", p) {
			t.Errorf("QueryMetadataForKey(%s) = %+v, want active %s, partition %d", k, md, app.AdvertisedAddr(), p)
		}
	}
	// A versioned store answers its latest values.
	us, err := runtime.KeyValueStoreView[string, string](app, "users")
	if err != nil {
		t.Fatal(err)
	}
	if u, ok, err := us.Get("u2"); err != nil || !ok || u != "bob" {
		t.Errorf("users Get(u2) = %q, %v, %v; want bob", u, ok, err)
	}
	// A global store: every instance holds it whole.
	cs, err := runtime.KeyValueStoreView[string, string](app, "countries")
	if err != nil {
		t.Fatal(err)
	}
	if c, ok, err := cs.Get("fr"); err != nil || !ok || c != "France" {
		t.Errorf("countries Get(fr) = %q, %v, %v; want France", c, ok, err)
	}
	if all, err := cs.All(); err != nil || len(all) != 2 || all[0].Key != "de" || all[1].Value != "France" {
		t.Errorf("countries All = %+v, %v", all, err)
	}
	if md, err := runtime.QueryMetadataForKey(app, "countries", "fr"); err != nil || md.Active != app.AdvertisedAddr() {
		t.Errorf("QueryMetadataForKey(countries, fr) = %+v, %v; want this instance", md, err)
	}
	if is := app.Instances(); len(is) != 1 || is[0].Host != app.AdvertisedAddr() || len(is[0].Tasks) != 8 ||
		strings.Join(is[0].Stores, ",") != "counts,minutes,sessions,users" {
		t.Errorf("Instances = %+v", is)
	}
}

func fmtKVs(kvs []runtime.KeyValue[string, int64]) string {
	var parts []string
	for _, kv := range kvs {
		parts = append(parts, kv.Key+"="+itoa(kv.Value))
	}
	return strings.Join(parts, " ")
}

func itoa(n int64) string { b, _ := json.Marshal(n); return string(b) }

func TestStoreViewErrors(t *testing.T) {
	v := startViewsApp(t)
	app := v.app
	_, err := runtime.KeyValueStoreView[string, int64](app, "nope")
	if !errors.Is(err, runtime.ErrUnknownStore) || !strings.Contains(err.Error(), "store nope") {
		t.Errorf("unknown store: %v", err)
	}
	_, err = runtime.KeyValueStoreView[string, string](app, "counts")
	if err == nil || !strings.Contains(err.Error(), "store counts") || !strings.Contains(err.Error(), "int64") {
		t.Errorf("wrong value type: %v", err)
	}
	_, err = runtime.KeyValueStoreView[string, int64](app, "minutes")
	if !errors.Is(err, runtime.ErrUnknownStore) || !strings.Contains(err.Error(), "store minutes: ") || !strings.Contains(err.Error(), "window store") {
		t.Errorf("a window store as a key-value store: %v", err)
	}
	_, err = runtime.QueryMetadataForKey(app, "counts", int64(3))
	if err == nil || !strings.Contains(err.Error(), "store counts") {
		t.Errorf("metadata with a key of the wrong type: %v", err)
	}
}

func getIQJSON(t *testing.T, url string, into any) (int, http.Header) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("GET %s: Content-Type %q", url, ct)
	}
	if err := json.Unmarshal(b, into); err != nil {
		t.Fatalf("GET %s: %s: %v", url, b, err)
	}
	return resp.StatusCode, resp.Header
}

func TestInteractiveQueriesHTTP(t *testing.T) {
	v := startViewsApp(t)
	base := v.app.HTTPURL()

	var stores struct {
		Stores []struct {
			Name, Kind, KeyFormat string
			WindowSizeMs          int64 `json:"window_size_ms"`
			Global                bool
		}
	}
	if code, _ := getIQJSON(t, base+"/api/stores", &stores); code != 200 || len(stores.Stores) != 5 {
		t.Fatalf("/api/stores: %d %+v", code, stores)
	}
	var kinds []string
	for _, s := range stores.Stores {
		kinds = append(kinds, s.Name+":"+s.Kind+":"+itoa(s.WindowSizeMs)+":"+fmt.Sprint(s.Global))
	}
	if got := strings.Join(kinds, " "); got != "countries:key_value:0:true counts:key_value:0:false minutes:window:60000:false sessions:session:0:false users:versioned:0:false" {
		t.Errorf("/api/stores = %s", got)
	}

	var kv struct {
		Key   string
		Value int64
	}
	code, h := getIQJSON(t, base+"/stores/counts/keys/a", &kv)
	if code != 200 || kv.Key != "a" || kv.Value != 3 || h.Get("Sluice-Served-By") != v.app.AdvertisedAddr() {
		t.Errorf("/stores/counts/keys/a: %d %+v served by %q", code, kv, h.Get("Sluice-Served-By"))
	}
	var user struct{ Key, Value string }
	if code, _ := getIQJSON(t, base+"/stores/users/keys/u1", &user); code != 200 || user.Value != "alicia" {
		t.Errorf("/stores/users/keys/u1: %d %+v, want alicia", code, user)
	}
	if code, _ := getIQJSON(t, base+"/stores/countries/keys/de", &user); code != 200 || user.Value != "Germany" {
		t.Errorf("/stores/countries/keys/de: %d %+v, want Germany", code, user)
	}
	var crng struct{ Results []struct{ Key, Value string } }
	if code, _ := getIQJSON(t, base+"/stores/countries/range?from=e", &crng); code != 200 || len(crng.Results) != 1 || crng.Results[0].Key != "fr" {
		t.Errorf("/stores/countries/range?from=e: %d %+v, want fr", code, crng)
	}
	var e struct{ Error string }
	if code, _ := getIQJSON(t, base+"/stores/counts/keys/zz", &e); code != 404 || !strings.Contains(e.Error, `store counts: key "zz" not found`) {
		t.Errorf("missing key: %d %q", code, e.Error)
	}
	if code, _ := getIQJSON(t, base+"/stores/counts/keys/x%2Fy%20z", &e); code != 404 || !strings.Contains(e.Error, `key "x/y z" not found`) {
		t.Errorf("an escaped key: %d %q", code, e.Error)
	}
	if code, _ := getIQJSON(t, base+"/stores/nope/keys/a", &e); code != 404 || !strings.Contains(e.Error, "store nope") {
		t.Errorf("unknown store: %d %q", code, e.Error)
	}

	var win struct {
		Key     string
		Results []struct{ Start, End, Value int64 }
	}
	from, to := v.base.UnixMilli(), v.base.Add(30*time.Second).UnixMilli()
	code, _ = getIQJSON(t, base+"/stores/minutes/keys/a?from="+itoa(from)+"&to="+itoa(to), &win)
	if code != 200 || win.Key != "a" || len(win.Results) != 1 || win.Results[0].Start != from || win.Results[0].End != from+60000 || win.Results[0].Value != 2 {
		t.Errorf("window query: %d %+v", code, win)
	}
	if code, _ := getIQJSON(t, base+"/stores/minutes/keys/a?from=yesterday", &e); code != 400 || !strings.Contains(e.Error, "store minutes") {
		t.Errorf("bad from: %d %q", code, e.Error)
	}
	code, _ = getIQJSON(t, base+"/stores/sessions/keys/a", &win)
	if code != 200 || len(win.Results) != 2 || win.Results[0].End != v.base.Add(5*time.Second).UnixMilli() || win.Results[1].Value != 1 {
		t.Errorf("session query: %d %+v", code, win)
	}

	var rng struct {
		Results []struct {
			Key   string
			Value int64
		}
	}
	code, _ = getIQJSON(t, base+"/stores/counts/range", &rng)
	if code != 200 || len(rng.Results) != 3 || rng.Results[0].Key != "a" || rng.Results[2].Value != 2 {
		t.Errorf("range: %d %+v", code, rng)
	}
	code, _ = getIQJSON(t, base+"/stores/counts/range?from=b&to=b", &rng)
	if code != 200 || len(rng.Results) != 1 || rng.Results[0].Key != "b" {
		t.Errorf("range b..b: %d %+v", code, rng)
	}
	if code, _ := getIQJSON(t, base+"/stores/minutes/range", &e); code != 400 || !strings.Contains(e.Error, "store minutes") {
		t.Errorf("range of a window store: %d %q", code, e.Error)
	}
}

func TestAdvertisedAddr(t *testing.T) {
	topo := wordCountTopo(t)
	if _, err := runtime.New(topo, runtime.ApplicationID("a"), runtime.Brokers("x:1"), runtime.AdvertisedAddr("no-port")); err == nil ||
		!strings.Contains(err.Error(), "AdvertisedAddr") || !strings.Contains(err.Error(), "no-port") {
		t.Errorf("New with AdvertisedAddr(no-port) = %v, want an error naming the option and the value", err)
	}
	a, err := runtime.New(topo, runtime.ApplicationID("a"), runtime.Brokers("x:1"), runtime.HTTPAddr("127.0.0.1:0"))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := a.AdvertisedAddr(), strings.TrimPrefix(a.HTTPURL(), "http://"); got != want {
		t.Errorf("AdvertisedAddr = %q, want the listener's %q", got, want)
	}
	_ = a.Close()
	b, err := runtime.New(topo, runtime.ApplicationID("a"), runtime.Brokers("x:1"), runtime.HTTPAddr("127.0.0.1:0"), runtime.AdvertisedAddr("node-1:9000"))
	if err != nil {
		t.Fatal(err)
	}
	if got := b.AdvertisedAddr(); got != "node-1:9000" {
		t.Errorf("AdvertisedAddr = %q, want node-1:9000", got)
	}
	_ = b.Close()
	if c, err := runtime.New(topo, runtime.ApplicationID("a"), runtime.Brokers("x:1")); err != nil || c.AdvertisedAddr() != "" {
		t.Errorf("without HTTPAddr: AdvertisedAddr %q, %v; want none", c.AdvertisedAddr(), err)
	}
}

func wordCountTopo(t *testing.T) *topology.Topology {
	t.Helper()
	b := dsl.NewBuilder()
	dsl.FromTopic(b, "in", serde.String, serde.String).GroupByKey().Count(dsl.Named("counts"))
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	return topo
}
