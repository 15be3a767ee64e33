# Distillery: the documented commands. `make demo` runs the whole pipeline locally; `make test` runs
# every test. Both install what they need into the repo (.venv, node_modules) via scripts/bootstrap.sh.
SHELL := /bin/bash
.DEFAULT_GOAL := help

.PHONY: help bootstrap build cli test unit lint lint-asl fmt bench bench-logs bench-orchestration bench-burst demo demo-soak e2e clean
.PHONY: build-sam deploy check-infra

help: ## List the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

bootstrap: ## Install the local toolchain into the repo (.venv, node_modules); pinned versions
	@scripts/bootstrap.sh

build: ## Build every crate (debug)
	cargo build --locked --workspace

# Debug profile on purpose: it reuses what `make test` and `make demo` compiled (a release build would
# compile the whole dependency tree a second time: ~13 min on 2 cores).
cli: ## Build the operator CLI: target/debug/distillery
	cargo build --locked -p distillery-cli --bin distillery
	@echo "built target/debug/distillery (try: target/debug/distillery --help)"

test: bootstrap ## Run the whole test suite: unit, integration (moto + Bedrock simulator), end-to-end
	cargo test --locked --workspace
	$(MAKE) --no-print-directory e2e

e2e: bootstrap ## End-to-end tests: the real ASL + the six Lambdas on the local stack (started and stopped here)
	cargo build --locked --quiet -p distillery-local-stack --tests
	tests/stack/with-stack.sh cargo test --locked --quiet -p distillery-local-stack --test e2e -- --ignored --test-threads=1

lint-asl: bootstrap ## Validate the state machine definition (asl-validator)
	node_modules/.bin/asl-validator --json-path statemachine/distillery.asl.json

lint: ## rustfmt, clippy and the core's dependency rule, as CI runs them
	cargo fmt --all -- --check
	cargo clippy --locked --workspace --all-targets -- -D warnings
	scripts/check-core-deps.sh

fmt: ## Format the code
	cargo fmt --all

DATASET ?= examples/datasets/support-tickets.jsonl
# The dataset is checked before anything is installed, built or started.
SERVING ?= auto
# The quality gate is on for the demo's dataset; STUDENT_QUALITY (0..=1) is how often the simulated
# student answers like its teacher: 0.2 shows a failing gate and nothing served.
QUALITY_GATE ?= on
STUDENT_QUALITY ?= 0.9
# SOURCE=invocation-logs runs a scheduled retraining instead: generated invocation logs in the local
# log bucket, read by the curated validator; SERVING and QUALITY_GATE become the stack's settings.
SOURCE ?= upload
demo: ## Run the whole pipeline locally on DATASET (default: the sample) with SERVING=auto|on-demand|provisioned|none, QUALITY_GATE=on|off, STUDENT_QUALITY=0..1, SOURCE=upload|invocation-logs, and print its timeline
ifeq ($(SOURCE),invocation-logs)
	@scripts/bootstrap.sh
	cargo build --locked --quiet -p distillery-local-stack --bins
	SERVING_MODE="$(SERVING)" QUALITY_GATE="$(QUALITY_GATE)" tests/stack/with-stack.sh \
	  target/debug/distillery-demo --source invocation-logs --student-quality "$(STUDENT_QUALITY)"
else
	@scripts/check-dataset-arg.sh "$(DATASET)"
	@scripts/bootstrap.sh
	cargo build --locked --quiet -p distillery-local-stack --bins
	tests/stack/with-stack.sh target/debug/distillery-demo --dataset "$(DATASET)" --serving "$(SERVING)" \
	  --quality-gate "$(QUALITY_GATE)" --student-quality "$(STUDENT_QUALITY)"
endif

DEMO_RUNS ?= 20
demo-soak: ## Run `make demo` DEMO_RUNS times in a row (default 20); fails on the first failure
	scripts/demo-soak.sh $(DEMO_RUNS)

bench: ## Validator throughput and peak memory on a generated ~256 MB dataset
	scripts/bench-validate.sh

bench-logs: ## `distillery logs preview` throughput and peak memory on ~1 GB of generated invocation logs (BENCH_LOGS_MB)
	scripts/bench-logs-preview.sh

bench-orchestration: ## Event-driven vs polling job tracking: a time-scaled 24-hour job each (SCALE=0.001); target/bench/orchestration.json
	scripts/bench-orchestration.sh

bench-burst: ## 50 uploads at once through the launch queue (2 job slots): wall time, runs/min, peaks, transitions, queue wait (RUNS=50); target/bench/burst.json
	scripts/bench-burst.sh

build-sam: bootstrap ## sam build: the six Lambdas for arm64 (release, cargo-lambda) into infra/.aws-sam
	scripts/check-infra.sh --build-only

DEPLOY_FLAGS ?= --guided
deploy: build-sam ## sam deploy --guided (docs/deploy.md); DEPLOY_FLAGS= reuses infra/samconfig.toml
	cd infra && PATH="$(CURDIR)/.venv-infra/bin:$$PATH" SAM_CLI_TELEMETRY=0 sam deploy $(DEPLOY_FLAGS)

check-infra: ## Template checks: model pairs, sam validate --lint, IAM, checkov, asl-validator
	scripts/check-infra.sh

clean: ## Remove build output and the local toolchain
	cargo clean
	rm -rf .venv .venv-infra node_modules .local
