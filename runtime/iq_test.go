package runtime_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicehq/sluice/dsl"
	"github.com/sluicehq/sluice/internal/kafkatest"
	"github.com/sluicehq/sluice/runtime"
	"github.com/sluicehq/sluice/serde"
)

// iqFixture is an application counting records per key ("counts"), run
// by several instances with HTTP servers, and the true count of each key.
type iqFixture struct {
	c     *kafkatest.Cluster
	appID string
	input string
	want  map[string]int64
	keys  []string
	opts  []runtime.Option
}

// iqInstance is one running instance.
type iqInstance struct {
	app  *runtime.App
	url  string
	done chan error
	once sync.Once
}

func newIQFixture(t *testing.T, partitions int32, keys int, opts ...runtime.Option) *iqFixture {
	t.Helper()
	c := kafkatest.New(t)
	f := &iqFixture{c: c, appID: kafkatest.Topic(t, "app"), input: kafkatest.Topic(t, "in"), want: map[string]int64{}, opts: opts}
	c.Create(t, partitions, f.input)
	rng := rand.New(rand.NewPCG(14, 14))
	var recs []*kgo.Record
	for i := range keys {
		k := fmt.Sprintf("key-%d-%d", i, rng.IntN(1_000_000))
		f.keys = append(f.keys, k)
		n := 1 + rng.IntN(4)
		f.want[k] = int64(n)
		for range n {
			recs = append(recs, &kgo.Record{Key: []byte(k), Value: []byte("v")})
		}
	}
	rng.Shuffle(len(recs), func(i, j int) { recs[i], recs[j] = recs[j], recs[i] })
	cl := c.Client(t, kgo.DefaultProduceTopic(f.input))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	return f
}

// start runs an instance, closed when the test ends.
func (f *iqFixture) start(t *testing.T) *iqInstance {
	t.Helper()
	b := dsl.NewBuilder()
	dsl.FromTopic(b, f.input, serde.String, serde.String).GroupByKey().Count(dsl.Named("counts"))
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	opts := append([]runtime.Option{runtime.ApplicationID(f.appID), runtime.Brokers(f.c.Brokers...), runtime.StateDir(t.TempDir()),
		runtime.HTTPAddr("127.0.0.1:0"), runtime.CommitInterval(100 * time.Millisecond)}, f.opts...)
	app, err := runtime.New(topo, opts...)
	if err != nil {
		t.Fatal(err)
	}
	in := &iqInstance{app: app, url: app.HTTPURL(), done: make(chan error, 1)}
	go func() { in.done <- app.Run(context.Background()) }()
	t.Cleanup(func() { in.stop(t) })
	return in
}

// stop closes the instance (once) and checks Run's error.
func (in *iqInstance) stop(t *testing.T) {
	t.Helper()
	in.once.Do(func() {
		_ = in.app.Close()
		if err := <-in.done; err != nil {
			t.Errorf("instance %s: %v", in.url, err)
		}
	})
}

// answer is one HTTP answer of a key query.
type answer struct {
	status   int
	value    int64
	servedBy string
	body     string
}

