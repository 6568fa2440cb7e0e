package window

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

const (
	anySize      = 123 * time.Millisecond
	anyOtherSize = 456 * time.Millisecond
	anyGrace     = 1024 * time.Millisecond
)

func mustValid(t *testing.T, j Join) {
	t.Helper()
	if err := j.Validate(); err != nil {
		t.Fatalf("%+v: %v", j, err)
	}
}

// Ported from Kafka Streams' JoinWindowsTest.validWindows: Validate is
// called after every adjustment, as each Java call constructs and checks.
func TestJoinValidWindows(t *testing.T) {
	j := JoinTimeDifference(anyOtherSize)
	for _, d := range []time.Duration{anySize, 0, -anySize, -anyOtherSize} {
		j = j.WithBefore(d)
		mustValid(t, j)
	}
	j = JoinTimeDifference(anyOtherSize)
	for _, d := range []time.Duration{anySize, 0, -anySize, -anyOtherSize} {
		j = j.WithAfter(d)
		mustValid(t, j)
	}
	mustValid(t, JoinTimeDifferenceAndGrace(3*time.Millisecond, 0))
}

func TestJoinInvalid(t *testing.T) {
	for _, c := range []struct {
		name string
		j    Join
		want string // substrings of the error: the field and its value
	}{
		{"noGraceNegativeDifference", JoinTimeDifference(-time.Millisecond), "time difference -1ms is negative"},
		{"graceNegativeDifference", JoinTimeDifferenceAndGrace(-time.Millisecond, anyGrace), "time difference -1ms is negative"},
		{"endBeforeStart", JoinTimeDifference(anySize).WithAfter(-anySize - time.Millisecond), "Before+After (123ms + -124ms) is negative"},
		{"startAfterEnd", JoinTimeDifference(anySize).WithBefore(-anySize - time.Millisecond), "Before+After (-124ms + 123ms) is negative"},
		{"negativeGrace", JoinTimeDifferenceAndGrace(3*time.Millisecond, -time.Millisecond), "grace -1ms is negative"},
	} {
		err := c.j.Validate()
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: Validate(%+v) = %v, want an error containing %q", c.name, c.j, err, c.want)
		}
	}
}

func TestJoinGrace(t *testing.T) {
	// beforeShouldNotModifyGrace, afterShouldNotModifyGrace
	j := JoinTimeDifferenceAndGrace(anySize, anyOtherSize)
	if g := j.WithBefore(anySize * 1000).Grace; g != anyOtherSize {
		t.Errorf("WithBefore changed grace to %v", g)
	}
	if g := j.WithAfter(anySize * 1000).Grace; g != anyOtherSize {
		t.Errorf("WithAfter changed grace to %v", g)
	}
	// noGraceAPIShouldNotSetGracePeriod, withGraceAPIShouldSetGracePeriod
	for _, d := range []time.Duration{3 * time.Millisecond, anySize, anyOtherSize} {
		if g := JoinTimeDifference(d).Grace; g != 0 {
			t.Errorf("JoinTimeDifference(%v).Grace = %v, want 0", d, g)
		}
		if g := JoinTimeDifferenceAndGrace(d, anyGrace).Grace; g != anyGrace {
			t.Errorf("JoinTimeDifferenceAndGrace(%v, %v).Grace = %v", d, anyGrace, g)
		}
	}
}

// Ported from equalsAndHashcodeShouldBeValidFor{Positive,Negative}Cases.
func TestJoinEquality(t *testing.T) {
	ms := time.Millisecond
	equal := [][2]Join{
		{JoinTimeDifference(3 * ms), JoinTimeDifference(3 * ms)},
		{JoinTimeDifferenceAndGrace(3*ms, 2*ms), JoinTimeDifferenceAndGrace(3*ms, 2*ms)},
		{JoinTimeDifference(3 * ms).WithAfter(2 * ms), JoinTimeDifference(3 * ms).WithAfter(2 * ms)},
		{JoinTimeDifference(3 * ms).WithBefore(2 * ms), JoinTimeDifference(3 * ms).WithBefore(2 * ms)},
		{JoinTimeDifferenceAndGrace(3*ms, 2*ms).WithAfter(4 * ms), JoinTimeDifferenceAndGrace(3*ms, 2*ms).WithAfter(4 * ms)},
		{JoinTimeDifferenceAndGrace(3*ms, 2*ms).WithBefore(4 * ms), JoinTimeDifferenceAndGrace(3*ms, 2*ms).WithBefore(4 * ms)},
	}
	for _, p := range equal {
		if p[0] != p[1] {
			t.Errorf("%+v != %+v, want equal", p[0], p[1])
		}
	}
	unequal := [][2]Join{
		{JoinTimeDifference(9 * ms), JoinTimeDifference(3 * ms)},
		{JoinTimeDifferenceAndGrace(3*ms, 9*ms), JoinTimeDifferenceAndGrace(3*ms, 2*ms)},
		{JoinTimeDifference(3 * ms).WithAfter(9 * ms), JoinTimeDifference(3 * ms).WithAfter(2 * ms)},
		{JoinTimeDifference(3 * ms).WithBefore(9 * ms), JoinTimeDifference(3 * ms).WithBefore(2 * ms)},
		{JoinTimeDifferenceAndGrace(3*ms, 3*ms).WithBefore(9 * ms).WithAfter(2 * ms), JoinTimeDifferenceAndGrace(3*ms, 3*ms).WithBefore(1 * ms).WithAfter(2 * ms)},
		{JoinTimeDifferenceAndGrace(3*ms, 3*ms).WithBefore(1 * ms).WithAfter(9 * ms), JoinTimeDifferenceAndGrace(3*ms, 3*ms).WithBefore(1 * ms).WithAfter(2 * ms)},
		{JoinTimeDifferenceAndGrace(3*ms, 9*ms).WithBefore(1 * ms).WithAfter(2 * ms), JoinTimeDifferenceAndGrace(3*ms, 3*ms).WithBefore(1 * ms).WithAfter(2 * ms)},
	}
	for _, p := range unequal {
		if p[0] == p[1] {
			t.Errorf("%+v == %+v, want unequal", p[0], p[1])
		}
	}
}

