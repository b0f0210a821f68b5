# The two commands of the README's quick start, and a few helpers for developers.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PORT ?= 8000
CLUSTER_PORT ?= 8080

.PHONY: start cluster test install install-dev lint docs clean

## Install (embedded default: SQLite, zero services) and start with the demo project loaded.
start: install
	$(BIN)/dataintel serve --demo --port $(PORT)

## The scale-out topology locally: nginx, 2 API replicas, a worker, the broker, PostgreSQL and
## Redis of this machine, analytics via the data lake (scripts/cluster.py); Ctrl-C stops it.
cluster: install-dev
	$(BIN)/python scripts/cluster.py --port $(CLUSTER_PORT)

## Install the development tools and run the whole test suite (lint and types first).
test: install-dev
	$(BIN)/ruff check src tests
	$(BIN)/ruff format --check src tests
	$(BIN)/mypy src
	$(BIN)/pytest -n 2 -q

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade "pip>=24"

install: $(BIN)/python
	$(BIN)/pip install -q -r requirements.lock
	$(BIN)/pip install -q --no-deps -e .

install-dev: $(BIN)/python
	$(BIN)/pip install -q -r requirements-dev.lock
	$(BIN)/pip install -q --no-deps -e .
	bash scripts/install_test_tools.sh

lint: install-dev
	$(BIN)/ruff check src tests && $(BIN)/ruff format --check src tests && $(BIN)/mypy src

## Regenerate docs/configuration.md, docs/api-reference.md and docs/openapi.json.
docs: install-dev
	$(BIN)/python scripts/gen_reference.py

clean:
	rm -rf $(VENV) data .pytest_cache .mypy_cache .ruff_cache