func queryKey(t *testing.T, base, store, key string) answer {
	t.Helper()
	resp, err := http.Get(base + "/stores/" + store + "/keys/" + url.PathEscape(key))
	if err != nil {
		t.Fatalf("GET %s key %s: %v", base, key, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	a := answer{status: resp.StatusCode, servedBy: resp.Header.Get("Sluice-Served-By"), body: string(b)}
	if resp.StatusCode == http.StatusOK {
		var v struct {
			Key   string `json:"key"`
			Value *int64 `json:"value"`
		}
		if err := json.Unmarshal(b, &v); err != nil || v.Value == nil || v.Key != key {
			t.Fatalf("GET %s key %s: malformed answer %s (%v)", base, key, b, err)
		}
		a.value = *v.Value
	}
	if resp.StatusCode == http.StatusServiceUnavailable && resp.Header.Get("Retry-After") == "" {
		t.Errorf("GET %s key %s: 503 without Retry-After: %s", base, key, b)
	}
	return a
}

// check queries key at base: a 200 must carry the true count; a 503 is
// allowed when retryable is set, a 404 or a lower count when early is
// (the input is not processed yet). It reports whether the answer was a
// 200 with the true count.
func (f *iqFixture) check(t *testing.T, base, key string, retryable, early bool) bool {
	t.Helper()
	a := queryKey(t, base, "counts", key)
	switch {
	case a.status == http.StatusOK && a.value == f.want[key]:
		if a.servedBy == "" {
			t.Errorf("GET %s key %s: no Sluice-Served-By header", base, key)
		}
		return true
	case early && (a.status == http.StatusNotFound || a.status == http.StatusOK && a.value < f.want[key]):
	case a.status == http.StatusOK:
		t.Errorf("GET %s key %s: WRONG VALUE %d, want %d (served by %s)", base, key, a.value, f.want[key], a.servedBy)
	case a.status == http.StatusServiceUnavailable && retryable:
	default:
		t.Errorf("GET %s key %s: %d %s", base, key, a.status, a.body)
	}
	return false
}

// waitAll waits until every key answers its true count at a random one of
// the instances (503s retried; with early, also 404s and lower counts: the
// input is not processed yet).
func (f *iqFixture) waitAll(t *testing.T, rng *rand.Rand, ins []*iqInstance, early bool) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for _, k := range f.keys {
		for !f.check(t, ins[rng.IntN(len(ins))].url, k, true, early) {
			if t.Failed() {
				t.FailNow()
			}
			if time.Now().After(deadline) {
				t.Fatalf("key %s: no answer with its count %d within 2 minutes", k, f.want[k])
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// The done-when test of interactive queries: three instances count 1000
// random keys; a query for any key at any instance returns the owner's
// value, the true count, forwarded when the key's task runs elsewhere.
// Then a fourth instance joins and one of the first leaves while queries
// go on: answers are the true count or a retryable 503, never another
// value; once the group settled every key answers again.
func TestInteractiveQueriesAcrossInstances(t *testing.T) {
	for _, g := range []runtime.Guarantee{runtime.AtLeastOnce, runtime.ExactlyOnce} {
		t.Run(g.String(), func(t *testing.T) { testInteractiveQueriesAcrossInstances(t, g) })
	}
}

func testInteractiveQueriesAcrossInstances(t *testing.T, g runtime.Guarantee) {
	f := newIQFixture(t, 6, 1000, runtime.ProcessingGuarantee(g))
	ins := []*iqInstance{f.start(t), f.start(t), f.start(t)}
	rng := rand.New(rand.NewPCG(1, 2))

	// Input processed: every key answers its count (503s while the group
	// forms and the tasks restore, 404s and lower counts while the input is
	// processed).
	f.waitAll(t, rng, ins, true)

	// Settled: every instance answers every key at once, as the owner or
	// by forwarding to it.
	forwarded := 0
	for _, k := range f.keys {
		in := ins[rng.IntN(len(ins))]
		a := queryKey(t, in.url, "counts", k)
		if a.status != http.StatusOK || a.value != f.want[k] {
			t.Fatalf("GET %s key %s: %d %s, want 200 with value %d", in.url, k, a.status, a.body, f.want[k])
		}
		if "http://"+a.servedBy != in.url {
			forwarded++
		}
	}
	if forwarded == 0 || forwarded == len(f.keys) {
		t.Errorf("%d of %d queries forwarded: want some answered locally and some forwarded", forwarded, len(f.keys))
	}

	// A rebalance: queries go on from a goroutine per live instance while
	// a fourth instance joins and the first leaves.
	var live atomic.Pointer[[]*iqInstance]
	live.Store(&ins)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var ok200, unavailable atomic.Int64
	var mu sync.Mutex
	var wrong []string
	for w := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(w), 7))
			for {
				select {
				case <-stop:
					return
				default:
				}
				cur := *live.Load()
				in := cur[r.IntN(len(cur))]
				k := f.keys[r.IntN(len(f.keys))]
				resp, err := http.Get(in.url + "/stores/counts/keys/" + url.PathEscape(k))
				if err != nil {
					continue // the instance just left
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				switch resp.StatusCode {
				case http.StatusOK:
					var v struct{ Value int64 }
					if json.Unmarshal(b, &v) != nil || v.Value != f.want[k] {
						mu.Lock()
						wrong = append(wrong, fmt.Sprintf("%s key %s: %s (want %d)", in.url, k, b, f.want[k]))
						mu.Unlock()
					}
					ok200.Add(1)
				case http.StatusServiceUnavailable:
					unavailable.Add(1)
				default:
					mu.Lock()
					wrong = append(wrong, fmt.Sprintf("%s key %s: %d %s", in.url, k, resp.StatusCode, b))
					mu.Unlock()
				}
			}
		}()
	}
	fourth := f.start(t)
	withFourth := append([]*iqInstance{fourth}, ins...)
	waitIQTasks(t, withFourth)
	leaving := ins[0]
	rest := []*iqInstance{fourth, ins[1], ins[2]}
	live.Store(&rest)
	leaving.stop(t)
	waitIQTasks(t, rest)
	close(stop)
	wg.Wait()
	for _, w := range wrong {
		t.Error(w)
	}
	t.Logf("during the rebalance: %d answers with the true count, %d retryable 503s", ok200.Load(), unavailable.Load())
	if ok200.Load() == 0 {
		t.Error("no query answered during the rebalance")
	}

	// Right after: every key answers its count again (503s while the moved
	// tasks restore; never a 404 or another count).
	f.waitAll(t, rng, rest, false)
}

// waitIQTasks waits until the instances run every one of the 6 tasks
// between them, each once, and are Running.
func waitIQTasks(t *testing.T, ins []*iqInstance) {
	t.Helper()
	waitIQTasksN(t, ins, 6)
}

// waitIQTasksN waits until the instances run the n tasks between them,
// each once, and are Running.
func waitIQTasksN(t *testing.T, ins []*iqInstance, n int) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		seen := map[string]int{}
		running := true
		for _, in := range ins {
			ids, _ := in.app.Tasks()
			for _, id := range ids {
				seen[id]++
			}
			running = running && in.app.State() == runtime.Running
		}
		all := len(seen) == n
		for _, n := range seen {
			all = all && n == 1
		}
		if all && running {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the instances do not share the %d tasks within a minute: %v", n, seen)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A standby answers with ?standby=true, naming itself and its lag; without
// it the query goes to the active.
func TestInteractiveQueriesFromStandby(t *testing.T) {
	f := newIQFixture(t, 1, 50, runtime.NumStandbyReplicas(1))
	ins := []*iqInstance{f.start(t), f.start(t)}
	rng := rand.New(rand.NewPCG(3, 4))
	f.waitAll(t, rng, ins, true)
	waitIQTasksN(t, ins, 1)
	active, standby := ins[0], ins[1]
	if ids, _ := standby.app.Tasks(); len(ids) == 1 {
		active, standby = standby, active
	}
	k := f.keys[0]
	a := queryKey(t, standby.url, "counts", k)
	if a.status != http.StatusOK || a.value != f.want[k] || a.servedBy != active.app.AdvertisedAddr() {
		t.Errorf("without standby=true: %d %s served by %s, want the active %s", a.status, a.body, a.servedBy, active.app.AdvertisedAddr())
	}
	deadline := time.Now().Add(time.Minute)
	for {
		resp, err := http.Get(standby.url + "/stores/counts/keys/" + url.PathEscape(k) + "?standby=true")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var v struct{ Value int64 }
		if resp.StatusCode == http.StatusOK && json.Unmarshal(b, &v) == nil && v.Value == f.want[k] &&
			resp.Header.Get("Sluice-Served-By") == standby.app.AdvertisedAddr() && resp.Header.Get("Sluice-Standby-Lag") == "0" {
			break
		}
		if resp.StatusCode == http.StatusOK && v.Value > f.want[k] {
			t.Fatalf("standby answered %s, more than the count %d", b, f.want[k])
		}
		if time.Now().After(deadline) {
			t.Fatalf("the standby did not answer the count %d with lag 0 within a minute: %d %s lag %q served by %q", f.want[k],
				resp.StatusCode, b, resp.Header.Get("Sluice-Standby-Lag"), resp.Header.Get("Sluice-Served-By"))
		}
		time.Sleep(50 * time.Millisecond)
	}
	md, err := runtime.QueryMetadataForKey(standby.app, "counts", k)
	if err != nil || md.Active != active.app.AdvertisedAddr() || len(md.Standbys) != 1 || md.Standbys[0] != standby.app.AdvertisedAddr() {
		t.Errorf("QueryMetadataForKey = %+v, %v; want active %s, standby %s", md, err, active.app.AdvertisedAddr(), standby.app.AdvertisedAddr())
	}
}
