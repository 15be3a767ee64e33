#!/usr/bin/env bash
# `make bench-burst`: 50 datasets uploaded at once through the launch queue on the local stack
# (RUNS to change it). Starts its own stack in .local/bench-stack, runs
# tests/stack/src/bin/bench-burst.rs against the guarded functions (MAX_CONCURRENT_JOBS=2) with the
# simulator refusing a third job in progress, stops the stack, and leaves the figures in
# target/bench/burst.json. Takes about 3 minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-50}
scripts/bootstrap.sh
export DISTILLERY_STACK_DIR=${DISTILLERY_STACK_DIR:-$PWD/.local/bench-stack}
cargo build --locked --quiet -p distillery-cli --bin distillery
cargo build --locked --quiet -p distillery-local-stack --bin bench-burst
tests/stack/with-stack.sh target/debug/bench-burst --runs "$RUNS" --out target/bench/burst.json
