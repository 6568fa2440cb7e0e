package state_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/sluicehq/sluice/state"
)

// flushLog records what a CachingStore flushes.
type flushLog []string

func (l *flushLog) listener(key, nv []byte, deleted bool, ov []byte, hasOld bool, rc state.RecordContext) error {
	n, o := string(nv), "-"
	if deleted {
		n = "<deleted>"
	}
	if hasOld {
		o = string(ov)
	}
	*l = append(*l, fmt.Sprintf("%s=%s(old %s,ts %d)", key, n, o, rc.Timestamp))
	return nil
}

func (l *flushLog) take() string {
	s := strings.Join(*l, " ")
	*l = nil
	return s
}

func newCaching(t *testing.T, max int64) (*state.CachingStore, state.KeyValueStore, *flushLog) {
	t.Helper()
	inner := state.NewInMemoryKeyValueStore("s")
	c := state.NewCachingStore(inner, state.NewCache(max))
	log := &flushLog{}
	c.SetFlushListener(log.listener)
	return c, inner, log
}

func TestCacheCompactsUpdatesUntilFlush(t *testing.T) {
	c, inner, log := newCaching(t, 1<<20)
	mustPut(t, inner, "a", "0")
	for i, v := range []string{"1", "2", "3"} {
		c.SetRecordContext(state.RecordContext{Timestamp: int64(10 + i)})
		mustPut(t, c, "a", v)
	}
	mustPut(t, c, "b", "x")
	if got := getString(t, c, "a"); got != "3" {
		t.Fatalf("cached Get(a) = %q, want 3", got)
	}
	if got := getString(t, inner, "a"); got != "0" {
		t.Fatalf("store below has a=%q before the flush, want 0", got)
	}
	if got := log.take(); got != "" {
		t.Fatalf("forwarded before the flush: %s", got)
	}
	if c.Dirty() != 2 {
		t.Fatalf("Dirty() = %d, want 2", c.Dirty())
	}
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	if got, want := log.take(), "a=3(old 0,ts 12) b=x(old -,ts 12)"; got != want {
		t.Fatalf("flushed %s, want %s", got, want)
	}
	if got := getString(t, inner, "a"); got != "3" {
		t.Fatalf("store below has a=%q after the flush, want 3", got)
	}
	// Nothing dirty: a second flush forwards nothing.
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	if got := log.take(); got != "" {
		t.Fatalf("second flush forwarded %s", got)
	}
}

func TestCacheFlushOrderIsLastWrite(t *testing.T) {
	c, _, log := newCaching(t, 1<<20)
	mustPut(t, c, "a", "1")
	mustPut(t, c, "b", "1")
	mustPut(t, c, "a", "2")
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	if got, want := log.take(), "b=1(old -,ts 0) a=2(old -,ts 0)"; got != want {
		t.Fatalf("flushed %s, want %s", got, want)
	}
}

func TestCacheDeletes(t *testing.T) {
	c, inner, log := newCaching(t, 1<<20)
	mustPut(t, inner, "a", "0")
	mustDelete(t, c, "a")
	mustPut(t, c, "new", "1")
	mustDelete(t, c, "new") // never below: nothing to write or forward
	if got := getString(t, c, "a"); got != "<absent>" {
		t.Fatalf("Get of a deleted key = %q", got)
	}
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	if got, want := log.take(), "a=<deleted>(old 0,ts 0)"; got != want {
		t.Fatalf("flushed %s, want %s", got, want)
	}
	if got := getString(t, inner, "a"); got != "<absent>" {
		t.Fatalf("store below still has a=%q", got)
	}
}

