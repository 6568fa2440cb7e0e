#!/usr/bin/env bash
# Compares two revisions of Sluice with the benchmark, side by side in one
# run on one machine (docs/performance.md, "Comparing two revisions"):
# builds internal/cmd/bench at each revision (a git revision, or . for the
# working tree) and runs the two builds alternately (bench -compare: A B,
# then B A, ...), printing each workload's median runs and B's factor
# over A.
#
#   scripts/abbench.sh [-rounds N] REV_A REV_B -- BENCH_ARGS...
#
# BENCH_ARGS must be flags both builds know. On real Kafka, run it inside
# scripts/kafka.sh run, so that both builds use one broker:
#
#   scripts/kafka.sh run -- sh -c 'scripts/abbench.sh c164a9d HEAD -- -brokers $KAFKA_BROKERS -workers 1 -runs 1 -only count-alos,ssjoin'
#
# The comparison itself is run by the working tree's benchmark. The builds
# are kept in .bench/ab, one per commit and Go version.
set -euo pipefail
shopt -s inherit_errexit
# An interrupt stops the script (and, through EXIT, a build's cleanup)
# even when a child handled it.
trap 'exit 130' INT TERM

usage() {
  sed -n '2,17p' "$0" >&2
  exit 2
}

rounds=3
if [ "${1:-}" = -rounds ]; then
  [ $# -ge 2 ] && [[ $2 =~ ^[1-9][0-9]*$ ]] || usage
  rounds=$2
  shift 2
fi
if [ $# -lt 3 ] || [ "$3" != -- ]; then
  usage
fi
a=$1 b=$2
shift 3
root=$(git rev-parse --show-toplevel)
out=$root/.bench/ab
goversion=$(go env GOVERSION)

# resolve REV prints REV's short commit ID, or . for the working tree.
resolve() {
  if [ "$1" = . ]; then
    echo .
  elif ! git -C "$root" rev-parse -q --verify --short "$1^{commit}"; then
    echo "abbench: unknown revision $1" >&2
    exit 2
  fi
}
revA=$(resolve "$a")
revB=$(resolve "$b")
mkdir -p "$out"

# build REV prints the path of the benchmark built at REV (resolved). A
# build goes to a temporary name first, so that a failed or interrupted
# one never stands for a good one; the worktree is removed however the
# build ends.
build() {
  local rev=$1 bin wt
  if [ "$rev" = . ]; then
    bin=$out/bench-worktree
    (cd "$root" && go build -o "$bin.tmp.$$" ./internal/cmd/bench) >&2
    mv "$bin.tmp.$$" "$bin"
  else
    bin=$out/bench-$rev-$goversion
    if [ ! -x "$bin" ]; then
      wt=$(mktemp -d)
      # This function runs in a subshell of its own ($(build ...)): the
      # trap is its, expanded now; an interrupt exits through it.
      trap "git -C '$root' worktree remove --force '$wt' 2>/dev/null || true; rm -rf '$wt' '$bin.tmp.$$'" EXIT
      git -C "$root" worktree add --detach -q "$wt" "$rev" >&2
      (cd "$wt" && go build -o "$bin.tmp.$$" ./internal/cmd/bench) >&2
      mv "$bin.tmp.$$" "$bin"
    fi
  fi
  echo "$bin"
}

binA=$(build "$revA")
binB=$(build "$revB")
driver=$out/bench-driver
(cd "$root" && go build -o "$driver.tmp.$$" ./internal/cmd/bench)
mv "$driver.tmp.$$" "$driver"
exec "$driver" -compare "$binA,$binB" -rounds "$rounds" -- "$@"
