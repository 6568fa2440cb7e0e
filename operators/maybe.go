package operators

import "fmt"

// Maybe is a value that may be absent. It is how the typed API shows a
// Kafka null (a null key, a tombstone's value), a mapper's "no key" (skip
// the record) and, in joins, the side that has no match: never as a zero
// value. The zero Maybe is absent.
type Maybe[V any] struct {
	v  V
	ok bool
}

// Some returns a present v.
func Some[V any](v V) Maybe[V] { return Maybe[V]{v: v, ok: true} }

// None returns an absent value of type V.
func None[V any]() Maybe[V] { return Maybe[V]{} }

// MaybeOf returns v, present if ok: the inverse of Get.
func MaybeOf[V any](v V, ok bool) Maybe[V] {
	if !ok {
		return Maybe[V]{}
	}
	return Maybe[V]{v: v, ok: true}
}

// Get returns the value and whether it is present; an absent value is
// returned as the zero V with false.
func (m Maybe[V]) Get() (V, bool) { return m.v, m.ok }

// Present reports whether the value is present.
func (m Maybe[V]) Present() bool { return m.ok }

// Or returns the value if present, else def.
func (m Maybe[V]) Or(def V) V {
	if m.ok {
		return m.v
	}
	return def
}

// String implements fmt.Stringer: the value, or "<absent>".
func (m Maybe[V]) String() string {
	if !m.ok {
		return "<absent>"
	}
	return fmt.Sprint(m.v)
}

// MaybeKey returns the record's key, absent for a Kafka null key.
func (r Record[K, V]) MaybeKey() Maybe[K] { return MaybeOf(r.Key, !r.NullKey) }

// MaybeValue returns the record's value, absent for a tombstone.
func (r Record[K, V]) MaybeValue() Maybe[V] { return MaybeOf(r.Value, !r.Tombstone) }

// SetKey sets the record's key and NullKey from k.
func (r *Record[K, V]) SetKey(k Maybe[K]) { r.Key, r.NullKey = k.v, !k.ok }

// SetValue sets the record's value and Tombstone from v.
func (r *Record[K, V]) SetValue(v Maybe[V]) { r.Value, r.Tombstone = v.v, !v.ok }

// NewMaybe returns the new value of a table update, absent for a delete.
func (c Change[V]) NewMaybe() Maybe[V] { return MaybeOf(c.New, c.HasNew) }

// OldMaybe returns the value a table update replaced, absent when there was
// none.
func (c Change[V]) OldMaybe() Maybe[V] { return MaybeOf(c.Old, c.HasOld) }
