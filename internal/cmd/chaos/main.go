// Command chaos checks Sluice's processing guarantees under failures: it
// counts records per key with several worker processes while it kills them
// (kill -9), pauses them past their session and transaction timeouts
// (SIGSTOP, SIGCONT: zombies) and restarts the broker, then reads the
// output with a read_committed consumer and checks every count.
//
//	go run ./internal/cmd/chaos                        # kfake broker in this process, exactly-once
//	go run ./internal/cmd/chaos -guarantee alos -records 50000 -kills 3 -zombies 1
//	scripts/kafka.sh run .kafka/chaos -- sh -c 'go run ./internal/cmd/chaos -broker real \
//	    -brokers $KAFKA_BROKERS -kafka-dir .kafka/chaos'
//
// One binary, five roles (-role):
//
//   - controller (the default): starts the broker (kfake, in process, with
//     a data directory and a fixed port so that it can be closed and
//     reopened; or a real broker given by -brokers, restarted with
//     scripts/kafka.sh restart), creates the input and output topics,
//     produces -records records round-robin over -keys keys at a steady
//     rate, runs -instances worker processes, injects the seeded fault
//     schedule, waits until the group has committed the whole input and the
//     output has no open transaction, verifies, prints a summary and exits 1
//     on any violation.
//   - worker: one Sluice instance: Stream(in) → GroupByKey → Count →
//     ToStream → To(out), record cache off (every update is written),
//     static member "w<id>", session timeout 6 s, JSON logs on stderr.
//   - verify: the check alone, on topics that exist.
//   - failover: the failover measurement (see failover.go).
//   - history: what a failed run wrote for one key (see history.go).
//
// What the verification asserts (per key k with n_k input records, the
// output values in offset order): exactly-once: the values are exactly
// 1, 2, ..., n_k, each once, in order; at-least-once: the last value is
// n_k, every value of 1..n_k is present and none is above n_k (repeats,
// the reprocessing after a failure, are allowed and counted).
package main

import (
	"flag"
	"fmt"
	"os"
	"strings"
)

func main() {
	role := "controller"
	// The role is read before the flags so that each role has its own set.
	args := os.Args[1:]
	if len(args) >= 2 && (args[0] == "-role" || args[0] == "--role") {
		role, args = args[1], args[2:]
	} else if len(args) >= 1 && (strings.HasPrefix(args[0], "-role=") || strings.HasPrefix(args[0], "--role=")) {
		_, role, _ = strings.Cut(args[0], "=")
		args = args[1:]
	}
	var err error
	switch role {
	case "controller":
		err = controllerMain(args)
	case "worker":
		err = workerMain(args)
	case "verify":
		err = verifyMain(args)
	case "failover":
		err = failoverMain(args)
	case "history":
		err = historyMain(args)
	default:
		err = fmt.Errorf("unknown role %q: want controller, worker, verify, failover or history", role)
	}
	if err == flag.ErrHelp {
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "chaos:", err)
		os.Exit(1)
	}
}
