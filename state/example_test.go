package state_test

import (
	"fmt"

	"github.com/sluicehq/sluice/serde"
	"github.com/sluicehq/sluice/state"
)

func ExampleNewKV() {
	store := state.NewInMemoryKeyValueStore("word-counts")
	defer store.Close()
	counts := state.NewKV(store, serde.String, serde.Int64)

	for _, w := range []string{"to", "be", "or", "not", "to", "be"} {
		n, _, err := counts.Get(w) // 0 if absent
		if err != nil {
			panic(err)
		}
		if err := counts.Put(w, n+1); err != nil {
			panic(err)
		}
	}

	for w, n := range counts.All() {
		fmt.Println(w, n)
	}
	if err := counts.Err(); err != nil {
		panic(err)
	}
	// Output:
	// be 2
	// not 1
	// or 1
	// to 2
}

func ExampleNewInMemoryKeyValueStore() {
	store := state.NewInMemoryKeyValueStore("users")
	defer store.Close()
	for _, k := range []string{"user/2", "user/1", "group/1", "user/10"} {
		_ = store.Put([]byte(k), []byte("..."))
	}

	// Keys are in bytes order: "user/10" sorts before "user/2".
	for k := range store.Prefix([]byte("user/")) {
		fmt.Println(string(k))
	}
	fmt.Println(store.ApproximateCount())
	// Output:
	// user/1
	// user/10
	// user/2
	// 4
}
