package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/url"
	"slices"
)

const describeDescription = `Print a running application's topology, from its HTTP server
(GET /topology): as Describe prints it (text, the Kafka Streams layout), as
JSON (-format json: sub-topologies with their nodes, and global stores), or
as a Mermaid or DOT graph (-format mermaid, -format dot) to paste into a
document.`

// runDescribe is `sluice describe`.
func runDescribe(ctx context.Context, args []string, out, errOut io.Writer) error {
	fs := newFlagSet("describe", "-url URL [-format text|json|mermaid|dot]", describeDescription, errOut)
	var hf httpFlags
	hf.register(fs)
	format := fs.String("format", "text", "text, json, mermaid or dot")
	if done, err := parseFlags(fs, args); done {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("describe takes no arguments, got %q", fs.Args())
	}
	formats := []string{"text", "json", "mermaid", "dot"}
	if !slices.Contains(formats, *format) {
		return usagef("-format %q: want one of text, json, mermaid, dot", *format)
	}
	q := url.Values{}
	if *format != "text" {
		q.Set("format", *format)
	}
	ctx, cancel := context.WithTimeout(ctx, hf.timeout)
	defer cancel()
	body, _, err := hf.get(ctx, "/topology", q)
	if err != nil {
		return err
	}
	if *format == "json" {
		var buf bytes.Buffer
		if json.Indent(&buf, body, "", "  ") == nil {
			body = buf.Bytes()
		}
	}
	return writeBody(out, body)
}
