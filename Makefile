# The two commands: `make run` and `make test`. Each sets itself up first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
# `make run` needs only the package and its emulator: a fresh clone serves in seconds.
RUN_STAMP := $(VENV)/.run-stamp
PIP_QUIET := --quiet --disable-pip-version-check

.PHONY: run example test lint typecheck unit bench fuzz corpus clean setup system-deps synth package

setup: $(STAMP)

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install $(PIP_QUIET) --upgrade pip

# Everything the tests, lint, types, benchmarks and the CDK app need.
$(STAMP): pyproject.toml $(VENV)/bin/python
	$(BIN)/python -m pip install $(PIP_QUIET) -e '.[dev]'
	touch $(STAMP) $(RUN_STAMP)

$(RUN_STAMP): pyproject.toml $(VENV)/bin/python
	$(BIN)/python -m pip install $(PIP_QUIET) -e '.[local]'
	touch $(RUN_STAMP)

run: system-deps $(RUN_STAMP)
	$(BIN)/broker run $(RUN_ARGS)

EXAMPLE_STAMP := $(VENV)/.example-stamp
$(EXAMPLE_STAMP): pyproject.toml $(VENV)/bin/python
	$(BIN)/python -m pip install $(PIP_QUIET) -e '.[local,examples]'
	touch $(EXAMPLE_STAMP)

# The example app (examples/flask_app) on http://127.0.0.1:5000, sharing the stack that
# `make run` serves in another terminal (its settings are in .broker/stack.env).
example: $(EXAMPLE_STAMP)
	@test -f .broker/stack.env || { echo "start the stack first, in another terminal: make run"; exit 1; }
	set -a && . ./.broker/stack.env && set +a && \
		$(BIN)/flask --app examples/flask_app/app.py run --port 5000

test: system-deps lint typecheck unit

# System packages (libmagic; under CI=true also ClamAV for the scanner suite).
system-deps:
	./scripts/system-deps.sh

lint: $(STAMP)
	$(BIN)/ruff check broker lambdas infra localstack tests bench examples corpus
	$(BIN)/lint-imports --no-cache

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/pytest

# Thousands of mutants of every corpus sample (make test runs a few under a fixed seed).
FUZZ_MUTANTS ?= 3000
fuzz: $(STAMP)
	FUZZ_MUTANTS=$(FUZZ_MUTANTS) $(BIN)/pytest -q tests/unit/test_fuzz_inspection.py

bench: $(STAMP)
	$(BIN)/python -m bench

# Real files from public sources (PyPI source packages, Debian packages), fetched into
# .corpus/, labelled by independent tools and judged by the validator; prints false
# accepts and false rejects per source and per class (docs/internals/outside-corpus.md).
corpus: $(STAMP)
	CORPUS=true ./scripts/system-deps.sh
	$(BIN)/python -m corpus $(CORPUS_ARGS)

# The Lambda zips (build/validator.zip, build/broker.zip), from manylinux wheels.
package: $(STAMP)
	$(BIN)/python scripts/package.py

# The AWS CDK app, synthesized offline into infra/cdk.out/ (STAGE=dev or prod).
STAGE ?= dev
synth: package
	$(BIN)/python -m infra.app --stage $(STAGE)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis build *.egg-info infra/cdk.out .broker/data .corpus
