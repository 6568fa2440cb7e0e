package runtime

import (
	"bytes"
	"cmp"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"time"

	"github.com/sluicehq/sluice/topology"
)

// Interactive queries over HTTP (docs/interactive-queries.md):
//
//	GET /api/stores                       the queryable stores
//	GET /stores/{store}/keys/{key}        a key's value (window and session
//	                                      stores: its windows, ?from=&to= ms)
//	GET /stores/{store}/range?from=&to=   the entries of a key-value store
//
// A key is written in the path as the store's key format says (string as
// is, integers in decimal, JSON text for other types), URL-escaped. A
// request for a key whose task runs elsewhere is forwarded once to the
// instance the latest assignment names; the answering instance names
// itself in Sluice-Served-By. An instance answers only from a task it runs
// and has restored: a task that moves or restores, or an owner that the
// assignment names but that does not run the task (yet), gives 503 with
// Retry-After, never another instance's stale value.

const (
	headerServedBy    = "Sluice-Served-By"
	headerStandbyLag  = "Sluice-Standby-Lag"
	headerForwardedBy = "Sluice-Forwarded-By"
)

// iqClient forwards queries to other instances.
var iqClient = &http.Client{Timeout: 10 * time.Second}

// iqRoutes registers the interactive-query endpoints.
func (a *App) iqRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /api/stores", a.handleStores)
	mux.HandleFunc("GET /stores/{store}/keys/{key}", a.handleKey)
	mux.HandleFunc("GET /stores/{store}/range", a.handleRange)
}

type storeInfo struct {
	Name         string `json:"name"`
	Kind         string `json:"kind"`
	KeyFormat    string `json:"key_format"`
	WindowSizeMs int64  `json:"window_size_ms,omitempty"`
	Global       bool   `json:"global,omitempty"`
}

// storeKindName is a kind's name in the JSON answers.
func storeKindName(k topology.StoreKind) string {
	switch k {
	case topology.KeyValue:
		return "key_value"
	case topology.Window:
		return "window"
	case topology.Session:
		return "session"
	case topology.Versioned:
		return "versioned"
	}
	return k.String()
}

// handleStores lists the stores queryable over HTTP: those of the tasks
// whose serdes the topology knows.
func (a *App) handleStores(w http.ResponseWriter, _ *http.Request) {
	out := []storeInfo{}
	for _, st := range a.topo.SubTopologies() {
		for _, s := range st.Stores {
			if s.Serdes == nil {
				continue
			}
			out = append(out, storeInfo{Name: s.Name, Kind: storeKindName(s.Kind), KeyFormat: s.Serdes.KeyFormat(), WindowSizeMs: s.WindowSize.Milliseconds()})
		}
	}
	for _, g := range a.topo.GlobalStores() {
		if s := g.Store; s.Serdes != nil {
			out = append(out, storeInfo{Name: s.Name, Kind: storeKindName(s.Kind), KeyFormat: s.Serdes.KeyFormat(), Global: true})
		}
	}
	slices.SortFunc(out, func(x, y storeInfo) int { return cmp.Compare(x.Name, y.Name) })
	iqJSON(w, http.StatusOK, map[string]any{"stores": out})
}

// httpStore resolves the path's store, answering the error itself when it
// is not queryable over HTTP.
func (a *App) httpStore(w http.ResponseWriter, name string) (storeRef, bool) {
	ref, err := a.findStore(name)
	if err != nil {
		iqError(w, http.StatusNotFound, err.Error())
		return storeRef{}, false
	}
	if ref.spec.Serdes == nil {
		iqError(w, http.StatusNotFound, fmt.Sprintf("store %s: not queryable over HTTP: its serdes are unknown (a store of the Processor API or an internal store)", name))
		return storeRef{}, false
	}
	return ref, true
}

type windowResult struct {
	Start int64 `json:"start"`
	End   int64 `json:"end"`
	Value any   `json:"value"`
}

