package runtime

import (
	"encoding/json"
	"net/http"
	"strings"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/sluicehq/sluice/topology"
)

// The operations endpoints of the HTTP server (HTTPAddr):
//
//	GET /metrics     the App's registry in Prometheus' text format (registry.go)
//	GET /healthz     liveness: 200 unless the App failed or stopped
//	GET /readyz      readiness: 200 once Running with no active task restoring
//	GET /topology    the topology: text as Describe; ?format=json|mermaid|dot
//	GET /api/state   the application ID, State, instance and URL
//
// None takes the App's lock: they read atomics only, so they answer at once
// while the poll loop commits or a rebalance runs.

// opsRoutes registers the operations endpoints.
func (a *App) opsRoutes(mux *http.ServeMux) {
	mux.Handle("GET /metrics", promhttp.HandlerFor(a.gatherer, promhttp.HandlerOpts{
		// A collector that fails (a process collector on an unusual
		// system) costs its own metrics, not the scrape.
		ErrorHandling: promhttp.ContinueOnError,
	}))
	mux.HandleFunc("GET /healthz", a.serveHealthz)
	mux.HandleFunc("GET /readyz", a.serveReadyz)
	mux.HandleFunc("GET /topology", a.serveTopology)
	mux.HandleFunc("GET /api/state", a.serveState)
}

// serveHealthz answers 200 {"state":...} while the App is alive: Created,
// Rebalancing, Running, or shutting down as asked (PendingShutdown); 503
// once it failed (PendingError, Error) or stopped (NotRunning).
func (a *App) serveHealthz(w http.ResponseWriter, _ *http.Request) {
	s := a.State()
	status := http.StatusOK
	if s == PendingError || s == Error || s == NotRunning {
		status = http.StatusServiceUnavailable
	}
	writeOpsJSON(w, status, struct {
		State string `json:"state"`
	}{s.String()})
}

// readyzBody is the answer of /readyz.
type readyzBody struct {
	State string `json:"state"`
	Ready bool   `json:"ready"`
	// Reason says why not ready; RestoringTasks are the active tasks
	// restoring (at the last poll round).
	Reason         string   `json:"reason,omitempty"`
	RestoringTasks []string `json:"restoring_tasks,omitempty"`
}

// serveReadyz answers 200 once the App is Running, which it is only when
// in the group with none of its active tasks restoring (updateStateLocked),
// and 503 naming the reason otherwise: the state, and the tasks restoring.
func (a *App) serveReadyz(w http.ResponseWriter, _ *http.Request) {
	s := a.State()
	var restoring []string
	if p := a.restoringTasks.Load(); p != nil {
		restoring = *p
	}
	body := readyzBody{State: s.String()}
	switch {
	case s == Running && len(restoring) == 0:
		body.Ready = true
		writeOpsJSON(w, http.StatusOK, body)
		return
	case s == Running || s == Rebalancing:
		body.Reason = "state " + s.String() + ": joining the group or rebalancing"
		if len(restoring) > 0 {
			body.Reason = "state " + s.String() + ": tasks restoring their state stores: " + strings.Join(restoring, ", ")
			body.RestoringTasks = restoring
		}
	case s == Created:
		body.Reason = "state CREATED: Run has not started"
	case s == PendingShutdown || s == NotRunning:
		body.Reason = "state " + s.String() + ": shutting down or stopped"
	default:
		body.Reason = "state " + s.String() + ": the App failed"
	}
	writeOpsJSON(w, http.StatusServiceUnavailable, body)
}

// topologyFormats are the formats /topology serves, the text first.
var topologyFormats = []string{"text", "json", "mermaid", "dot"}

