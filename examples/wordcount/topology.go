package main

import (
	"strings"
	"unicode"

	"github.com/sluicehq/sluice/dsl"
	"github.com/sluicehq/sluice/serde"
	"github.com/sluicehq/sluice/topology"
)

// Topology counts the words of the lines read from input: values are UTF-8
// text (keys are ignored), words are split on whitespace and lowercased,
// and every updated count is written to output with the word as a UTF-8
// key and the count as an 8-byte big-endian int64.
func Topology(input, output string) (*topology.Topology, error) {
	b := dsl.NewBuilder()
	lines := dsl.FromTopic(b, input, serde.Bytes, serde.String)
	words := dsl.FlatMapValues(lines, splitWords)
	counts := dsl.GroupByValue(words, func(w string) string { return w }, serde.String).
		Count(dsl.Named("counts"))
	counts.ToStream().To(output, serde.String, serde.Int64)
	return b.Build(dsl.RequireNamedStores())
}

// splitWords emits the lowercased whitespace-separated words of line,
// without allocating a slice of them.
func splitWords(line string, emit func(string)) {
	start := -1
	for i, r := range line {
		if unicode.IsSpace(r) {
			if start >= 0 {
				emit(strings.ToLower(line[start:i]))
				start = -1
			}
		} else if start < 0 {
			start = i
		}
	}
	if start >= 0 {
		emit(strings.ToLower(line[start:]))
	}
}