// handleKey answers a key's value, or a window or session store's
// windows of the key.
func (a *App) handleKey(w http.ResponseWriter, r *http.Request) {
	name, keyText := r.PathValue("store"), r.PathValue("key")
	ref, ok := a.httpStore(w, name)
	if !ok {
		return
	}
	codec := ref.spec.Serdes
	kb, err := codec.ParseKey(keyText)
	if err != nil {
		iqError(w, http.StatusBadRequest, fmt.Sprintf("store %s: %v", name, err))
		return
	}
	key, err := codec.KeyJSON(kb)
	if err != nil {
		iqError(w, http.StatusBadRequest, fmt.Sprintf("store %s: key %q: %v", name, keyText, err))
		return
	}
	q := r.URL.Query()
	v := view{a: a, ref: ref, opts: queryOptions{standby: q.Get("standby") == "true"}}
	var body any
	var lag int64
	switch ref.spec.Kind {
	case topology.Window, topology.Session:
		from, to, perr := timeBounds(q)
		if perr != nil {
			iqError(w, http.StatusBadRequest, fmt.Sprintf("store %s: %v", name, perr))
			return
		}
		var raw []rawWindow
		raw, lag, err = v.fetchWindows(kb, from, to)
		if err == nil {
			results := make([]windowResult, 0, len(raw))
			for _, rw := range raw {
				val, derr := codec.ValueJSON(rw.value)
				if derr != nil {
					iqError(w, http.StatusInternalServerError, fmt.Sprintf("store %s: key %q window %d: %v", name, keyText, rw.start, derr))
					return
				}
				results = append(results, windowResult{Start: rw.start, End: rw.end, Value: val})
			}
			body = map[string]any{"key": key, "results": results}
		}
	default:
		var raw []byte
		var found bool
		raw, found, lag, err = v.getRaw(kb)
		if err == nil && !found {
			a.served(w, lag)
			iqError(w, http.StatusNotFound, fmt.Sprintf("store %s: key %q not found (instance %s)", name, keyText, a.advertised))
			return
		}
		if err == nil {
			val, derr := codec.ValueJSON(raw)
			if derr != nil {
				iqError(w, http.StatusInternalServerError, fmt.Sprintf("store %s: key %q: %v", name, keyText, derr))
				return
			}
			body = map[string]any{"key": key, "value": val}
		}
	}
	if err == nil {
		a.served(w, lag)
		iqJSON(w, http.StatusOK, body)
		return
	}
	if !errors.Is(err, ErrStoreNotLocal) {
		a.queryError(w, err)
		return
	}
	// Not here: forward once to the instance the assignment names.
	if by := r.Header.Get(headerForwardedBy); by != "" {
		// Forwarded to this instance, which does not run the task: the
		// assignment moved on (a rebalance); the sender retries.
		iqRetry(w, fmt.Sprintf("store %s: key %q: its task %s does not run on instance %s (forwarded by %s): a rebalance moves it",
			name, keyText, errTask(err), a.advertised, by))
		return
	}
	md, merr := a.keyMetadata(ref, kb)
	if merr != nil {
		a.queryError(w, merr)
		return
	}
	target := md.Active
	if target == "" && v.opts.standby && len(md.Standbys) > 0 {
		target = md.Standbys[0]
	}
	if target == "" || target == a.advertised {
		iqRetry(w, fmt.Sprintf("store %s: key %q: task %s has no running owner yet (instance %s): a rebalance moves it", name, keyText, md.Task, a.advertised))
		return
	}
	a.forward(w, r, target)
}

// errTask is the task a StoreQueryError names.
func errTask(err error) string {
	if qe, ok := errors.AsType[*StoreQueryError](err); ok {
		return qe.Task
	}
	return ""
}

// timeBounds reads ?from=&to= (epoch ms, both optional).
func timeBounds(q url.Values) (from, to int64, err error) {
	from, to = 0, math.MaxInt64
	if s := q.Get("from"); s != "" {
		if from, err = strconv.ParseInt(s, 10, 64); err != nil {
			return 0, 0, fmt.Errorf("from=%q is not epoch milliseconds", s)
		}
	}
	if s := q.Get("to"); s != "" {
		if to, err = strconv.ParseInt(s, 10, 64); err != nil {
			return 0, 0, fmt.Errorf("to=%q is not epoch milliseconds", s)
		}
	}
	return from, to, nil
}

