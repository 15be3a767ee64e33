#!/usr/bin/env bash
# demo-soak.sh [N]: runs `make demo` N times in a row (default 20), each with its own stack start and
# stop, and stops at the first failure. Proves the local stack's start-up cannot race a previous run.
# Prints one line per run and the count at the end; the last run's output is in .local/demo-soak.log.
set -uo pipefail
cd "$(dirname "$0")/.."
n=${1:-20}
mkdir -p .local
make --no-print-directory bootstrap >/dev/null
cargo build --locked --quiet -p distillery-local-stack --bins
ok=0
for i in $(seq "$n"); do
  start=$SECONDS
  if make --no-print-directory demo >.local/demo-soak.log 2>&1; then
    ok=$((ok + 1))
    echo "demo-soak: run $i/$n passed in $((SECONDS - start)) s ($(grep -o 'run [^ ]* is [a-z_]*' .local/demo-soak.log | tail -n1))"
  else
    echo "demo-soak: run $i/$n FAILED after $((SECONDS - start)) s; output: .local/demo-soak.log" >&2
    tail -n 20 .local/demo-soak.log >&2
    echo "demo-soak: $ok of $n runs passed" >&2
    exit 1
  fi
done
echo "demo-soak: $ok of $n runs passed"