// A value a reader other than the writer (a join's value getter) got from
// a dirty entry may have been answered with: when the entry is deleted
// before the flush and the store below never held the key, the flush
// forwards the delete with no old value instead of dropping it, so that
// the reader's answer is retracted. The writer's own reads (Get) keep
// Kafka Streams' drop; so does an entry shown only before its last flush.
func TestCacheForwardsDeleteOfValueShownToAReader(t *testing.T) {
	c, inner, log := newCaching(t, 1<<20)
	get := func(key string) string {
		t.Helper()
		v, ok, err := c.GetShared([]byte(key))
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			return "<absent>"
		}
		return string(v)
	}
	c.SetRecordContext(state.RecordContext{Timestamp: 1})
	mustPut(t, c, "shown", "B")
	mustPut(t, c, "private", "B")
	if got := get("shown"); got != "B" {
		t.Fatalf("GetShared(shown) = %q, want the cached B", got)
	}
	if got := getString(t, c, "private"); got != "B" {
		t.Fatalf("Get(private) = %q, want the cached B", got)
	}
	// Overwritten, then deleted: the reader saw B all the same.
	c.SetRecordContext(state.RecordContext{Timestamp: 2})
	mustPut(t, c, "shown", "C")
	c.SetRecordContext(state.RecordContext{Timestamp: 3})
	mustDelete(t, c, "shown")
	mustDelete(t, c, "private")
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	if got, want := log.take(), "shown=<deleted>(old -,ts 3)"; got != want {
		t.Fatalf("flushed %s, want %s", got, want)
	}
	for _, k := range []string{"shown", "private"} {
		if got := getString(t, inner, k); got != "<absent>" {
			t.Fatalf("store below has %s=%q", k, got)
		}
	}

	// Shown, flushed (so forwarded), then put and deleted unseen: the
	// reader's answer was superseded by the flushed put, and the delete
	// of the row the store below holds is forwarded as any delete.
	mustPut(t, c, "k", "1")
	get("k")
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	mustDelete(t, c, "k")
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	mustPut(t, c, "k", "2")
	mustDelete(t, c, "k")
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	if got, want := log.take(), "k=1(old -,ts 3) k=<deleted>(old 1,ts 3)"; got != want {
		t.Fatalf("flushed %s, want %s", got, want)
	}

	// A clean entry (read from below) shown and then deleted: the delete
	// has an old value and is forwarded with it.
	mustPut(t, inner, "below", "0")
	if got := get("below"); got != "0" {
		t.Fatalf("GetShared(below) = %q, want 0", got)
	}
	mustDelete(t, c, "below")
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	if got, want := log.take(), "below=<deleted>(old 0,ts 3)"; got != want {
		t.Fatalf("flushed %s, want %s", got, want)
	}
}

// The same through eviction: the shown entry, deleted, is the least
// recently used when the third key puts the cache over its budget of two
// entries; its eviction forwards its delete, then the other dirty entries.
func TestCacheEvictionForwardsDeleteOfValueShownToAReader(t *testing.T) {
	c, _, log := newCaching(t, 250)
	mustPut(t, c, "a", "1")
	if _, _, err := c.GetShared([]byte("a")); err != nil {
		t.Fatal(err)
	}
	mustDelete(t, c, "a")
	mustPut(t, c, "b", "x")
	if got := log.take(); got != "" {
		t.Fatalf("forwarded %s before the cache was full", got)
	}
	mustPut(t, c, "c", "x")
	if got, want := log.take(), "a=<deleted>(old -,ts 0) b=x(old -,ts 0) c=x(old -,ts 0)"; got != want {
		t.Fatalf("eviction flushed %s, want %s", got, want)
	}
}

func TestCacheEvictionFlushesLeastRecentlyUsed(t *testing.T) {
	// A budget of about two entries: the third write evicts the least
	// recently used one, flushing it first and then the store's other dirty
	// entries in last-write order, as Kafka Streams' NamedCache.evict.
	c, inner, log := newCaching(t, 2*(96+16))
	mustPut(t, c, "k1", "v1")
	mustPut(t, c, "k2", "v2")
	_ = getString(t, c, "k1") // k2 is now the least recently used
	mustPut(t, c, "k3", "v3")
	if got, want := log.take(), "k2=v2(old -,ts 0) k1=v1(old -,ts 0) k3=v3(old -,ts 0)"; got != want {
		t.Fatalf("evicted %s, want %s", got, want)
	}
	if got := getString(t, inner, "k2"); got != "v2" {
		t.Fatalf("evicted entry not written below: %q", got)
	}
	// Reading an evicted key goes below and refills the cache.
	if got := getString(t, c, "k2"); got != "v2" {
		t.Fatalf("Get(k2) after eviction = %q", got)
	}
}