// forward relays the request to target and its answer back.
func (a *App) forward(w http.ResponseWriter, r *http.Request, target string) {
	u := url.URL{Scheme: "http", Host: target, Path: r.URL.Path, RawPath: r.URL.RawPath, RawQuery: r.URL.RawQuery}
	req, err := http.NewRequestWithContext(r.Context(), http.MethodGet, u.String(), nil)
	if err != nil {
		iqError(w, http.StatusInternalServerError, fmt.Sprintf("forward to instance %s: %v", target, err))
		return
	}
	req.Header.Set(headerForwardedBy, a.advertised)
	resp, err := iqClient.Do(req)
	if err != nil {
		iqRetry(w, fmt.Sprintf("forward to instance %s: %v", target, err))
		return
	}
	defer resp.Body.Close()
	for _, h := range []string{"Content-Type", headerServedBy, headerStandbyLag, "Retry-After"} {
		if v := resp.Header.Get(h); v != "" {
			w.Header().Set(h, v)
		}
	}
	w.WriteHeader(resp.StatusCode)
	if _, err := io.Copy(w, resp.Body); err != nil {
		a.log.Debug("forwarded query: copying the answer", "instance", target, "err", err)
	}
}

// served sets the headers of an answer this instance serves.
func (a *App) served(w http.ResponseWriter, lag int64) {
	if a.advertised != "" {
		w.Header().Set(headerServedBy, a.advertised)
	}
	if lag >= 0 {
		w.Header().Set(headerStandbyLag, strconv.FormatInt(lag, 10))
	}
}

// queryError answers a view's error.
func (a *App) queryError(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, ErrUnknownStore):
		iqError(w, http.StatusNotFound, err.Error())
	case errors.Is(err, ErrStoreNotReady), errors.Is(err, ErrStoreNotLocal):
		iqRetry(w, fmt.Sprintf("%v (instance %s)", err, a.advertised))
	default:
		iqError(w, http.StatusInternalServerError, fmt.Sprintf("%v (instance %s)", err, a.advertised))
	}
}

type rangeResult struct {
	Key    any    `json:"key"`
	Value  any    `json:"value"`
	RawKey string `json:"raw_key,omitempty"` // hex, between instances
}

type rangeAnswer struct {
	Results []rangeResult `json:"results"`
	// Tasks are the tasks an instance read, between instances.
	Tasks []string `json:"tasks,omitempty"`
}

