package state

import (
	"fmt"
	"iter"

	"github.com/sluicehq/sluice/serde"
)

// KV is a typed view of a KeyValueStore: it encodes keys and values with the
// serdes given to NewKV, so the store (and its changelog) holds the same
// bytes a Kafka Streams application would write with the same serdes.
//
// A KV reuses internal buffers to encode keys and values, so it is not safe
// for concurrent use, like the store under it; a task creates its own. Get
// and Put allocate nothing beyond what the serdes and the store allocate:
// with serde.Int64 keys and values over an in-memory store, Get and the
// overwrite of a present key allocate nothing at all.
//
// Values returned by Get and yielded by iteration are as long-lived as the
// value serde makes them: a serde that copies (serde.String, serde.JSON, the
// numeric serdes) gives values the caller may keep; serde.Bytes gives slices
// of the store's memory, valid only until the next write to the store (and,
// for iteration, the next step).
//
// Errors from the serdes are wrapped in an error naming the store, for
// example `sluice: store "counts": decode value: sluice: serde int64: ...`;
// errors.As finds the *serde.DecodeError. Errors from the store are returned
// as they are.
type KV[K, V any] struct {
	store  KeyValueStore
	keys   serde.Serde[K]
	values serde.Serde[V]
	kbuf   []byte // key encoding buffer
	vbuf   []byte // value encoding buffer
	err    error  // what ended the latest iteration
}

// NewKV returns a typed view of store with keys encoded by keys and values by
// values. The view does not own the store: closing the store is the
// caller's business, and several views of one store must agree on the serdes.
func NewKV[K, V any](store KeyValueStore, keys serde.Serde[K], values serde.Serde[V]) *KV[K, V] {
	return &KV[K, V]{store: store, keys: keys, values: values}
}

// Store returns the store under the view.
func (kv *KV[K, V]) Store() KeyValueStore { return kv.store }

// Get returns the value of k; ok is false if k is absent. On error the value
// is the zero V and ok is false.
func (kv *KV[K, V]) Get(k K) (v V, ok bool, err error) {
	kb, err := kv.encodeKey(k)
	if err != nil {
		return v, false, err
	}
	b, ok, err := kv.store.Get(kb)
	if err != nil || !ok {
		return v, false, err
	}
	v, err = kv.values.Decode(b)
	if err != nil {
		var zero V
		return zero, false, kv.serdeError("decode value", err)
	}
	return v, true, nil
}

// Put sets the value of k to v.
func (kv *KV[K, V]) Put(k K, v V) error {
	kb, err := kv.encodeKey(k)
	if err != nil {
		return err
	}
	vb, err := kv.values.Encode(kv.vbuf[:0], v)
	if err != nil {
		return kv.serdeError("encode value", err)
	}
	kv.vbuf = vb
	return kv.store.Put(kb, vb)
}

// Delete removes k; deleting an absent key is not an error.
func (kv *KV[K, V]) Delete(k K) error {
	kb, err := kv.encodeKey(k)
	if err != nil {
		return err
	}
	return kv.store.Delete(kb)
}

// All yields every entry in the order of the encoded keys (bytes.Compare),
// which for serde.Int64 keys is not numeric order where negative keys are
// concerned: they sort after the positive ones.
//
// If a key or value cannot be decoded the iteration stops and Err returns
// the error. The store's rules on writes during iteration apply (see
// NewInMemoryKeyValueStore).
func (kv *KV[K, V]) All() iter.Seq2[K, V] {
	return func(yield func(K, V) bool) {
		kv.err = nil
		kv.each(kv.store.Range(nil, nil), yield)
	}
}

// Range yields the entries whose encoded key is at least the encoding of
// from and less than the encoding of to, in encoded-key order. Use All for
// an unbounded range.
//
// If a bound cannot be encoded, or a key or value cannot be decoded, the
// iteration stops (or yields nothing) and Err returns the error.
func (kv *KV[K, V]) Range(from, to K) iter.Seq2[K, V] {
	return func(yield func(K, V) bool) {
		kv.err = nil
		fb, err := kv.encodeBound(from)
		if err != nil {
			kv.err = err
			return
		}
		tb, err := kv.encodeBound(to)
		if err != nil {
			kv.err = err
			return
		}
		kv.each(kv.store.Range(fb, tb), yield)
	}
}

// Prefix yields the entries whose encoded key starts with the encoding of p,
// in encoded-key order. This is a prefix of bytes, so it is meaningful for
// serdes such as serde.String and serde.Bytes whose encodings concatenate;
// an empty encoding of p yields every entry.
//
// If p cannot be encoded, or a key or value cannot be decoded, the iteration
// stops (or yields nothing) and Err returns the error.
func (kv *KV[K, V]) Prefix(p K) iter.Seq2[K, V] {
	return func(yield func(K, V) bool) {
		kv.err = nil
		pb, err := kv.encodeBound(p)
		if err != nil {
			kv.err = err
			return
		}
		kv.each(kv.store.Prefix(pb), yield)
	}
}

// Err returns the error that ended the most recent iteration over All, Range
// or Prefix before its end (a serde's, or the store's if it reports
// iteration errors, see IterErrReporter), or nil if it ran to the end or
// the loop body stopped it. Each iteration clears it when it starts, so check it after the
// loop and before starting another:
//
//	for k, v := range kv.All() {
//		...
//	}
//	if err := kv.Err(); err != nil {
//		...
//	}
//
// A closed store yields nothing and leaves Err nil; its other methods
// report ErrClosed.
func (kv *KV[K, V]) Err() error { return kv.err }

func (kv *KV[K, V]) each(seq iter.Seq2[[]byte, []byte], yield func(K, V) bool) {
	for kb, vb := range seq {
		k, err := kv.keys.Decode(kb)
		if err != nil {
			kv.err = kv.serdeError("decode key", err)
			return
		}
		v, err := kv.values.Decode(vb)
		if err != nil {
			kv.err = kv.serdeError("decode value", err)
			return
		}
		if !yield(k, v) {
			return
		}
	}
	if r, ok := kv.store.(IterErrReporter); ok {
		if err := r.IterErr(); err != nil {
			kv.err = err
		}
	}
}

// encodeKey encodes k into the key buffer. The result is never nil, so that
// an empty encoding stays a key.
func (kv *KV[K, V]) encodeKey(k K) ([]byte, error) {
	kb, err := kv.keys.Encode(kv.kbuf[:0], k)
	if err != nil {
		return nil, kv.serdeError("encode key", err)
	}
	if kb == nil {
		kb = []byte{}
	}
	kv.kbuf = kb
	return kb, nil
}

// encodeBound encodes an iteration bound into a new slice: unlike the key
// buffer, it must outlive calls the loop body makes on the view, whether or
// not the store copies it. The result is never nil, so that an empty
// encoding stays a bound rather than "no bound".
func (kv *KV[K, V]) encodeBound(k K) ([]byte, error) {
	b, err := kv.keys.Encode(nil, k)
	if err != nil {
		return nil, kv.serdeError("encode key", err)
	}
	if b == nil {
		b = []byte{}
	}
	return b, nil
}

func (kv *KV[K, V]) serdeError(op string, err error) error {
	return fmt.Errorf("sluice: store %q: %s: %w", kv.store.Name(), op, err)
}
