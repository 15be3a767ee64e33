#!/usr/bin/env bash
# Installs everything the tests and the demo need into the repo (nothing global):
#   .venv/          moto server and cargo-lambda (with zig) from PyPI, pinned in tests/requirements.txt
#   .venv-infra/    aws-sam-cli, cfn-lint, checkov (infra/requirements.txt), only with BOOTSTRAP_INFRA=1
#   .local/node/    npm packages (Node 22, aws-local-stepfunctions, asl-validator) pinned in package.json
# Safe to run again: it only installs what is missing or changed.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}

# One venv per tool set: the infrastructure linters (aws-sam-cli, checkov) pin boto3/jsonschema versions
# that conflict with moto's, so they live apart and neither downgrades the other.
#   $1 venv dir, $2 requirements file
install_venv() {
  local venv=$1 req=$2
  [ -f "$req" ] || return 0
  if [ ! -x "$venv/bin/python" ]; then
    echo "bootstrap: creating $venv" >&2
    "$PYTHON" -m venv "$venv"
  fi
  local stamp="$venv/.requirements.sha" want
  want=$(sha256sum < "$req" | cut -c1-64)
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    echo "bootstrap: installing $req into $venv" >&2
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip==24.3.1
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$req"
    echo "$want" > "$stamp"
  fi
}

install_venv .venv tests/requirements.txt
if [ "${BOOTSTRAP_INFRA:-0}" = 1 ]; then
  install_venv .venv-infra infra/requirements.txt
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