// handleRange answers the entries of a key-value store with from <= key
// <= to (each optional), from every instance: each other instance is asked
// for its tasks' entries once; unless every task of the store answered,
// the answer is 503.
func (a *App) handleRange(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("store")
	ref, ok := a.httpStore(w, name)
	if !ok {
		return
	}
	if ref.spec.Kind != topology.KeyValue && ref.spec.Kind != topology.Versioned {
		iqError(w, http.StatusBadRequest, fmt.Sprintf("store %s: a range needs a key-value store, not a %s store: GET /stores/%s/keys/{key}?from=&to=",
			name, ref.spec.Kind, name))
		return
	}
	codec := ref.spec.Serdes
	q := r.URL.Query()
	var from, to []byte
	var err error
	if s := q.Get("from"); s != "" {
		if from, err = codec.ParseKey(s); err != nil {
			iqError(w, http.StatusBadRequest, fmt.Sprintf("store %s: from: %v", name, err))
			return
		}
	}
	if s := q.Get("to"); s != "" {
		if to, err = codec.ParseKey(s); err != nil {
			iqError(w, http.StatusBadRequest, fmt.Sprintf("store %s: to: %v", name, err))
			return
		}
		to = append(to, 0) // inclusive
	}
	if ref.spec.Kind == topology.Versioned {
		iqError(w, http.StatusBadRequest, fmt.Sprintf("store %s: a versioned store has no range query (Kafka Streams neither)", name))
		return
	}
	v := view{a: a, ref: ref}
	raw, ids, err := v.rangeRaw(from, to)
	if err != nil {
		a.queryError(w, err)
		return
	}
	ans := rangeAnswer{Results: make([]rangeResult, 0, len(raw))}
	for _, e := range raw {
		k, kerr := codec.KeyJSON(e.key)
		val, verr := codec.ValueJSON(e.value)
		if err := errors.Join(kerr, verr); err != nil {
			iqError(w, http.StatusInternalServerError, fmt.Sprintf("store %s: key %x: %v", name, e.key, err))
			return
		}
		ans.Results = append(ans.Results, rangeResult{Key: k, Value: val, RawKey: hex.EncodeToString(e.key)})
	}
	for _, id := range ids {
		ans.Tasks = append(ans.Tasks, id.String())
	}
	if r.Header.Get(headerForwardedBy) != "" || ref.global {
		a.served(w, -1)
		if ref.global {
			for i := range ans.Results {
				ans.Results[i].RawKey = ""
			}
			ans.Tasks = nil
		}
		iqJSON(w, http.StatusOK, ans)
		return
	}
	// Gather the other instances' entries.
	covered := map[string]bool{}
	for _, t := range ans.Tasks {
		covered[t] = true
	}
	for _, h := range a.hostTasks() {
		if h.host == a.advertised || !slices.ContainsFunc(h.active, func(t taskID) bool { return t.sub == ref.sub }) {
			continue
		}
		other, err := a.rangeFrom(r, h.host)
		if err != nil {
			iqRetry(w, fmt.Sprintf("store %s: range: instance %s: %v", name, h.host, err))
			return
		}
		for _, t := range other.Tasks {
			if covered[t] {
				// Two instances answered for one task: it is moving, and
				// one copy may be behind the other (a key deleted in one
				// would come back from the other): retry.
				iqRetry(w, fmt.Sprintf("store %s: range: task %s answered by two instances (moving)", name, t))
				return
			}
			covered[t] = true
		}
		ans.Results = append(ans.Results, other.Results...)
	}
	n, err := a.subTasks(ref)
	if err != nil {
		a.queryError(w, err)
		return
	}
	var missing []string
	for p := range n {
		if t := (taskID{ref.sub, p}).String(); !covered[t] {
			missing = append(missing, t)
		}
	}
	if len(missing) > 0 || n == 0 {
		iqRetry(w, fmt.Sprintf("store %s: range: tasks %v answered by no instance (restoring or moving)", name, missing))
		return
	}
	slices.SortStableFunc(ans.Results, func(x, y rangeResult) int { return cmp.Compare(x.RawKey, y.RawKey) })
	ans.Results = slices.CompactFunc(ans.Results, func(x, y rangeResult) bool { return x.RawKey == y.RawKey })
	for i := range ans.Results {
		ans.Results[i].RawKey = ""
	}
	ans.Tasks = nil
	a.served(w, -1)
	iqJSON(w, http.StatusOK, ans)
}

// rangeFrom asks instance host for its tasks' entries of the range.
func (a *App) rangeFrom(r *http.Request, host string) (rangeAnswer, error) {
	u := url.URL{Scheme: "http", Host: host, Path: r.URL.Path, RawPath: r.URL.RawPath, RawQuery: r.URL.RawQuery}
	req, err := http.NewRequestWithContext(r.Context(), http.MethodGet, u.String(), nil)
	if err != nil {
		return rangeAnswer{}, err
	}
	req.Header.Set(headerForwardedBy, a.advertised)
	resp, err := iqClient.Do(req)
	if err != nil {
		return rangeAnswer{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return rangeAnswer{}, err
	}
	if resp.StatusCode != http.StatusOK {
		return rangeAnswer{}, fmt.Errorf("%s: %s", resp.Status, bytes.TrimSpace(b))
	}
	var ans rangeAnswer
	if err := json.Unmarshal(b, &ans); err != nil {
		return rangeAnswer{}, fmt.Errorf("malformed answer: %w", err)
	}
	return ans, nil
}

func iqJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b, _ = json.Marshal(map[string]string{"error": fmt.Sprintf("encode the answer as JSON: %v", err)})
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}

func iqError(w http.ResponseWriter, status int, msg string) {
	iqJSON(w, status, map[string]string{"error": msg})
}

// iqRetry answers 503 with Retry-After: the store cannot answer now.
func iqRetry(w http.ResponseWriter, msg string) {
	w.Header().Set("Retry-After", "1")
	iqError(w, http.StatusServiceUnavailable, msg)
}
