#!/usr/bin/env bash
# Regenerates the hashed Python requirements from their .in files with a pinned pip-tools:
#   tests/requirements.in           -> tests/requirements.txt           (.venv: moto, cargo-lambda)
#   infra/requirements.in           -> infra/requirements.txt           (.venv-infra: sam, cfn-lint, checkov)
#   scripts/python-lock/pip.in      -> scripts/python-lock/pip.txt      (the pip bootstrap upgrades to)
#   scripts/python-lock/pip-tools.in -> scripts/python-lock/pip-tools.txt (this script's own pip-tools)
# Every line of a .txt is `name==version` with the SHA-256 of each of that version's files on PyPI;
# bootstrap installs them with --require-hashes, so a changed file on the index fails the install.
# Run it after editing a .in file (needs network to PyPI); an existing .txt keeps its pins unless
# the .in asks for something else (pass --upgrade to move every transitive pin to the newest).
# Resolved with the Python bootstrap uses (python3, 3.11 on the CI machine): markers are evaluated for
# that interpreter.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}

tools=$(mktemp -d)
trap 'rm -rf "$tools"' EXIT
"$PYTHON" -m venv "$tools/venv"
"$tools/venv/bin/python" -m pip install --quiet --disable-pip-version-check --require-hashes -r scripts/python-lock/pip.txt
"$tools/venv/bin/python" -m pip install --quiet --disable-pip-version-check --require-hashes -r scripts/python-lock/pip-tools.txt

# The header names this script; a pip config's find-links (a local wheel directory) stays out of the files.
export CUSTOM_COMPILE_COMMAND=scripts/lock-python.sh
unset PIP_FIND_LINKS
compile() {
  # --allow-unsafe: pin pip/setuptools too when something depends on them (otherwise they would be
  # the one unhashed install); --strip-extras: the .txt lists plain names.
  "$tools/venv/bin/pip-compile" --quiet --generate-hashes --allow-unsafe --strip-extras \
    --no-emit-index-url --no-emit-find-links --resolver=backtracking "$@"
}
compile "${@}" --output-file tests/requirements.txt tests/requirements.in
compile "${@}" --output-file infra/requirements.txt infra/requirements.in
compile "${@}" --output-file scripts/python-lock/pip.txt scripts/python-lock/pip.in
compile "${@}" --output-file scripts/python-lock/pip-tools.txt scripts/python-lock/pip-tools.in
echo "lock-python: regenerated the four hashed requirements files"
