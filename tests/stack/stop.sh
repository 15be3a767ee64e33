#!/usr/bin/env bash
# Stops what tests/stack/start.sh started (moto, bedrock-sim, slack-sink, sfn-local, lambda), by the
# PIDs it recorded (each is a process group leader,
# so a server's children, such as the Lambda processes cargo lambda watch spawns, stop with it), then
# removes the stack's address and settings files. (job-event-relay is one of them: job-event-relay.pid.)
set -uo pipefail
cd "$(dirname "$0")/../.."
STATE=${DISTILLERY_STACK_DIR:-$PWD/.local/stack}
[ -d "$STATE" ] || exit 0
for f in "$STATE"/*.pid; do
  [ -e "$f" ] || continue
  pid=$(cat "$f")
  name=$(basename "$f" .pid)
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then
      kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null
    fi
    echo "stack: stopped $name (PID $pid)" >&2
  fi
  rm -f "$f"
done
# Only the logs stay (for a post-mortem); every address and setting of this stack goes with it, so
# no later start or test can pick up a dead port.
rm -f "$STATE/stack.json" "$STATE"/*.out "$STATE"/warmup-*.json "$STATE/lambda.env" \
  "$STATE/resources.json"
