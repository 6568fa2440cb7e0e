// Package window defines the windows of windowed aggregations (tumbling,
// hopping, sliding and session windows) and of stream-stream joins, their
// arithmetic, and the windowed-key encodings that Kafka Streams uses on
// topics and in stores.
//
// Times are milliseconds since the Unix epoch, as record timestamps are.
// Time windows are epoch-aligned and half-open, [Start, End); a record at
// timestamp ts belongs to every window with Start <= ts < End. Sliding
// windows are closed, [ts-d, ts]. A time window closes when stream time
// reaches End + Grace: a record for a closed window is late (Kafka Streams
// drops and counts it). Join windows (Join) are closed on both ends from
// both sides of a stream-stream join; see Join for when they close.
package window

import (
	"fmt"
	"time"
)

// Window is a time interval in milliseconds. For time windows End is
// exclusive; for sliding and session windows it is inclusive (as in Kafka
// Streams, where a session's end is its last record's timestamp).
type Window struct {
	Start int64
	End   int64
}

// String formats the window as [start,end).
func (w Window) String() string { return fmt.Sprintf("[%d,%d)", w.Start, w.End) }

// Time defines tumbling and hopping windows: windows of Size starting every
// Advance, aligned to the epoch. A zero Advance means Size: tumbling
// windows. Grace is how long after a window's end records are still
// accepted (zero: none). Kafka Streams: TimeWindows.
type Time struct {
	Size    time.Duration
	Advance time.Duration
	Grace   time.Duration
}

// Tumbling returns windows of size that do not overlap.
func Tumbling(size, grace time.Duration) Time { return Time{Size: size, Grace: grace} }

// Hopping returns windows of size starting every advance (advance <= size).
func Hopping(size, advance, grace time.Duration) Time {
	return Time{Size: size, Advance: advance, Grace: grace}
}

func (t Time) sizeMs() int64 { return t.Size.Milliseconds() }

func (t Time) advanceMs() int64 {
	if t.Advance == 0 {
		return t.Size.Milliseconds()
	}
	return t.Advance.Milliseconds()
}

// Validate reports a definition Kafka Streams would refuse.
func (t Time) Validate() error {
	switch {
	case t.Size < time.Millisecond:
		return fmt.Errorf("sluice: window size %v is below 1ms", t.Size)
	case t.Advance < 0 || t.Advance > t.Size:
		return fmt.Errorf("sluice: window advance %v must be in (0, size %v]", t.Advance, t.Size)
	case t.Advance != 0 && t.Advance < time.Millisecond:
		return fmt.Errorf("sluice: window advance %v is below 1ms", t.Advance)
	case t.Grace < 0:
		return fmt.Errorf("sluice: window grace %v is negative", t.Grace)
	}
	return nil
}

// WindowsFor appends to dst the windows that contain ts, earliest start
// first (Kafka Streams' TimeWindows.windowsFor), and returns dst. A negative
// ts belongs to no window.
func (t Time) WindowsFor(dst []Window, ts int64) []Window {
	if ts < 0 {
		return dst
	}
	size, adv := t.sizeMs(), t.advanceMs()
	start := max(0, ts-size+adv) / adv * adv
	for ; start <= ts; start += adv {
		dst = append(dst, Window{Start: start, End: start + size})
	}
	return dst
}

// Closed reports whether window w no longer accepts records at the given
// stream time: stream time has reached w.End + Grace (Kafka Streams'
// KStreamWindowAggregate: accepted iff end > streamTime - grace).
func (t Time) Closed(w Window, streamTime int64) bool {
	return streamTime >= w.End+t.Grace.Milliseconds()
}

// Retention is how long a window must be kept after its start: size plus
// grace (Kafka Streams' minimum retention for a window store).
func (t Time) Retention() time.Duration { return t.Size + t.Grace }

// Sliding defines sliding windows: a window [ts-TimeDifference, ts] for
// every record timestamp ts, so that records at most TimeDifference apart
// share a window. Kafka Streams: SlidingWindows.
type Sliding struct {
	TimeDifference time.Duration
	Grace          time.Duration
}

// Validate reports a definition Kafka Streams would refuse.
func (s Sliding) Validate() error {
	switch {
	case s.TimeDifference < time.Millisecond:
		return fmt.Errorf("sluice: sliding window time difference %v is below 1ms", s.TimeDifference)
	case s.Grace < 0:
		return fmt.Errorf("sluice: window grace %v is negative", s.Grace)
	}
	return nil
}

// Closed reports whether the sliding window w (inclusive end) no longer
// accepts records: stream time has passed w.End + Grace (Kafka Streams'
// KStreamSlidingWindowAggregate: late iff end < streamTime - grace).
func (s Sliding) Closed(w Window, streamTime int64) bool {
	return streamTime > w.End+s.Grace.Milliseconds()
}

// Session defines session windows: records of a key less than Gap apart
// (inclusive) belong to one session, and a record that bridges two
// sessions merges them. Kafka Streams: SessionWindows.
type Session struct {
	Gap   time.Duration
	Grace time.Duration
}

// Validate reports a definition Kafka Streams would refuse.
func (s Session) Validate() error {
	switch {
	case s.Gap < time.Millisecond:
		return fmt.Errorf("sluice: session gap %v is below 1ms", s.Gap)
	case s.Grace < 0:
		return fmt.Errorf("sluice: window grace %v is negative", s.Grace)
	}
	return nil
}

// Closed reports whether session w no longer accepts records: stream time
// has passed w.End + Gap + Grace (Kafka Streams'
// KStreamSessionWindowAggregate: late iff end < streamTime - grace - gap).
func (s Session) Closed(w Window, streamTime int64) bool {
	return streamTime > w.End+s.Gap.Milliseconds()+s.Grace.Milliseconds()
}

// Merges reports whether a record at ts joins session w: it lies within
// Gap of the session (inclusive).
func (s Session) Merges(w Window, ts int64) bool {
	gap := s.Gap.Milliseconds()
	return ts >= w.Start-gap && ts <= w.End+gap
}
