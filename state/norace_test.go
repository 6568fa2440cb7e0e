//go:build !race

package state_test

// allocSlack is the allocations per operation the allocation tests
// tolerate (see race_test.go): none.
const allocSlack = 0
