#!/usr/bin/env bash
# Compares two revisions of Sluice with the benchmark, side by side in one
# run on one machine (docs/performance.md, "Comparing two revisions"):
# builds internal/cmd/bench at each revision (a git revision, or . for the
# working tree) and runs the two builds alternately (bench -compare: A B,
# then B A, ...), printing each workload's medians and B's factor over A.
#
#   scripts/abbench.sh [-rounds N] REV_A REV_B -- BENCH_ARGS...
#
# BENCH_ARGS must be flags both builds know. On real Kafka, run it inside
# scripts/kafka.sh run, so that both builds use one broker:
#
#   scripts/kafka.sh run -- sh -c 'scripts/abbench.sh c164a9d HEAD -- -brokers $KAFKA_BROKERS -workers 1 -runs 1 -only count-alos,ssjoin'
#
# The builds are kept in .bench/ab, one per commit.
set -euo pipefail
rounds=3
if [ "${1:-}" = -rounds ]; then
  rounds=$2
  shift 2
fi
if [ $# -lt 3 ] || [ "$3" != -- ]; then
  sed -n '2,15p' "$0" >&2
  exit 2
fi
a=$1 b=$2
shift 3
root=$(git rev-parse --show-toplevel)
out=$root/.bench/ab
mkdir -p "$out"

# build REV prints the path of the benchmark built at REV.
build() {
  local rev=$1 bin sha wt
  if [ "$rev" = . ]; then
    bin=$out/bench-worktree
    (cd "$root" && go build -o "$bin" ./internal/cmd/bench) >&2
  else
    sha=$(git -C "$root" rev-parse --short "$rev^{commit}")
    bin=$out/bench-$sha
    if [ ! -x "$bin" ]; then
      wt=$(mktemp -d)
      git -C "$root" worktree add --detach -q "$wt" "$sha" >&2
      if ! (cd "$wt" && go build -o "$bin" ./internal/cmd/bench) >&2; then
        git -C "$root" worktree remove --force "$wt"
        echo "abbench: building the benchmark at $rev failed" >&2
        exit 1
      fi
      git -C "$root" worktree remove --force "$wt"
    fi
  fi
  echo "$bin"
}

binA=$(build "$a")
binB=$(build "$b")
cd "$root"
exec go run ./internal/cmd/bench -compare "$binA,$binB" -rounds "$rounds" -- "$@"
