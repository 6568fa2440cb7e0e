package nodes

import (
	"encoding/binary"
	"fmt"
	"math/bits"

	"github.com/sluicehq/sluice/serde"
)

// The wire formats of a foreign-key join's internal topics and subscription
// store, byte for byte those of Kafka Streams 4.3.1
// (org.apache.kafka.streams.kstream.internals.foreignkeyjoin), so that
// either can read what the other wrote.

// FKInstruction is what a subscription asks of the right side of a
// foreign-key join (Kafka Streams' SubscriptionWrapper.Instruction).
type FKInstruction byte

const (
	// DeleteKeyNoPropagate removes the subscription and sends nothing back:
	// the left row moved to another foreign key, whose subscription answers.
	DeleteKeyNoPropagate FKInstruction = 0
	// DeleteKeyAndPropagate removes the subscription and sends back a
	// response without a right value (the left row was deleted, or its
	// foreign key became null in an inner join).
	DeleteKeyAndPropagate FKInstruction = 1
	// PropagateNullIfNoFKValAvailable subscribes and sends back the right
	// row, or a response without a value when there is none (a changed
	// foreign key; every update of a left join).
	PropagateNullIfNoFKValAvailable FKInstruction = 2
	// PropagateOnlyIfFKValAvailable subscribes and sends back the right row
	// only if there is one (a new left row, or one whose foreign key did
	// not change, in an inner join).
	PropagateOnlyIfFKValAvailable FKInstruction = 3
)

// String implements fmt.Stringer with Kafka Streams' names.
func (i FKInstruction) String() string {
	switch i {
	case DeleteKeyNoPropagate:
		return "DELETE_KEY_NO_PROPAGATE"
	case DeleteKeyAndPropagate:
		return "DELETE_KEY_AND_PROPAGATE"
	case PropagateNullIfNoFKValAvailable:
		return "PROPAGATE_NULL_IF_NO_FK_VAL_AVAILABLE"
	case PropagateOnlyIfFKValAvailable:
		return "PROPAGATE_ONLY_IF_FK_VAL_AVAILABLE"
	}
	return fmt.Sprintf("FKInstruction(%d)", byte(i))
}

// SubscriptionVersion is the version of the subscriptions Sluice writes:
// Kafka Streams' SubscriptionWrapper.CURRENT_VERSION, 1, which carries the
// left record's partition.
const SubscriptionVersion = 1

// ValueHash is the 128-bit murmur3 hash of a left value's serialization
// (Kafka Streams' Murmur3.hash128, as two longs); Present is false for
// Kafka Streams' null hash, the hash of a deleted row.
type ValueHash struct {
	H       [2]int64
	Present bool
}

// Subscription is a left row's subscription to a foreign key, the value of
// a subscription-registration record and of the subscription store (Kafka
// Streams' SubscriptionWrapper). Its wire format:
//
//	{1 bit hash-is-null}{7 bits version}{1 byte instruction}{optional 16-byte hash}{primary key}{4-byte primary partition, version 1}
type Subscription[K any] struct {
	Hash        ValueHash
	Instruction FKInstruction
	Version     byte
	PrimaryKey  K
	// PrimaryPartition is the partition of the left row; HasPartition is
	// false for a version-0 subscription, which has none.
	PrimaryPartition int32
	HasPartition     bool
}

// SubscriptionSerde encodes subscriptions; keys encodes their primary keys.
func SubscriptionSerde[K any](keys serde.Serde[K]) serde.Serde[Subscription[K]] {
	return subscriptionSerde[K]{keys: keys}
}

type subscriptionSerde[K any] struct{ keys serde.Serde[K] }

func (s subscriptionSerde[K]) Encode(dst []byte, v Subscription[K]) ([]byte, error) {
	if v.Version > SubscriptionVersion {
		return dst, fmt.Errorf("sluice: subscription version %d is not supported (at most %d)", v.Version, SubscriptionVersion)
	}
	if v.Version > 0 && !v.HasPartition {
		return dst, fmt.Errorf("sluice: a version-%d subscription needs its primary partition", v.Version)
	}
	first := v.Version
	if !v.Hash.Present {
		first |= 0x80
	}
	dst = append(dst, first, byte(v.Instruction))
	if v.Hash.Present {
		dst = binary.BigEndian.AppendUint64(dst, uint64(v.Hash.H[0]))
		dst = binary.BigEndian.AppendUint64(dst, uint64(v.Hash.H[1]))
	}
	dst, err := s.keys.Encode(dst, v.PrimaryKey)
	if err != nil {
		return dst, fmt.Errorf("sluice: subscription: cannot serialize primary key: %w", err)
	}
	if v.Version > 0 {
		dst = binary.BigEndian.AppendUint32(dst, uint32(v.PrimaryPartition))
	}
	return dst, nil
}

