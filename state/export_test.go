package state

import "github.com/cockroachdb/pebble/v2"

// PebbleMetricsForTest returns the metrics of the Pebble DB under d, for the
// benchmarks.
func PebbleMetricsForTest(d *PebbleDB) *pebble.Metrics { return d.db.Metrics() }

// PebbleFlushMemTableForTest flushes the memtable of d to an sstable.
func PebbleFlushMemTableForTest(d *PebbleDB) error { return d.db.Flush() }

// FetchCacheBytesForTest returns the bytes the fetch cache of s counts, 0
// without one.
func FetchCacheBytesForTest(s *WindowStore) int64 {
	if s.cache == nil {
		return 0
	}
	return s.cache.bytes
}