// serveTopology answers the topology: by default the text of Describe
// (Kafka Streams' TopologyDescription), ?format=json its graph
// (topologyJSON), ?format=mermaid a Mermaid flowchart, ?format=dot a
// Graphviz digraph.
func (a *App) serveTopology(w http.ResponseWriter, r *http.Request) {
	format := r.URL.Query().Get("format")
	var text string
	switch format {
	case "", "text":
		text = a.topo.Describe()
	case "mermaid":
		text = a.topo.Mermaid()
	case "dot":
		text = a.topo.DOT()
	case "json":
		writeOpsJSON(w, http.StatusOK, topologyJSON(a.topo))
		return
	default:
		writeOpsJSON(w, http.StatusBadRequest, opsError{"topology: unknown format " + quoteJSON(format) + "; accepted: " + strings.Join(topologyFormats, ", ")})
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = w.Write([]byte(text))
}

// stateBody is the answer of /api/state.
type stateBody struct {
	ApplicationID string `json:"application_id"`
	State         string `json:"state"`
	// Instance is the host:port of this instance's HTTP server, HTTPURL
	// its base URL.
	Instance string `json:"instance"`
	HTTPURL  string `json:"http_url"`
}

func (a *App) serveState(w http.ResponseWriter, _ *http.Request) {
	body := stateBody{ApplicationID: a.cfg.appID, State: a.State().String(), HTTPURL: a.HTTPURL()}
	if a.httpLn != nil {
		body.Instance = a.httpLn.Addr().String()
	}
	writeOpsJSON(w, http.StatusOK, body)
}

// The JSON of /topology?format=json: the graph of topology.Topology, with
// the names Describe prints (internal topics without the application ID
// prefix).
type (
	topoJSON struct {
		SubTopologies []subTopologyJSON `json:"subtopologies"`
		GlobalStores  []globalStoreJSON `json:"global_stores"`
	}
	subTopologyJSON struct {
		ID    int        `json:"id"`
		Nodes []nodeJSON `json:"nodes"`
	}
	// nodeJSON is one node. Kind is source, processor or sink; a source
	// has Topics, a sink Topic ("" when the sink chooses the topic per
	// record). Successors and Predecessors are its neighbours within its
	// sub-topology, as Describe's --> and <-- lines.
	nodeJSON struct {
		Name         string   `json:"name"`
		Kind         string   `json:"kind"`
		Topics       []string `json:"topics,omitempty"`
		Topic        *string  `json:"topic,omitempty"`
		Stores       []string `json:"stores"`
		Successors   []string `json:"successors"`
		Predecessors []string `json:"predecessors"`
	}
	// globalStoreJSON is a global store's sub-topology: its source reads
	// Topic, its processor writes the store.
	globalStoreJSON struct {
		ID        int    `json:"id"`
		Name      string `json:"name"`
		Source    string `json:"source"`
		Processor string `json:"processor"`
		Topic     string `json:"topic"`
		Store     string `json:"store"`
	}
)

// topologyJSON is topo's graph as /topology?format=json serves it: the
// sub-topologies in ID order with their nodes in creation order, then the
// global stores.
func topologyJSON(topo *topology.Topology) topoJSON {
	out := topoJSON{SubTopologies: []subTopologyJSON{}, GlobalStores: []globalStoreJSON{}}
	for _, st := range topo.SubTopologies() {
		in := make(map[*topology.Node]bool, len(st.Nodes))
		for _, n := range st.Nodes {
			in[n] = true
		}
		names := func(ns []*topology.Node) []string {
			out := []string{}
			for _, n := range ns {
				if in[n] {
					out = append(out, n.Name)
				}
			}
			return out
		}
		sj := subTopologyJSON{ID: st.ID, Nodes: []nodeJSON{}}
		for _, n := range st.Nodes {
			nj := nodeJSON{Name: n.Name, Kind: strings.ToLower(n.Kind.String()), Stores: append([]string{}, n.Stores...),
				Successors: names(n.Children), Predecessors: names(n.Parents)}
			switch n.Kind {
			case topology.Source:
				nj.Topics = append([]string{}, n.Topics...)
			case topology.Sink:
				topic := ""
				if len(n.Topics) > 0 {
					topic = n.Topics[0]
				}
				nj.Topic = &topic
			}
			sj.Nodes = append(sj.Nodes, nj)
		}
		out.SubTopologies = append(out.SubTopologies, sj)
	}
	for _, g := range topo.GlobalStores() {
		out.GlobalStores = append(out.GlobalStores, globalStoreJSON{ID: g.ID, Name: g.Store.Name,
			Source: g.Source.Name, Processor: g.Processor.Name, Topic: g.Topic, Store: g.Store.Name})
	}
	return out
}

// opsError is an error answer: {"error": "..."}.
type opsError struct {
	Error string `json:"error"`
}

// writeOpsJSON writes v as the JSON answer with status.
func writeOpsJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// quoteJSON quotes s as a JSON string, for names in error messages.
func quoteJSON(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
