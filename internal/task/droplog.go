package task

import (
	"context"
	"log/slog"
	"time"
)

// The log lines of dropped records (RecordDropped): Kafka Streams logs a
// line for every record a node drops; a task logs at most one per node and
// reason per invalidLogInterval of its clock, with the number of drops it
// stands for.

// dropLog is the rate limit of the log lines of one node's drops for one
// reason: when the last line was logged, and how many drops since.
type dropLog struct {
	logged     time.Time
	suppressed int64
}

// loggedElsewhere are the drop reasons whose callers log the drop
// themselves, with more to say than RecordDropped could (the window and
// its close time of a late record, the error of an undecodable one, the
// handler's line for a record an error handler let go): RecordDropped
// counts them without a line of its own.
var loggedElsewhere = map[string]bool{
	"late": true, "invalid-timestamp": true, "deserialization-error": true, "invalid-utf8": true,
	"processing-error": true, "production-error": true, "dead-letter": true,
}

// dropMessages are the log lines of RecordDropped for the reasons Kafka
// Streams logs a line for (at WARN: "Skipping record due to null key"
// and the like); any other reason gets the generic line.
var dropMessages = map[string]string{
	"null-key":         "skipping a record with a null key",
	"null-value":       "skipping a record with a null value",
	"null-foreign-key": "skipping a record whose foreign key is null",
	"out-of-order":     "skipping an out-of-order update of a versioned table",
	"stale-response":   "skipping a foreign-key join response for a row that has changed since",
}

// logDrop logs the record being processed as dropped by node for reason
// (RecordDropped counts it), unless its caller logs it (loggedElsewhere):
// at most one line per node and reason per invalidLogInterval of the
// task's clock, naming the record and telling how many were dropped for
// the reason since the last line. Kafka Streams logs each such record at WARN (an
// out-of-order versioned update at INFO).
func (c *nodeContext) logDrop(node, reason string) {
	if loggedElsewhere[reason] {
		return
	}
	k := [2]string{node, reason}
	l := c.dropLogs[k]
	if l == nil {
		if c.dropLogs == nil {
			c.dropLogs = map[[2]string]*dropLog{}
		}
		l = &dropLog{}
		c.dropLogs[k] = l
	}
	now := c.t.clock()
	if !l.logged.IsZero() {
		if d := now.Sub(l.logged); d >= 0 && d < invalidLogInterval {
			l.suppressed++
			return
		}
	}
	msg, ok := dropMessages[reason]
	if !ok {
		msg = "skipping a record"
	}
	attrs := []any{"node", node, "reason", reason}
	if c.t.offset >= 0 {
		attrs = append(attrs, "topic", c.t.topic, "partition", c.t.partition, "offset", c.t.offset)
	}
	if l.suppressed > 0 {
		attrs = append(attrs, "dropped_since_last_log", l.suppressed)
	}
	level := slog.LevelWarn
	if reason == "out-of-order" {
		level = slog.LevelInfo
	}
	c.t.log.Log(context.Background(), level, msg, attrs...)
	l.logged, l.suppressed = now, 0
}
