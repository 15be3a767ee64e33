#!/usr/bin/env bash
# Infrastructure checks for infra/template.yaml (`make check-infra`; CI runs it too). Offline; tools
# are the pinned ones in infra/requirements.txt, installed into .venv-infra by scripts/bootstrap.sh.
#   1. model pairs: the template's generated blocks match functions/core/data (infra/model_params.py)
#   2. sam validate --lint (SAM transform + cfn-lint)
#   3. IAM wildcards, snapshot immutability, each function's grants vs the AWS calls its code makes,
#      and the ledger table schema vs dynamodb.rs (infra/check_template.py)
#   4. checkov on the template and on the SAM-transformed template: zero failed checks (skips are
#      written in the template, each with its reason)
#   5. asl-validator on statemachine/*.asl.json, when node_modules has it
#   6. with --with-build (or CHECK_INFRA_BUILD=1): `sam build` of the six binaries (seven functions) for arm64. It is
#      slow (release builds; see docs/deploy.md), so `make build-sam` runs it alone: --build-only.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

BOOTSTRAP_INFRA=1 scripts/bootstrap.sh
# .venv first: cargo-lambda finds zig through its own python (the ziglang package); sam, cfn-lint and
# checkov exist only in .venv-infra.
export PATH="$root/.venv/bin:$root/.venv-infra/bin:$PATH"
export SAM_CLI_TELEMETRY=0 SAM_CLI_BETA_RUST_CARGO_LAMBDA=1
# Lint as if deploying to the Region of the default model pair.
region=${CHECK_INFRA_REGION:-us-east-1}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

step() { printf '\n== %s\n' "$*"; }

# sam build compiles the six binaries in release mode for arm64 with cargo-lambda (zig as the
# cross linker). CodeUri is the workspace root, so the build shares target/ with cargo.
sam_build() {
  step "sam build (arm64, release)"
  if ! rustup target list --installed 2>/dev/null | grep -qx aarch64-unknown-linux-gnu; then
    echo "installing the Rust standard library for arm64 (rustup target add aarch64-unknown-linux-gnu)"
    rustup target add aarch64-unknown-linux-gnu || {
      echo "cannot build for arm64: the aarch64-unknown-linux-gnu standard library is missing and rustup" >&2
      echo "could not download it; run \`rustup target add aarch64-unknown-linux-gnu\` with network access" >&2
      # CI sets this so a machine without the arm64 std says so loudly instead of failing every
      # other check with it; a developer's `make build-sam` still fails.
      if [ "${CHECK_INFRA_ALLOW_MISSING_TARGET:-0}" = 1 ]; then
        echo "SKIPPED: sam build for arm64 (no aarch64-unknown-linux-gnu standard library on this machine)" >&2
        return 0
      fi
      exit 1
    }
  fi
  local start=$SECONDS
  # sam build runs `cargo lambda build` itself, without --locked: check first that Cargo.lock
  # resolves as it is, so the binaries that get deployed are built from the locked versions.
  cargo metadata --locked --format-version 1 >/dev/null
  (cd infra && sam build --template-file template.yaml --build-dir .aws-sam/build)
  # SAM builds functions that share their code once (StatusPollerFunction and ReconcilerFunction are
  # one binary in two modes: both get StatusPollerFunction-Shared), so each function's artifact is
  # the CodeUri the built template gives it.
  local code_uris
  code_uris=$(awk '/^  [A-Za-z0-9]+:$/ {name=$1; sub(":", "", name)} /^      CodeUri: / {print name, $2}' \
    infra/.aws-sam/build/template.yaml)
  for fn in DatasetValidatorFunction JobLauncherFunction StatusPollerFunction ReconcilerFunction ThroughputProvisionerFunction NotifierFunction ModelEvaluatorFunction; do
    dir=$(awk -v fn="$fn" '$1 == fn {print $2}' <<<"$code_uris")
    bin=infra/.aws-sam/build/${dir:-$fn}/bootstrap
    # ELF e_machine (bytes 18-19, little endian) is 183 for AArch64.
    python3 -c 'import sys; h=open(sys.argv[1],"rb").read(20); sys.exit(0 if h[:4]==b"\x7fELF" and int.from_bytes(h[18:20],"little")==183 else 1)' "$bin" \
      || { echo "$bin is missing or not an arm64 ELF executable" >&2; exit 1; }
  done
  echo "sam build: an arm64 bootstrap for each of the seven functions in infra/.aws-sam/build ($((SECONDS - start)) s)"
}

build=${CHECK_INFRA_BUILD:-0}
case "${1:-}" in
  "") ;;
  --build-only) sam_build; exit 0 ;;
  --with-build) build=1 ;;
  *) echo "usage: $0 [--with-build | --build-only]" >&2; exit 2 ;;
esac

step "model pairs: template vs functions/core/data"
python3 infra/model_params.py --check

step "sam validate --lint"
(cd infra && sam validate --lint --template-file template.yaml --region "$region")

step "IAM wildcards, actions vs grants, ledger schema"
.venv-infra/bin/python infra/check_template.py --region "$region" --transformed "$work/transformed.json"

step "checkov (template as written, and after the SAM transform)"
# --skip-download: no network; checkov then omits guideline links, the checks are the same.
checkov --quiet --compact --skip-download --framework cloudformation -f infra/template.yaml
checkov --quiet --compact --skip-download --framework cloudformation -f "$work/transformed.json"

step "asl-validator"
if [ -x node_modules/.bin/asl-validator ]; then
  for f in statemachine/*.asl.json; do
    node_modules/.bin/asl-validator --json-path "$f"
  done
else
  # package.json (owned by the state machine work) brings it; bootstrap installs it when listed.
  echo "SKIPPED: node_modules/.bin/asl-validator is not installed (not listed in package.json yet)"
fi

if [ "$build" = 1 ]; then
  sam_build
else
  printf '\n(sam build not run: `make build-sam` or CHECK_INFRA_BUILD=1 builds the six binaries for arm64)\n'
fi

printf '\ncheck-infra: all checks passed\n'