func (s subscriptionSerde[K]) Decode(b []byte) (Subscription[K], error) {
	var v Subscription[K]
	if len(b) < 2 {
		return v, fmt.Errorf("sluice: subscription of %d bytes is too short", len(b))
	}
	v.Version = b[0] & 0x7f
	v.Hash.Present = b[0]&0x80 == 0
	v.Instruction = FKInstruction(b[1])
	if v.Version > SubscriptionVersion {
		return v, fmt.Errorf("sluice: subscription version %d is not supported (at most %d)", v.Version, SubscriptionVersion)
	}
	if v.Instruction > PropagateOnlyIfFKValAvailable {
		return v, fmt.Errorf("sluice: subscription: unknown instruction byte %d", b[1])
	}
	b = b[2:]
	if v.Hash.Present {
		if len(b) < 16 {
			return v, fmt.Errorf("sluice: subscription: %d bytes left for a 16-byte hash", len(b))
		}
		v.Hash.H[0] = int64(binary.BigEndian.Uint64(b))
		v.Hash.H[1] = int64(binary.BigEndian.Uint64(b[8:]))
		b = b[16:]
	}
	if v.Version > 0 {
		if len(b) < 4 {
			return v, fmt.Errorf("sluice: subscription: %d bytes left for a 4-byte primary partition", len(b))
		}
		v.PrimaryPartition = int32(binary.BigEndian.Uint32(b[len(b)-4:]))
		v.HasPartition = true
		b = b[:len(b)-4]
	}
	pk, err := s.keys.Decode(b)
	if err != nil {
		return v, fmt.Errorf("sluice: subscription: cannot deserialize primary key: %w", err)
	}
	v.PrimaryKey = pk
	return v, nil
}

// ResponseVersion is the version of Kafka Streams'
// SubscriptionResponseWrapper, the only one there is.
const ResponseVersion = 0

// Response is the right side's answer to a subscription, the value of a
// subscription-response record (Kafka Streams' SubscriptionResponseWrapper):
// the hash of the left value that subscribed, and the right row's value,
// if any. Its wire format:
//
//	{1 bit hash-is-null}{7 bits version}{optional 16-byte hash}{right value, absent if no bytes}
//
// As in Kafka Streams a right value that serializes to no bytes reads back
// as absent. PrimaryPartition is not on the wire: it picks the partition
// the response is written to (-1: by its key).
type Response[VO any] struct {
	Hash             ValueHash
	Value            VO
	HasValue         bool
	Version          byte
	PrimaryPartition int32
}

// ResponseSerde encodes responses; values encodes the right values.
func ResponseSerde[VO any](values serde.Serde[VO]) serde.Serde[Response[VO]] {
	return responseSerde[VO]{values: values}
}

type responseSerde[VO any] struct{ values serde.Serde[VO] }

func (s responseSerde[VO]) Encode(dst []byte, v Response[VO]) ([]byte, error) {
	if v.Version&0x80 != 0 {
		return dst, fmt.Errorf("sluice: subscription response version %d out of range", v.Version)
	}
	first := v.Version
	if !v.Hash.Present {
		first |= 0x80
	}
	dst = append(dst, first)
	if v.Hash.Present {
		dst = binary.BigEndian.AppendUint64(dst, uint64(v.Hash.H[0]))
		dst = binary.BigEndian.AppendUint64(dst, uint64(v.Hash.H[1]))
	}
	if !v.HasValue {
		return dst, nil
	}
	dst, err := s.values.Encode(dst, v.Value)
	if err != nil {
		return dst, fmt.Errorf("sluice: subscription response: cannot serialize foreign value: %w", err)
	}
	return dst, nil
}

func (s responseSerde[VO]) Decode(b []byte) (Response[VO], error) {
	v := Response[VO]{PrimaryPartition: -1}
	if len(b) < 1 {
		return v, fmt.Errorf("sluice: subscription response of 0 bytes")
	}
	v.Version = b[0] & 0x7f
	v.Hash.Present = b[0]&0x80 == 0
	b = b[1:]
	if v.Hash.Present {
		if len(b) < 16 {
			return v, fmt.Errorf("sluice: subscription response: %d bytes left for a 16-byte hash", len(b))
		}
		v.Hash.H[0] = int64(binary.BigEndian.Uint64(b))
		v.Hash.H[1] = int64(binary.BigEndian.Uint64(b[8:]))
		b = b[16:]
	}
	if len(b) == 0 {
		return v, nil
	}
	val, err := s.values.Decode(b)
	if err != nil {
		return v, fmt.Errorf("sluice: subscription response: cannot deserialize foreign value: %w", err)
	}
	v.Value, v.HasValue = val, true
	return v, nil
}

