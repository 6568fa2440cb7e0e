package state

import (
	"errors"
	"iter"
)

// ErrClosed is returned by a store used after Close.
var ErrClosed = errors.New("sluice: state store is closed")

// Store is what every state store has, whatever its kind.
type Store interface {
	// Name is the store's name in the topology.
	Name() string
	// Flush makes the writes so far durable (a no-op for in-memory stores).
	Flush() error
	// Close releases the store. Further use returns ErrClosed.
	Close() error
}

// KeyValueStore is a store of byte keys to byte values, ordered by key.
//
// The store copies keys and values passed to Put; slices returned by Get and
// yielded by iteration belong to the store and are valid until the next
// write to the store.
type KeyValueStore interface {
	Store
	// Get returns the value of key; ok is false if the key is absent.
	Get(key []byte) (value []byte, ok bool, err error)
	// Put sets the value of key. A nil value is stored as an empty value, not
	// a deletion; use Delete to delete.
	Put(key, value []byte) error
	// Delete removes key; deleting an absent key is not an error.
	Delete(key []byte) error
	// Range yields the entries with from <= key < to in key order. A nil from
	// means from the first key, a nil to means through the last key.
	Range(from, to []byte) iter.Seq2[[]byte, []byte]
	// Prefix yields the entries whose key starts with prefix, in key order.
	Prefix(prefix []byte) iter.Seq2[[]byte, []byte]
	// ApproximateCount is the number of entries, exact for in-memory stores.
	ApproximateCount() int64
}
