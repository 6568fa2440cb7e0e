package datadriven

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

const sample = `# a comment
build tumbling size=10ms   # trailing comment
----

in a 1
line two
----
out a 1
out a 2

# between cases
store
----
`

func TestParse(t *testing.T) {
	f, err := Parse("sample", []byte(sample))
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Cases) != 3 {
		t.Fatalf("%d cases, want 3", len(f.Cases))
	}
	b := f.Cases[0]
	if b.Pos != "sample:2" || b.Cmd != "build" || strings.Join(b.Args, ",") != "tumbling,size=10ms" || b.Input != "" || b.Expected != "" {
		t.Errorf("case 0 = %+v", b)
	}
	if v, ok := b.Arg("size"); !ok || v != "10ms" {
		t.Errorf("Arg(size) = %q, %v", v, ok)
	}
	if _, ok := b.Arg("grace"); ok {
		t.Error("Arg(grace) found")
	}
	if !b.HasArg("tumbling") || b.HasArg("size") {
		t.Error("HasArg")
	}
	in := f.Cases[1]
	if in.Pos != "sample:5" || in.Cmd != "in" || in.Input != "line two" || in.Expected != "out a 1\nout a 2" {
		t.Errorf("case 1 = %+v", in)
	}
	if s := f.Cases[2]; s.Cmd != "store" || s.Expected != "" {
		t.Errorf("case 2 = %+v", s)
	}
}

func TestParseErrors(t *testing.T) {
	for _, text := range []string{
		"in a 1\n",           // no ----
		"----\nout\n",        // no command
		"in a\nmore input\n", // no ---- at the end
	} {
		if _, err := Parse("bad", []byte(text)); err == nil || !strings.HasPrefix(err.Error(), "bad:") {
			t.Errorf("Parse(%q) = %v, want an error naming the file", text, err)
		}
	}
}

func TestRewrite(t *testing.T) {
	f, err := Parse("sample", []byte(sample))
	if err != nil {
		t.Fatal(err)
	}
	// The same outputs give the same text.
	same, err := f.Rewrite([]string{"", "out a 1\nout a 2\n", ""})
	if err != nil {
		t.Fatal(err)
	}
	if string(same) != sample {
		t.Errorf("rewrite with the same outputs:\n%s\nwant\n%s", same, sample)
	}
	got, err := f.Rewrite([]string{"built", "out b 3  ", "x\ny"})
	if err != nil {
		t.Fatal(err)
	}
	want := strings.Replace(sample, "----\n\nin a 1", "----\nbuilt\n\nin a 1", 1)
	want = strings.Replace(want, "out a 1\nout a 2\n", "out b 3\n", 1)
	want += "x\ny\n"
	if string(got) != want {
		t.Errorf("rewrite:\n%s\nwant\n%s", got, want)
	}
	// The rewritten file parses to the new outputs.
	g, err := Parse("sample", got)
	if err != nil {
		t.Fatal(err)
	}
	if g.Cases[0].Expected != "built" || g.Cases[1].Expected != "out b 3" || g.Cases[2].Expected != "x\ny" {
		t.Errorf("rewritten cases: %+v %+v %+v", g.Cases[0], g.Cases[1], g.Cases[2])
	}
	if _, err := f.Rewrite([]string{"a\n\nb", "", ""}); err == nil {
		t.Error("an output with a blank line was written")
	}
	if _, err := f.Rewrite([]string{""}); err == nil {
		t.Error("too few outputs were accepted")
	}
}

// fakeT records a failure and stops the goroutine that runs the test, as
// testing.T does.
type fakeT struct {
	testing.TB
	failed bool
	msg    string
}

func (f *fakeT) Helper()                         {}
func (f *fakeT) Failed() bool                    { return f.failed }
func (f *fakeT) Logf(format string, args ...any) {}
func (f *fakeT) Fatal(args ...any)               { f.Fatalf("%s", fmt.Sprint(args...)) }
func (f *fakeT) Fatalf(format string, args ...any) {
	f.failed = true
	f.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

// run runs runTest on a fakeT in a goroutine of its own.
func run(path string, f func(td *TestData) string) *fakeT {
	ft := &fakeT{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		runTest(ft, path, f)
	}()
	<-done
	return ft
}

func TestRunTest(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f.txt")
	if err := os.WriteFile(path, []byte("echo hello\n----\nhello\n\necho bye\n----\nstale\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var ran []string
	echo := func(td *TestData) string {
		ran = append(ran, td.Cmd+" "+strings.Join(td.Args, " "))
		return strings.Join(td.Args, " ") + "\n"
	}

	// A mismatch fails the test at the case that differs, naming it.
	ft := run(path, echo)
	if !ft.failed || !strings.Contains(ft.msg, path+":5: echo bye") || !strings.Contains(ft.msg, "stale") {
		t.Errorf("mismatch: failed=%v, message %q", ft.failed, ft.msg)
	}
	if len(ran) != 2 {
		t.Errorf("ran %q, want both cases", ran)
	}

	// -rewrite writes what the commands printed.
	*rewrite = true
	ft = run(path, echo)
	*rewrite = false
	if ft.failed {
		t.Fatalf("rewrite failed: %s", ft.msg)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if want := "echo hello\n----\nhello\n\necho bye\n----\nbye\n"; string(data) != want {
		t.Errorf("rewritten file:\n%s\nwant\n%s", data, want)
	}

	// The rewritten file passes.
	if ft = run(path, echo); ft.failed {
		t.Errorf("after rewrite: %s", ft.msg)
	}
}
