package state_test

import (
	"fmt"

	"github.com/cockroachdb/pebble/v2/vfs"

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

func ExampleOpenPebble() {
	// One DB for the instance, on an in-memory file system here; the
	// runtime opens it in its state directory on vfs.Default.
	db, err := state.OpenPebble("state", state.PebbleOptions{FS: vfs.NewMem()})
	if err != nil {
		panic(err)
	}
	defer db.Close()

	// Each task's stores under their own names.
	counts := db.KeyValueStore("0_1/counts")
	totals := db.KeyValueStore("0_1/totals")

	// At commit, the dirty entries of the task's stores and the input
	// offset they reflect go in one atomic batch.
	batch := db.NewBatch()
	defer batch.Close()
	_ = batch.Put(counts, []byte("apple"), []byte("3"))
	_ = batch.Put(counts, []byte("pear"), []byte("1"))
	_ = batch.Put(totals, []byte("fruit"), []byte("4"))
	_ = batch.PutMeta([]byte("offsets/0_1"), []byte("words-1@1042"))
	if err := batch.Commit(false); err != nil {
		panic(err)
	}

	for k, v := range counts.Range(nil, nil) {
		fmt.Printf("%s=%s\n", k, v)
	}
	offsets, _, _ := db.GetMeta([]byte("offsets/0_1"))
	fmt.Println(string(offsets))
	// Output:
	// apple=3
	// pear=1
	// words-1@1042
}
