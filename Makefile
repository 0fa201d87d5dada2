# Two commands for a newcomer: `make synth` and `make test`. Each sets up what it needs first
# (pinned Python packages in .venv, pinned CDK CLI and Node.js in node_modules) and skips the
# set-up when it is already current.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
PYTHON ?= python3
UV_VERSION := 0.13.9
ENV ?= dev
VENV := .venv
BIN := $(VENV)/bin

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

.PHONY: setup synth test lint format bench dry-run review diagram clean

setup: $(VENV)/.installed node_modules/.installed

$(VENV)/.installed: requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)
	$(BIN)/uv pip sync --quiet --python $(BIN)/python requirements.lock
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

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
	$(BIN)/python -m infra.assembly.review --base "$(BASE)" --env "$(ENV)" $(if $(OUT),--out "$(OUT)") \
		$(if $(filter 1 true yes,$(ALLOW_STATEFUL_REPLACEMENT)),--allow-stateful-replacement)

# The synthesized app as a picture (WebAssembly Graphviz from node_modules; no system packages).
diagram: synth
	$(BIN)/python -m infra.assembly.diagram cdk.out docs/architecture.svg

clean:
	rm -rf cdk.out .pytest_cache
