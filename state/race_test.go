//go:build race

package state_test

// allocSlack is the allocations per operation the allocation tests
// tolerate: under the race detector sync.Pool drops pooled objects at
// random (to expose misuse), so Pebble's pooled iterators and buffers are
// sometimes allocated anew.
const allocSlack = 1
