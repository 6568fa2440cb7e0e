// Package datadriven runs tests written as data: a file of commands, each
// followed by the output it must produce. A test reads the file, runs each
// command against the system under test in order and compares what the
// command printed with what the file expects. With the -rewrite flag the
// expected output in the file is replaced by what the commands printed, so a
// change of behaviour is reviewed as a diff of the data files.
//
// The format follows cockroachdb's datadriven files:
//
//	# A comment: lines starting with '#' and blank lines between cases are kept.
//	command arg1 arg2 key=value   # a trailing comment is kept too
//	optional input lines
//	----
//	expected output lines
//	(a blank line or the end of the file ends the output)
//
// The command line is split into fields: the first is the command, the
// others its arguments (Arg finds a "key=value" argument). Expected output
// cannot hold a blank line. Everything outside the expected output blocks is
// left as it was by -rewrite.
package datadriven

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"strings"
	"testing"
)

var rewrite = flag.Bool("rewrite", false, "rewrite the expected output in the data-driven test files (internal/datadriven)")

// TestData is one case of a file: a command with its arguments and input,
// and the output the file expects of it.
type TestData struct {
	// Pos is the case's position, "file:line" of its command.
	Pos string
	// Cmd is the first field of the command line.
	Cmd string
	// Args are the other fields of the command line.
	Args []string
	// Input is the text between the command line and "----", without its
	// last newline.
	Input string
	// Expected is the output the file states, without its last newline.
	Expected string

	// The lines of the expected output in the file: [outStart, outEnd).
	outStart, outEnd int
}

// Arg returns the value of the argument "key=value" and whether the
// command has one.
func (td *TestData) Arg(key string) (string, bool) {
	for _, a := range td.Args {
		if k, v, ok := strings.Cut(a, "="); ok && k == key {
			return v, true
		}
	}
	return "", false
}

// HasArg reports whether the command has the bare argument name.
func (td *TestData) HasArg(name string) bool {
	for _, a := range td.Args {
		if a == name {
			return true
		}
	}
	return false
}

// Fatalf fails the test at once with a message that names the case.
func (td *TestData) Fatalf(t testing.TB, format string, args ...any) {
	t.Helper()
	t.Fatalf("%s: %s: %s", td.Pos, td.Cmd, fmt.Sprintf(format, args...))
}

// File is a parsed data file.
type File struct {
	Path  string
	Cases []*TestData
	lines []string
}

// Parse reads a data file from its contents; path names it in errors.
func Parse(path string, data []byte) (*File, error) {
	text := string(data)
	text = strings.TrimSuffix(text, "\n")
	var lines []string
	if text != "" || len(data) > 0 {
		lines = strings.Split(text, "\n")
	}
	f := &File{Path: path, lines: lines}
	for i := 0; i < len(lines); {
		line := lines[i]
		trimmed := strings.TrimSpace(line)
		if trimmed == "" || strings.HasPrefix(trimmed, "#") {
			i++
			continue
		}
		if trimmed == "----" {
			return nil, fmt.Errorf("%s:%d: ---- without a command before it", path, i+1)
		}
		cmdLine := line
		if j := strings.IndexByte(cmdLine, '#'); j >= 0 {
			cmdLine = cmdLine[:j]
		}
		fields := strings.Fields(cmdLine)
		td := &TestData{Pos: fmt.Sprintf("%s:%d", path, i+1), Cmd: fields[0], Args: fields[1:]}
		i++
		var input []string
		for ; i < len(lines) && strings.TrimSpace(lines[i]) != "----"; i++ {
			input = append(input, lines[i])
		}
		if i == len(lines) {
			return nil, fmt.Errorf("%s: %s has no ---- line after it", td.Pos, td.Cmd)
		}
		td.Input = strings.Join(input, "\n")
		i++ // the ---- line
		td.outStart = i
		for ; i < len(lines) && strings.TrimSpace(lines[i]) != ""; i++ {
		}
		td.outEnd = i
		td.Expected = strings.Join(lines[td.outStart:td.outEnd], "\n")
		f.Cases = append(f.Cases, td)
	}
	return f, nil
}

// Rewrite returns the file's text with the expected output of each case
// replaced by outputs[i] (one per case, in order). An output with a blank
// line cannot be written (it would end the block early): that is an error.
func (f *File) Rewrite(outputs []string) ([]byte, error) {
	if len(outputs) != len(f.Cases) {
		return nil, fmt.Errorf("%s: %d outputs for %d cases", f.Path, len(outputs), len(f.Cases))
	}
	var b bytes.Buffer
	next := 0
	for i, td := range f.Cases {
		for _, l := range f.lines[next:td.outStart] {
			b.WriteString(l)
			b.WriteByte('\n')
		}
		out := normalize(outputs[i])
		if out != "" {
			for _, l := range strings.Split(out, "\n") {
				if strings.TrimSpace(l) == "" {
					return nil, fmt.Errorf("%s: %s: the output has a blank line, which the format cannot hold", td.Pos, td.Cmd)
				}
			}
			b.WriteString(out)
			b.WriteByte('\n')
		}
		next = td.outEnd
	}
	for _, l := range f.lines[next:] {
		b.WriteString(l)
		b.WriteByte('\n')
	}
	return b.Bytes(), nil
}

// normalize drops the trailing newlines of an output and the trailing
// spaces of its lines, so that the file's text and the output compare equal
// when they hold the same lines.
func normalize(s string) string {
	s = strings.TrimRight(s, "\n")
	if s == "" {
		return ""
	}
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = strings.TrimRight(l, " \t")
	}
	return strings.Join(lines, "\n")
}

// RunTest runs the cases of the file at path in order: f runs a case and
// returns its output, which must equal the case's expected output (or, with
// -rewrite, replaces it in the file). A mismatch fails the test at that
// case, since later cases usually depend on the state earlier ones left.
func RunTest(t *testing.T, path string, f func(t *testing.T, td *TestData) string) {
	t.Helper()
	runTest(t, path, func(td *TestData) string { return f(t, td) })
}

func runTest(t testing.TB, path string, f func(td *TestData) string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	file, err := Parse(path, data)
	if err != nil {
		t.Fatal(err)
	}
	if len(file.Cases) == 0 {
		t.Fatalf("%s: no test cases", path)
	}
	outputs := make([]string, 0, len(file.Cases))
	for _, td := range file.Cases {
		got := normalize(f(td))
		if t.Failed() {
			return
		}
		outputs = append(outputs, got)
		if !*rewrite && got != normalize(td.Expected) {
			t.Fatalf("%s: %s %s: output differs (go test -rewrite rewrites the file)\n--- got:\n%s\n--- want:\n%s",
				td.Pos, td.Cmd, strings.Join(td.Args, " "), got, td.Expected)
		}
	}
	if *rewrite {
		out, err := file.Rewrite(outputs)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(out, data) {
			if err := os.WriteFile(path, out, 0o644); err != nil {
				t.Fatal(err)
			}
			t.Logf("%s: rewritten", path)
		}
	}
}
