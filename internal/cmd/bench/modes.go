package main

import (
	"context"
	"strings"
)

// runModes runs what replaces the in-process workloads: a child's one
// workload (-child), issue 15's table (-table), the latency benchmark
// (-only latency), and the allocation benchmarks (-allocs) after the table
// or the latency benchmark. It reports whether nothing is left to run.
func runModes(ctx context.Context, brokers []string, where, run string, n, workers, runs int, partitions int32, only string) (bool, error) {
	if *childSpec != "" {
		return true, runChild(ctx, *childSpec)
	}
	latency := strings.Contains(","+only+",", ",latency,")
	if latency {
		if err := runLatency(ctx, brokers, where, run+"-lat", n, workers, runs, partitions); err != nil {
			return true, err
		}
	}
	// The other workloads of -only: the table's rows, or the in-process
	// workloads.
	rest := strings.Trim(strings.ReplaceAll(","+only+",", ",latency,", ","), ",")
	if *tableMode {
		if err := runTable(ctx, brokers, where, run, n, workers, runs, partitions, rest); err != nil {
			return true, err
		}
	}
	if *allocsFlag && (latency || *tableMode) {
		if err := runAllocs(ctx); err != nil {
			return true, err
		}
	}
	return *tableMode || (latency && rest == ""), nil
}
