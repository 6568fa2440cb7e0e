// Package partition computes the partition of a keyed record exactly as
// Kafka's default partitioner does, so records produced by Java clients,
// Kafka Streams and Sluice for the same key land in the same partition.
package partition

// Murmur2 is Kafka's murmur2 hash (org.apache.kafka.common.utils.Utils.murmur2).
func Murmur2(data []byte) int32 {
	const (
		seed uint32 = 0x9747b28c
		m    uint32 = 0x5bd1e995
		r           = 24
	)
	length := len(data)
	h := seed ^ uint32(length)
	n4 := length / 4
	for i := range n4 {
		i4 := i * 4
		k := uint32(data[i4]) | uint32(data[i4+1])<<8 | uint32(data[i4+2])<<16 | uint32(data[i4+3])<<24
		k *= m
		k ^= k >> r
		k *= m
		h *= m
		h ^= k
	}
	tail := length &^ 3
	switch length % 4 {
	case 3:
		h ^= uint32(data[tail+2]) << 16
		fallthrough
	case 2:
		h ^= uint32(data[tail+1]) << 8
		fallthrough
	case 1:
		h ^= uint32(data[tail])
		h *= m
	}
	h ^= h >> 13
	h *= m
	h ^= h >> 15
	return int32(h)
}

// ForKey returns the partition of key among n partitions:
// toPositive(murmur2(key)) % n, as Kafka's BuiltInPartitioner.
func ForKey(key []byte, n int) int {
	return int(uint32(Murmur2(key))&0x7fffffff) % n
}
