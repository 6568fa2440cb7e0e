package dsl

import "github.com/sluicehq/sluice/operators"

// Maybe is a value that may be absent: how the DSL shows a Kafka null (a
// null key, a tombstone), a selector's "no key" and, in joins, the side
// with no match. See operators.Maybe.
type Maybe[V any] = operators.Maybe[V]

// Some returns a present v.
func Some[V any](v V) Maybe[V] { return operators.Some(v) }

// None returns an absent value of type V.
func None[V any]() Maybe[V] { return operators.None[V]() }
