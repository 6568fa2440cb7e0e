package task_test

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/internal/task"
)

// Skipped undecodable records are all counted, but logged at most once per
// node per 10 seconds of the task's clock, with the number not logged.
func TestUndecodableRecordsLogRateLimited(t *testing.T) {
	var buf bytes.Buffer
	r, err := newRig(t, &proc{}, func(c *task.Config) {
		c.OnDeserializationError = task.SkipOnDeserializationError
		c.Logger = slog.New(slog.NewTextHandler(&buf, nil))
	})
	if err != nil {
		t.Fatal(err)
	}
	bad := []byte("not an int64")
	for range 3 {
		ok(t, r.pipeRaw([]byte("k"), bad, 1))
	}
	r.now = r.now.Add(9 * time.Second)
	ok(t, r.pipeRaw([]byte("k"), bad, 1))
	if n := strings.Count(buf.String(), "cannot be deserialized"); n != 1 {
		t.Fatalf("logged %d lines for 4 bad records within 9s, want 1:\n%s", n, buf.String())
	}
	r.now = r.now.Add(time.Second)
	ok(t, r.pipeRaw([]byte("k"), bad, 1))
	if n := strings.Count(buf.String(), "cannot be deserialized"); n != 2 {
		t.Fatalf("logged %d lines after 10s, want 2:\n%s", n, buf.String())
	}
	if !strings.Contains(buf.String(), "skipped_since_last_log=3") {
		t.Errorf("the second line does not say 3 records were skipped unlogged:\n%s", buf.String())
	}
	if len(r.dropped) != 5 {
		t.Errorf("counted %d dropped records, want 5", len(r.dropped))
	}
}
