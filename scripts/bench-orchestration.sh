#!/usr/bin/env bash
# `make bench-orchestration`: event-driven vs polling job tracking on the local stack, one "24-hour"
# job each, time-scaled by SCALE (default 0.001: the 24 h job lasts 86.4 s). Starts its own stack in
# .local/bench-stack with the poll waits a deployed stack uses (60 s doubling to 900 s; the runner
# scales them), runs tests/stack/src/bin/bench-orchestration.rs, stops the stack, and leaves the
# figures in target/bench/orchestration.json. Takes about 5 minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
SCALE=${SCALE:-0.001}
scripts/bootstrap.sh
export DISTILLERY_STACK_DIR=${DISTILLERY_STACK_DIR:-$PWD/.local/bench-stack}
export POLL_INITIAL_WAIT_SECONDS=60 POLL_MAX_WAIT_SECONDS=900
# The Lambdas compare real time with this; the scaled job lasts 86.4 s at the default scale.
export MAX_JOB_DURATION_SECONDS=${MAX_JOB_DURATION_SECONDS:-3600}
cargo build --locked --quiet -p distillery-local-stack --bin bench-orchestration
tests/stack/with-stack.sh target/debug/bench-orchestration --scale "$SCALE" \
  --out target/bench/orchestration.json
