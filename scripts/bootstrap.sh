#!/usr/bin/env bash
# Installs everything the tests and the demo need into the repo (nothing global):
#   .venv/          moto server and cargo-lambda (with zig) from PyPI, pinned in tests/requirements.txt
#   .local/node/    npm packages (Node 22, aws-local-stepfunctions, asl-validator) pinned in package.json
# Safe to run again: it only installs what is missing or changed.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "bootstrap: creating .venv" >&2
  "$PYTHON" -m venv .venv
fi
stamp=.venv/.requirements.sha
# A missing optional file must not abort the script (pipefail), so read each one on its own.
want=$( { cat tests/requirements.txt; cat infra/requirements.txt 2>/dev/null || true; } | sha256sum | cut -c1-64)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "bootstrap: installing Python packages (moto, cargo-lambda, ...)" >&2
  .venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip==24.3.1
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -r tests/requirements.txt
  if [ -f infra/requirements.txt ]; then
    .venv/bin/python -m pip install --quiet --disable-pip-version-check -r infra/requirements.txt
  fi
  echo "$want" > "$stamp"
fi

if [ -f package.json ]; then
  stamp=node_modules/.package-lock.sha
  want=$( { cat package.json; cat package-lock.json 2>/dev/null || true; } | sha256sum | cut -c1-64)
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    echo "bootstrap: installing npm packages" >&2
    if [ -f package-lock.json ]; then npm ci --no-audit --no-fund --silent; else npm install --no-audit --no-fund --silent; fi
    echo "$want" > "$stamp"
  fi
fi
