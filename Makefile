# Two commands for a newcomer: `make synth` and `make test`. Each sets up what it needs first
# (pinned Python packages in .venv, checkov in .venv-checkov, pinned CDK CLI and Node.js in
# node_modules) and skips the set-up when it is already current.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
PYTHON ?= python3
UV_VERSION := 0.13.9
ENV ?= dev
VENV := .venv
BIN := $(VENV)/bin
# checkov pins an older boto3 than the project: a virtual environment of its own, for the tests only.
CHECKOV_VENV := .venv-checkov

# The pinned Node.js from npm (node_modules/.bin/node) runs both the CDK CLI and jsii.
export PATH := $(CURDIR)/node_modules/.bin:$(CURDIR)/$(BIN):$(PATH)
# Offline by design: no instance-metadata probing, no CLI version checks, notices or telemetry.
export AWS_EC2_METADATA_DISABLED := true
export CDK_DISABLE_VERSION_CHECK := true
export CDK_DISABLE_CLI_TELEMETRY := true
export JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION := 1
# Python caches compiled modules: without the cache, compiling aws_cdk's large modules costs about
# 4 s of every synth and every test process (some machines set this variable for their shells).
unexport PYTHONDONTWRITEBYTECODE

.PHONY: setup python-deps node-deps checkov-deps synth test lint format bench dry-run review snapshot diagram preflight clean

setup: python-deps node-deps checkov-deps

# Each install is skipped while its marker holds the checksum of the lock files it installed from
# (checksums, not timestamps: a checkout or a copy changes timestamps, not what is pinned).
python-deps:
	@sum="$$(sha256sum requirements.lock)"; \
	if [ "$$(cat $(VENV)/.installed 2>/dev/null)" != "$$sum" ]; then \
		test -x $(BIN)/python || $(PYTHON) -m venv $(VENV); \
		$(BIN)/python -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION); \
		$(BIN)/uv pip sync --quiet --python $(BIN)/python requirements.lock; \
		echo "$$sum" > $(VENV)/.installed; \
	fi

# uv comes from .venv (python-deps installs it). Compiled at install: checkov imports about 4,000
# modules, which cost some 7 s of every scan when a shell sets PYTHONDONTWRITEBYTECODE.
checkov-deps: python-deps
	@sum="$$(sha256sum requirements-checkov.lock)"; \
	if [ "$$(cat $(CHECKOV_VENV)/.installed 2>/dev/null)" != "$$sum" ]; then \
		test -x $(CHECKOV_VENV)/bin/python || $(PYTHON) -m venv $(CHECKOV_VENV); \
		$(BIN)/uv pip sync --quiet --compile-bytecode --python $(CHECKOV_VENV)/bin/python requirements-checkov.lock; \
		echo "$$sum" > $(CHECKOV_VENV)/.installed; \
	fi

node-deps:
	@sum="$$(cat package.json package-lock.json | sha256sum)"; \
	if [ "$$(cat node_modules/.installed 2>/dev/null)" != "$$sum" ]; then \
		npm ci --no-audit --no-fund --loglevel=error; \
		echo "$$sum" > node_modules/.installed; \
	fi

synth: setup
	rm -rf cdk.out
	cdk synth --quiet --no-notices -c env=$(ENV)
	$(BIN)/python -m infra.assembly.summary cdk.out

test: setup
	$(BIN)/pytest

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: setup
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: setup
	$(BIN)/python benchmarks/synth.py
	$(BIN)/python benchmarks/monitor.py
	$(BIN)/python benchmarks/emulator.py

# The stored training pipeline of ENV run offline as SageMaker would run it, on synthetic data:
# each step with its inputs, outputs and duration, then the registered model answering requests.
dry-run: setup
	$(BIN)/python -m pipelines.emulator --env $(ENV)

# What a change does to the cloud: `make review BASE=origin/main [ENV=all] [OUT=review.md]`.
# Exits 1 when a stateful resource would be replaced or removed, unless ALLOW_STATEFUL_REPLACEMENT=1.
review: setup
	@test -n "$(BASE)" || { echo "review: set BASE, e.g. make review BASE=origin/main" >&2; exit 2; }
	@echo "Security surface (tests/access/snapshots) changed since $(BASE):"
	@git --no-pager diff --stat $(BASE) -- tests/access/snapshots
	@git --no-pager diff $(BASE) -- tests/access/snapshots
	$(BIN)/python -m infra.assembly.review --base "$(BASE)" --env "$(ENV)" $(if $(OUT),--out "$(OUT)") \
		$(if $(filter 1 true yes,$(ALLOW_STATEFUL_REPLACEMENT)),--allow-stateful-replacement)

# The security surface of every environment (who may do what, through which endpoint): rewrite the
# committed snapshots after reviewing a change; `make review` shows their diff.
snapshot: setup
	ACCESS_SNAPSHOT=write $(BIN)/pytest tests/access/test_snapshot.py -q

# Read-only checks of the account(s) ENV deploys to, before the first `cdk deploy` (README: "Before the
# first deploy"). PROFILE=name, or PROFILE="tooling=a dev=b" per target; REGION= for an agnostic config;
# STRICT=1 fails on checks that could not be made. Exits 1 on a blocker. Instance credentials (the
# metadata service) are allowed here: this target, unlike the others, talks to AWS.
preflight: setup
	env -u AWS_EC2_METADATA_DISABLED $(BIN)/python -m infra.preflight --env "$(ENV)" \
		$(foreach p,$(PROFILE),--profile "$(p)") $(if $(REGION),--region "$(REGION)") \
		$(if $(filter 1 true yes,$(STRICT)),--strict)

# The synthesized app as a picture (WebAssembly Graphviz from node_modules; no system packages).
diagram: synth
	$(BIN)/python -m infra.assembly.diagram cdk.out docs/architecture.svg

clean:
	rm -rf cdk.out .pytest_cache