func TestJoinSizeRetention(t *testing.T) {
	j := Join{Before: 10 * time.Millisecond, After: 3 * time.Millisecond, Grace: 5 * time.Millisecond}
	if s := j.Size(); s != 13*time.Millisecond {
		t.Errorf("Size = %v, want 13ms", s)
	}
	if r := j.Retention(); r != 18*time.Millisecond {
		t.Errorf("Retention = %v, want 18ms", r)
	}
}

// in reports whether other lies in the inclusive range [from, to].
func in(from, to, other int64) bool { return from <= other && other <= to }

// Asymmetric windows: before 10, after 3. A left record at 100 joins right
// records in [90, 103]; a right record at 100 joins left records in [97, 110].
// Each row checks both sides of the same pair, so the two ranges agree.
func TestJoinMatches(t *testing.T) {
	j := Join{Before: 10 * time.Millisecond, After: 3 * time.Millisecond}
	for _, c := range []struct {
		left, right int64
		want        bool
	}{
		{100, 89, false},
		{100, 90, true}, // left - before: inclusive
		{100, 100, true},
		{100, 103, true}, // left + after: inclusive
		{100, 104, false},
		{0, 0, true},
		{5, 0, true}, // 5 - 10 < 0: the range starts before 0
	} {
		lf, lt := j.LeftMatches(c.left)
		if got := in(lf, lt, c.right); got != c.want {
			t.Errorf("left %d: right %d in [%d, %d] = %v, want %v", c.left, c.right, lf, lt, got, c.want)
		}
		rf, rt := j.RightMatches(c.right)
		if got := in(rf, rt, c.left); got != c.want {
			t.Errorf("right %d: left %d in [%d, %d] = %v, want %v", c.right, c.left, rf, rt, got, c.want)
		}
	}
	// A negative Before: the window lies entirely after t.
	j = JoinTimeDifference(5 * time.Millisecond).WithBefore(-2 * time.Millisecond)
	if f, to := j.LeftMatches(100); f != 102 || to != 105 {
		t.Errorf("LeftMatches(100) with before -2ms, after 5ms = [%d, %d], want [102, 105]", f, to)
	}
	if f, to := j.RightMatches(100); f != 95 || to != 98 {
		t.Errorf("RightMatches(100) with before -2ms, after 5ms = [%d, %d], want [95, 98]", f, to)
	}
}

func TestJoinClosed(t *testing.T) {
	j := Join{Before: 10 * time.Millisecond, After: 3 * time.Millisecond, Grace: 5 * time.Millisecond}
	for _, c := range []struct {
		t, streamTime     int64
		left, rightClosed bool
	}{
		{100, 100, false, false},
		{100, 108, false, false}, // exactly t + after + grace: left still open
		{100, 109, true, false},  // one past it: left closed
		{100, 115, true, false},  // exactly t + before + grace: right still open
		{100, 116, true, true},   // one past it: right closed
	} {
		if got := j.LeftClosed(c.t, c.streamTime); got != c.left {
			t.Errorf("LeftClosed(%d, %d) = %v, want %v", c.t, c.streamTime, got, c.left)
		}
		if got := j.RightClosed(c.t, c.streamTime); got != c.rightClosed {
			t.Errorf("RightClosed(%d, %d) = %v, want %v", c.t, c.streamTime, got, c.rightClosed)
		}
	}
}

func ExampleJoin() {
	// Purchases (left) joined with the clicks of the 10 minutes before
	// them, accepting clicks up to a minute late.
	j := JoinTimeDifferenceAndGrace(10*time.Minute, time.Minute).WithAfter(0)
	if err := j.Validate(); err != nil {
		panic(err)
	}
	purchase := int64(1_700_000_600_000)
	from, to := j.LeftMatches(purchase)
	fmt.Println("clicks from", from, "to", to)
	fmt.Println("retention", j.Retention())
	// An unmatched purchase's window closes once stream time passes
	// purchase + after + grace.
	fmt.Println(j.LeftClosed(purchase, purchase+60_000), j.LeftClosed(purchase, purchase+60_001))
	fmt.Println(JoinTimeDifference(-time.Second).Validate())
	// Output:
	// clicks from 1700000000000 to 1700000600000
	// retention 11m0s
	// false true
	// sluice: join window time difference -1s is negative
}
