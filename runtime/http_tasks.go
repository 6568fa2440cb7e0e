package runtime

import (
	"cmp"
	"encoding/json"
	"net/http"
	"slices"
	"sync"
	"time"
)

// The live task view: GET /api/tasks answers what the tasks of this
// instance do, for the web page, which polls it each second:
//
//	{"instance":"127.0.0.1:8080","state":"RUNNING","tasks":[{"id":"0_1",
//	 "kind":"active","restoring":false,"processed_total":1200,
//	 "records_per_second":410.5,"lag":3,
//	 "partitions":[{"topic":"in","partition":1,"lag":3}]}]}
//
// kind is active or standby. processed_total counts the input records an
// active task processed since it opened on this instance (0 for a
// standby), records_per_second is its rate over the last few seconds. An
// active task's partitions are its input partitions, with their records
// lag as sluice_records_lag; a standby's are its changelog partitions,
// with the records it has not applied yet. A partition whose lag is not
// known yet (no fetch has told its end) is left out; lag is the sum of
// the partitions'.
//
// The poll loop publishes a snapshot at most every taskViewInterval (it
// holds App.mu for its rounds, which a request must not wait for); a
// request reads the latest, so it is safe at any time and never blocks
// on the tasks.

// taskViewInterval is how often the poll loop publishes the view.
const taskViewInterval = 200 * time.Millisecond

// rateWindow is the span records_per_second is measured over.
const rateWindow = 5 * time.Second

// taskView is the latest published view of the tasks.
type taskView struct {
	mu    sync.Mutex
	at    time.Time
	tasks []taskJSON
	// samples are each active task's (time, processed total) pairs of the
	// last rateWindow, oldest first.
	samples map[taskID][]rateSample
}

type rateSample struct {
	at    time.Time
	total int64
}

type taskJSON struct {
	ID               string          `json:"id"`
	Kind             string          `json:"kind"`
	Restoring        bool            `json:"restoring"`
	ProcessedTotal   int64           `json:"processed_total"`
	RecordsPerSecond float64         `json:"records_per_second"`
	Lag              int64           `json:"lag"`
	Partitions       []partitionJSON `json:"partitions"`
}

type partitionJSON struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	Lag       int64  `json:"lag"`
}

type tasksJSON struct {
	Instance string     `json:"instance"`
	State    string     `json:"state"`
	Tasks    []taskJSON `json:"tasks"`
}

// tasksRoutes registers GET /api/tasks.
func (a *App) tasksRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /api/tasks", a.serveTasks)
}

func (a *App) serveTasks(w http.ResponseWriter, _ *http.Request) {
	out := tasksJSON{State: a.State().String(), Tasks: []taskJSON{}}
	if a.httpLn != nil {
		out.Instance = a.httpLn.Addr().String()
	}
	if !a.State().HasCompletedShutdown() {
		v := &a.metrics.view
		v.mu.Lock()
		out.Tasks = append(out.Tasks, v.tasks...)
		v.mu.Unlock()
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(out)
}

// publishTasksLocked publishes the view of the tasks, at most every
// taskViewInterval. The poll loop calls it after each round, with a.mu
// held.
func (a *App) publishTasksLocked() {
	v := &a.metrics.view
	now := time.Now()
	if now.Sub(v.at) < taskViewInterval {
		return
	}
	type entry struct {
		id taskID
		t  taskJSON
	}
	var es []entry
	if v.samples == nil {
		v.samples = map[taskID][]rateSample{}
	}
	for id, r := range a.runners {
		t := taskJSON{ID: id.String(), Kind: "active", Restoring: r.restoring, Partitions: []partitionJSON{}}
		if tm := a.metrics.active[id]; tm != nil {
			t.ProcessedTotal = tm.total
			for _, pl := range tm.parts {
				if pl.lag >= 0 {
					t.Partitions = append(t.Partitions, partitionJSON{Topic: pl.topic, Partition: pl.partition, Lag: pl.lag})
					t.Lag += pl.lag
				}
			}
		}
		// The rate over the samples of the last rateWindow.
		ss := append(v.samples[id], rateSample{now, t.ProcessedTotal})
		for len(ss) > 2 && now.Sub(ss[1].at) >= rateWindow {
			ss = ss[1:]
		}
		if first := ss[0]; now.After(first.at) && t.ProcessedTotal >= first.total {
			t.RecordsPerSecond = float64(t.ProcessedTotal-first.total) / now.Sub(first.at).Seconds()
		}
		v.samples[id] = ss
		es = append(es, entry{id, t})
	}
	for id := range v.samples {
		if a.runners[id] == nil {
			delete(v.samples, id)
		}
	}
	sb := a.standbys
	sb.mu.Lock()
	for id, st := range sb.tasks {
		t := taskJSON{ID: id.String(), Kind: "standby", Partitions: []partitionJSON{}}
		for _, p := range st.parts {
			if p.end >= 0 {
				lag := max(p.end-max(p.next, 0), 0)
				t.Partitions = append(t.Partitions, partitionJSON{Topic: p.tp.Topic, Partition: p.tp.Partition, Lag: lag})
				t.Lag += lag
			}
		}
		es = append(es, entry{id, t})
	}
	sb.mu.Unlock()
	slices.SortFunc(es, func(x, y entry) int {
		return cmp.Or(cmp.Compare(x.t.Kind, y.t.Kind), cmp.Compare(x.id.sub, y.id.sub), cmp.Compare(x.id.partition, y.id.partition))
	})
	tasks := make([]taskJSON, len(es))
	for i, e := range es {
		tasks[i] = e.t
	}
	v.mu.Lock()
	v.at, v.tasks = now, tasks
	v.mu.Unlock()
}