// AppendCombinedKey appends the subscription store's key of a foreign key
// and a primary key, both serialized (Kafka Streams' CombinedKeySchema):
// the foreign key's length as a 4-byte big-endian int, the foreign key,
// the primary key. With no primary key it is the prefix of every
// subscription to fk.
func AppendCombinedKey(dst, fk, pk []byte) []byte {
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(fk)))
	dst = append(dst, fk...)
	return append(dst, pk...)
}

// SplitCombinedKey splits a subscription store key into its serialized
// foreign and primary keys.
func SplitCombinedKey(b []byte) (fk, pk []byte, err error) {
	if len(b) < 4 {
		return nil, nil, fmt.Errorf("sluice: combined key of %d bytes has no length", len(b))
	}
	n := binary.BigEndian.Uint32(b)
	if uint64(n) > uint64(len(b)-4) {
		return nil, nil, fmt.Errorf("sluice: combined key of %d bytes: foreign key length %d too large", len(b), n)
	}
	return b[4 : 4+n], b[4+n:], nil
}

// murmur3Seed is Kafka Streams' Murmur3.DEFAULT_SEED.
const murmur3Seed = 104729

// Hash128 is Kafka Streams' Murmur3.hash128 (the x64 128-bit variant of
// murmur3, seed 104729), as two longs.
func Hash128(data []byte) [2]int64 {
	const (
		c1 = 0x87c37b91114253d5
		c2 = 0x4cf5ad432745937f
	)
	h1, h2 := uint64(murmur3Seed), uint64(murmur3Seed)
	n := len(data)
	nblocks := n / 16
	for i := 0; i < nblocks; i++ {
		k1 := binary.LittleEndian.Uint64(data[i*16:])
		k2 := binary.LittleEndian.Uint64(data[i*16+8:])
		k1 *= c1
		k1 = bits.RotateLeft64(k1, 31)
		k1 *= c2
		h1 ^= k1
		h1 = bits.RotateLeft64(h1, 27)
		h1 += h2
		h1 = h1*5 + 0x52dce729
		k2 *= c2
		k2 = bits.RotateLeft64(k2, 33)
		k2 *= c1
		h2 ^= k2
		h2 = bits.RotateLeft64(h2, 31)
		h2 += h1
		h2 = h2*5 + 0x38495ab5
	}
	tail := data[nblocks*16:]
	var k1, k2 uint64
	switch len(tail) {
	case 15:
		k2 ^= uint64(tail[14]) << 48
		fallthrough
	case 14:
		k2 ^= uint64(tail[13]) << 40
		fallthrough
	case 13:
		k2 ^= uint64(tail[12]) << 32
		fallthrough
	case 12:
		k2 ^= uint64(tail[11]) << 24
		fallthrough
	case 11:
		k2 ^= uint64(tail[10]) << 16
		fallthrough
	case 10:
		k2 ^= uint64(tail[9]) << 8
		fallthrough
	case 9:
		k2 ^= uint64(tail[8])
		k2 *= c2
		k2 = bits.RotateLeft64(k2, 33)
		k2 *= c1
		h2 ^= k2
		fallthrough
	case 8:
		k1 ^= uint64(tail[7]) << 56
		fallthrough
	case 7:
		k1 ^= uint64(tail[6]) << 48
		fallthrough
	case 6:
		k1 ^= uint64(tail[5]) << 40
		fallthrough
	case 5:
		k1 ^= uint64(tail[4]) << 32
		fallthrough
	case 4:
		k1 ^= uint64(tail[3]) << 24
		fallthrough
	case 3:
		k1 ^= uint64(tail[2]) << 16
		fallthrough
	case 2:
		k1 ^= uint64(tail[1]) << 8
		fallthrough
	case 1:
		k1 ^= uint64(tail[0])
		k1 *= c1
		k1 = bits.RotateLeft64(k1, 31)
		k1 *= c2
		h1 ^= k1
	}
	h1 ^= uint64(n)
	h2 ^= uint64(n)
	h1 += h2
	h2 += h1
	h1 = fmix64(h1)
	h2 = fmix64(h2)
	h1 += h2
	h2 += h1
	return [2]int64{int64(h1), int64(h2)}
}

func fmix64(h uint64) uint64 {
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	h *= 0xc4ceb9fe1a85ec53
	h ^= h >> 33
	return h
}
