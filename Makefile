# Distillery: the documented commands. `make demo` runs the whole pipeline locally; `make test` runs
# every test. Both install what they need into the repo (.venv, node_modules) via scripts/bootstrap.sh.
SHELL := /bin/bash
.DEFAULT_GOAL := help

.PHONY: help bootstrap build test unit lint fmt bench demo clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

bootstrap: ## Install the local toolchain into the repo (.venv, node_modules); pinned versions
	@scripts/bootstrap.sh

build: ## Build every crate (debug)
	cargo build --workspace

test: bootstrap ## Run the whole test suite: unit, integration (moto + Bedrock simulator), end-to-end
	cargo test --workspace

lint: ## rustfmt and clippy, as CI runs them
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings

fmt: ## Format the code
	cargo fmt --all

bench: ## Validator throughput and peak memory on a generated ~256 MB dataset
	scripts/bench-validate.sh

clean: ## Remove build output and the local toolchain
	cargo clean
	rm -rf .venv node_modules .local
