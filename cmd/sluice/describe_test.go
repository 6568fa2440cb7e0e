package main

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/sluicehq/sluice/internal/kafkatest"
	"github.com/sluicehq/sluice/runtime"
)

// describe prints a running App's topology in each format, as the
// topology renders it.
func TestDescribe(t *testing.T) {
	c := kafkatest.New(t)
	in, out, appID := kafkatest.Topic(t, "in"), kafkatest.Topic(t, "out"), kafkatest.Topic(t, "app")
	c.Create(t, 2, in, out)
	topo := wordCount(t, in, out)
	ra := startApp(t, c, topo, appID, t.TempDir(), runtime.HTTPAddr("127.0.0.1:0"))
	ra.awaitRunning(t)
	url := ra.app.HTTPURL()

	stdout, _, err := runCLI(t, "describe", "-url", url)
	if err != nil {
		t.Fatalf("describe: %v", err)
	}
	if want := topo.Describe(); strings.TrimSuffix(stdout, "\n") != strings.TrimSuffix(want, "\n") {
		t.Errorf("describe printed\n%s\nwant Describe's\n%s", stdout, want)
	}
	stdout, _, err = runCLI(t, "describe", "-url", url, "-format", "mermaid")
	if err != nil {
		t.Fatalf("describe -format mermaid: %v", err)
	}
	if want := topo.Mermaid(); strings.TrimSuffix(stdout, "\n") != strings.TrimSuffix(want, "\n") {
		t.Errorf("describe -format mermaid printed\n%s\nwant\n%s", stdout, want)
	}
	stdout, _, err = runCLI(t, "describe", "-url", url+"/", "-format", "dot")
	if err != nil {
		t.Fatalf("describe -format dot: %v", err)
	}
	if want := topo.DOT(); strings.TrimSuffix(stdout, "\n") != strings.TrimSuffix(want, "\n") {
		t.Errorf("describe -format dot printed\n%s\nwant\n%s", stdout, want)
	}

	stdout, _, err = runCLI(t, "describe", "-url", url, "-format", "json")
	if err != nil {
		t.Fatalf("describe -format json: %v", err)
	}
	var got struct {
		Subtopologies []struct {
			ID    int `json:"id"`
			Nodes []struct {
				Name   string   `json:"name"`
				Kind   string   `json:"kind"`
				Topics []string `json:"topics"`
				Topic  string   `json:"topic"`
				Stores []string `json:"stores"`
			} `json:"nodes"`
		} `json:"subtopologies"`
	}
	if err := json.Unmarshal([]byte(stdout), &got); err != nil {
		t.Fatalf("describe -format json: %v\n%s", err, stdout)
	}
	if !strings.Contains(stdout, "\n  \"subtopologies\"") {
		t.Errorf("describe -format json is not indented:\n%s", stdout)
	}
	if len(got.Subtopologies) != len(topo.SubTopologies()) {
		t.Fatalf("%d sub-topologies, the topology has %d", len(got.Subtopologies), len(topo.SubTopologies()))
	}
	var readsIn, writesOut, hasStore bool
	for _, st := range got.Subtopologies {
		for _, n := range st.Nodes {
			readsIn = readsIn || (n.Kind == "source" && slices.Contains(n.Topics, in))
			writesOut = writesOut || (n.Kind == "sink" && n.Topic == out)
			hasStore = hasStore || slices.Contains(n.Stores, "counts")
		}
	}
	if !readsIn || !writesOut || !hasStore {
		t.Errorf("describe -format json: source of %s %v, sink to %s %v, store counts %v:\n%s", in, readsIn, out, writesOut, hasStore, stdout)
	}

	// A format the server does not take is refused before any request.
	_, _, err = runCLI(t, "describe", "-url", url, "-format", "svg")
	var ue *usageError
	if !errors.As(err, &ue) || !strings.Contains(err.Error(), "svg") {
		t.Errorf("describe -format svg: %v, want a usage error naming svg", err)
	}
	// A server that is not there: an error naming the URL.
	ra.stopApp(t)
	_, _, err = runCLI(t, "describe", "-url", url)
	if err == nil || !strings.Contains(err.Error(), url+"/topology") {
		t.Errorf("describe of a stopped App: %v, want an error naming %s/topology", err, url)
	}
}
