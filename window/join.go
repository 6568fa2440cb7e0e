package window

import (
	"fmt"
	"time"
)

// Join defines the windows of a stream-stream join: a left record at t
// joins the right records of its key whose timestamps lie in
// [t-Before, t+After], both ends inclusive (so a right record at t joins the
// left records in [t-After, t+Before]). Grace is how long after a window's
// end unmatched records of a left or outer join are held before their
// null-side result is emitted. Kafka Streams: JoinWindows, the current
// (non-deprecated) API, whose spurious-result fix Sluice always applies.
//
// Before or After alone may be negative (the window then lies entirely
// after or before t), but not their sum. Join is comparable with ==, as
// JoinWindows.equals compares before, after and grace.
type Join struct {
	Before time.Duration
	After  time.Duration
	Grace  time.Duration
}

// JoinTimeDifference returns symmetric join windows of the given time
// difference and no grace (Kafka Streams' ofTimeDifferenceWithNoGrace).
func JoinTimeDifference(timeDifference time.Duration) Join {
	return Join{Before: timeDifference, After: timeDifference}
}

// JoinTimeDifferenceAndGrace returns symmetric join windows of the given
// time difference and grace (Kafka Streams' ofTimeDifferenceAndGrace).
func JoinTimeDifferenceAndGrace(timeDifference, grace time.Duration) Join {
	return Join{Before: timeDifference, After: timeDifference, Grace: grace}
}

// WithBefore returns j with Before set to d; After and Grace are unchanged
// (Kafka Streams' JoinWindows.before).
func (j Join) WithBefore(d time.Duration) Join { j.Before = d; return j }

// WithAfter returns j with After set to d; Before and Grace are unchanged
// (Kafka Streams' JoinWindows.after).
func (j Join) WithAfter(d time.Duration) Join { j.After = d; return j }

// Validate reports a definition Kafka Streams would refuse: a negative
// interval Before+After (which includes a negative symmetric time
// difference) or a negative Grace.
func (j Join) Validate() error {
	switch {
	case j.Before == j.After && j.Before < 0:
		return fmt.Errorf("sluice: join window time difference %v is negative", j.Before)
	case j.Before+j.After < 0:
		return fmt.Errorf("sluice: join window interval Before+After (%v + %v) is negative", j.Before, j.After)
	case j.Grace < 0:
		return fmt.Errorf("sluice: join window grace %v is negative", j.Grace)
	}
	return nil
}

// Size is Before + After (Kafka Streams' JoinWindows.size).
func (j Join) Size() time.Duration { return j.Before + j.After }

// Retention is how long each side's window store keeps a record:
// Before + After + Grace.
func (j Join) Retention() time.Duration { return j.Before + j.After + j.Grace }

// LeftMatches returns the inclusive range [from, to] = [t-Before, t+After]
// of right-side timestamps that a left record at t joins (Kafka Streams'
// KStreamKStreamJoin fetch from the other side's store; it further clamps
// both ends at 0, as a store holds no negative timestamps).
func (j Join) LeftMatches(t int64) (from, to int64) {
	return t - j.Before.Milliseconds(), t + j.After.Milliseconds()
}

// RightMatches returns the inclusive range [from, to] = [t-After, t+Before]
// of left-side timestamps that a right record at t joins.
func (j Join) RightMatches(t int64) (from, to int64) {
	return t - j.After.Milliseconds(), t + j.Before.Milliseconds()
}

// LeftClosed reports whether the window of an unmatched left record at t
// has closed at the given stream time, so that its null-side result is due:
// t + After + Grace < streamTime (Kafka Streams' KStreamKStreamJoin keeps
// an outer record while minTime + afterMs + grace >= streamTime).
func (j Join) LeftClosed(t, streamTime int64) bool {
	return t+j.After.Milliseconds()+j.Grace.Milliseconds() < streamTime
}

// RightClosed reports whether the window of an unmatched right record at t
// has closed at the given stream time: t + Before + Grace < streamTime.
func (j Join) RightClosed(t, streamTime int64) bool {
	return t+j.Before.Milliseconds()+j.Grace.Milliseconds() < streamTime
}
