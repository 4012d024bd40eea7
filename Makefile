# alarmq: `make run` starts the whole stack; `make test` runs the suite. A bare `make` lists the targets.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-dev
RUNTIME_STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

.DEFAULT_GOAL := help
.PHONY: help install run test test-fast lint fmt bench clean

help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-z-]+:.*## / {printf "  make %-10s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "alarmq needs Python 3.11 or newer")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(RUNTIME_STAMP): $(BIN)/python requirements.txt pyproject.toml
	$(BIN)/pip install --quiet -r requirements.txt
	$(BIN)/pip install --quiet --no-deps -e .
	@touch $@

$(STAMP): $(RUNTIME_STAMP) requirements-dev.txt
	$(BIN)/pip install --quiet -r requirements-dev.txt
	@touch $@

install: $(RUNTIME_STAMP) ## Create .venv and install alarmq with its pinned dependencies

run: $(RUNTIME_STAMP) ## Set up and start web, worker and scheduler (on an embedded Redis unless REDIS_URL is set)
	$(BIN)/alarmq up

test: $(STAMP) ## Set up and run the whole test suite
	$(BIN)/pytest $(PYTEST_ARGS)

test-fast: $(STAMP) ## Run the tests that start no extra processes
	$(BIN)/pytest -m "not slow" $(PYTEST_ARGS)

lint: $(STAMP) ## Check style (ruff) and types (mypy)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

fmt: $(STAMP) ## Format the code and apply safe fixes
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: $(STAMP) ## Run the benchmarks; each prints one JSON line
	@for script in bench/[a-z]*.py; do echo "== $$script" >&2; $(BIN)/python $$script || exit 1; done

clean: ## Remove the venv and caches (keeps .alarmq, your data)
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build *.egg-info