func TestCacheOffWritesThrough(t *testing.T) {
	c, inner, log := newCaching(t, 0)
	mustPut(t, c, "a", "1")
	mustPut(t, c, "a", "2")
	if got, want := log.take(), "a=1(old -,ts 0) a=2(old 1,ts 0)"; got != want {
		t.Fatalf("forwarded %s, want %s", got, want)
	}
	if got := getString(t, inner, "a"); got != "2" {
		t.Fatalf("below: a=%q, want 2", got)
	}
}

func TestCacheRangeMergesDirtyEntries(t *testing.T) {
	c, inner, _ := newCaching(t, 1<<20)
	for _, k := range []string{"a", "c", "e", "g"} {
		mustPut(t, inner, k, "below")
	}
	mustPut(t, c, "b", "cached")
	mustPut(t, c, "c", "cached")
	mustDelete(t, c, "e")
	mustPut(t, c, "h", "cached")
	var got []string
	for k, v := range c.Range([]byte("b"), nil) {
		got = append(got, string(k)+"="+string(v))
	}
	if g, want := strings.Join(got, " "), "b=cached c=cached g=below h=cached"; g != want {
		t.Fatalf("Range(b, nil) = %s, want %s", g, want)
	}
	got = nil
	for k := range c.Prefix([]byte("g")) {
		got = append(got, string(k))
	}
	if g := strings.Join(got, " "); g != "g" {
		t.Fatalf("Prefix(g) = %s, want g", g)
	}
}

// TestCacheGetValueSurvivesWrite checks that a value returned by Get is not
// overwritten by the next write of the same key, so an operator can
// forward it as the old value.
func TestCacheGetValueSurvivesWrite(t *testing.T) {
	c, _, _ := newCaching(t, 1<<20)
	mustPut(t, c, "a", "old")
	v, _, _ := c.Get([]byte("a"))
	mustPut(t, c, "a", "new")
	if string(v) != "old" {
		t.Fatalf("value from Get became %q after a write", v)
	}
}

func TestCacheAllocs(t *testing.T) {
	c, _, _ := newCaching(t, 1<<20)
	key, val := []byte("key"), []byte("12345678")
	mustPut(t, c, "key", "x")
	n := testing.AllocsPerRun(1000, func() {
		if _, _, err := c.Get(key); err != nil {
			t.Fatal(err)
		}
		if err := c.Put(key, val); err != nil {
			t.Fatal(err)
		}
	})
	// The Put after a Get writes a new value slice (the old one may be in
	// use as the update's old value): one allocation.
	if n > 1 {
		t.Fatalf("Get+Put of a cached key: %.1f allocs, want at most 1", n)
	}
}

// A CacheShare divides its budget among the tasks of the moment: when a
// second task joins, the first one's cache evicts down to its new half at
// its next write (evicting a dirty entry flushes all the store's dirty
// entries; the clean ones then leave without a write).
func TestCacheShareFollowsTaskCount(t *testing.T) {
	share := &state.CacheShare{Total: 4 * (96 + 16)}
	share.Add(1)
	inner := state.NewInMemoryKeyValueStore("s")
	c := state.NewCachingStore(inner, share.NewCache())
	log := &flushLog{}
	c.SetFlushListener(log.listener)
	for _, k := range []string{"k1", "k2", "k3"} {
		mustPut(t, c, k, "v")
	}
	if got := log.take(); got != "" {
		t.Fatalf("evicted %s with the whole budget", got)
	}
	share.Add(1) // a second task: half the budget each
	mustPut(t, c, "k4", "v")
	if got, want := log.take(), "k1=v(old -,ts 0) k2=v(old -,ts 0) k3=v(old -,ts 0) k4=v(old -,ts 0)"; got != want {
		t.Fatalf("evicted %s with half the budget, want %s", got, want)
	}
	share.Add(-1)
	mustPut(t, c, "k5", "v")
	if got := log.take(); got != "" {
		t.Fatalf("evicted %s after the other task left", got)
	}
}
