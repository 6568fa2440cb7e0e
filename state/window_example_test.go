package state_test

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/sluicehq/sluice/state"
)

func ExampleNewWindowStore() {
	// Clicks per user in tumbling windows of one minute, kept for ten
	// minutes after their start, in memory.
	const minute = int64(time.Minute / time.Millisecond)
	clicks, err := state.NewWindowStore(state.NewInMemoryKeyValueStore("clicks-per-minute"),
		state.WindowStoreOptions{Retention: 10 * time.Minute})
	if err != nil {
		panic(err)
	}
	defer clicks.Close()

	for _, c := range []struct {
		user string
		ts   int64 // ms
	}{
		{"alice", 5_000}, {"bob", 20_000}, {"alice", 50_000},
		{"alice", 70_000}, {"alice", 10*minute + 30_000}, {"bob", 30_000},
	} {
		start := c.ts - c.ts%minute
		var n uint64
		if v, ok, err := clicks.Fetch([]byte(c.user), start); err != nil {
			panic(err)
		} else if ok {
			n = binary.BigEndian.Uint64(v)
		}
		err := clicks.Put([]byte(c.user), start, binary.BigEndian.AppendUint64(nil, n+1))
		if errors.Is(err, state.ErrWindowExpired) {
			fmt.Printf("late click of %s at %dms dropped\n", c.user, c.ts)
			continue
		}
		if err != nil {
			panic(err)
		}
	}

	// The store's stream time is the latest window start: minute 10, after
	// Alice's click at 10m30s. Her first window, of two clicks, started ten
	// minutes before that, and has expired.
	for start, v := range clicks.FetchKey([]byte("alice"), 0, 20*minute) {
		fmt.Printf("alice, minute %d: %d\n", start/minute, binary.BigEndian.Uint64(v))
	}
	if err := clicks.IterErr(); err != nil {
		panic(err)
	}
	fmt.Println("stream time:", clicks.ObservedStreamTime()/minute, "minutes")
	// Output:
	// late click of bob at 30000ms dropped
	// alice, minute 1: 1
	// alice, minute 10: 1
	// stream time: 10 minutes
}

func ExampleNewSessionStore() {
	db, err := state.OpenPebble("state", state.PebbleOptions{FS: vfs.NewMem()})
	if err != nil {
		panic(err)
	}
	defer db.Close()

	// Sessions of activity with an inactivity gap of 5s, counting events,
	// in a Pebble store of the DB.
	const gap = 5_000 // ms
	sessions, err := state.NewSessionStore(db.KeyValueStore("0_1/sessions"),
		state.SessionStoreOptions{Retention: time.Hour})
	if err != nil {
		panic(err)
	}
	defer sessions.Close()

	for _, ts := range []int64{1_000, 4_000, 20_000, 12_000, 7_000} {
		// The sessions an event at ts merges with: those that end at or
		// after ts-gap and start at or before ts+gap.
		start, end, n := ts, ts, uint64(1)
		for s, v := range sessions.FindSessions([]byte("alice"), ts-gap, ts+gap) {
			start, end = min(start, s.Start), max(end, s.End)
			n += binary.BigEndian.Uint64(v)
			if err := sessions.Remove(s.Key, s.Start, s.End); err != nil {
				panic(err)
			}
		}
		if err := sessions.IterErr(); err != nil {
			panic(err)
		}
		if err := sessions.Put([]byte("alice"), start, end, binary.BigEndian.AppendUint64(nil, n)); err != nil {
			panic(err)
		}
	}

	// The event at 7s joined [1s,4s] and [12s,12s] into one session.
	for s, v := range sessions.All() {
		fmt.Printf("%s [%d,%d]: %d events\n", s.Key, s.Start, s.End, binary.BigEndian.Uint64(v))
	}
	if err := sessions.IterErr(); err != nil {
		panic(err)
	}
	// Output:
	// alice [1000,12000]: 4 events
	// alice [20000,20000]: 1 events
}
