#!/usr/bin/env bash
# with-stack.sh CMD...: starts the local stack, runs CMD, always stops the stack, exits with CMD's status.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
"$here/start.sh" || exit 1
trap '"$here/stop.sh"' EXIT
"$@"
