package state_test

import (
	"fmt"
	"slices"
	"testing"

	"github.com/sluicehq/sluice/state"
)

// contextRecorder is a store below a cache that records each write with
// the record context the cache set before it.
type contextRecorder struct {
	state.KeyValueStore
	rc     *state.RecordContext
	writes []string
}

func (s *contextRecorder) SetRecordContext(rc state.RecordContext) { s.rc = &rc }

func (s *contextRecorder) log(what string) {
	ts := "none"
	if s.rc != nil {
		ts = fmt.Sprint(s.rc.Timestamp)
	}
	s.writes = append(s.writes, what+"@"+ts)
	s.rc = nil
}

func (s *contextRecorder) Put(k, v []byte) error {
	s.log("put " + string(k) + "=" + string(v))
	return s.KeyValueStore.Put(k, v)
}

func (s *contextRecorder) Delete(k []byte) error {
	s.log("delete " + string(k))
	return s.KeyValueStore.Delete(k)
}

// A flush hands the store below the record context of each entry's last
// write just before writing it there (as Kafka Streams' caching stores set
// the cached entry's context before writing it below), so a changelog
// logger stamps it with the timestamp of the record that caused it, not of
// the record processed at flush time; writes made without a context carry
// none.
func TestCacheFlushSetsRecordContextBelow(t *testing.T) {
	below := &contextRecorder{KeyValueStore: state.NewInMemoryKeyValueStore("s")}
	c := state.NewCachingStore(below, state.NewCache(1<<20))
	put := func(k, v string) {
		t.Helper()
		if err := c.Put([]byte(k), []byte(v)); err != nil {
			t.Fatal(err)
		}
	}
	put("a", "0") // before any context
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	c.SetRecordContext(state.RecordContext{Timestamp: 10})
	put("a", "1")
	put("b", "1")
	c.SetRecordContext(state.RecordContext{Timestamp: 20})
	put("a", "2")
	c.SetRecordContext(state.RecordContext{Timestamp: 30})
	if err := c.Delete([]byte("a")); err != nil {
		t.Fatal(err)
	}
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	want := []string{"put a=0@none", "put b=1@10", "delete a@30"}
	if !slices.Equal(below.writes, want) {
		t.Errorf("writes below:\n got  %v\n want %v", below.writes, want)
	}
}
