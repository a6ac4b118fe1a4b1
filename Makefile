# The two commands: `make run` and `make test`. Everything installs into .venv.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
HOST   ?= 127.0.0.1
PORT   ?= 8000

.PHONY: run test install test-deps lint typecheck unit clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.test-installed: $(VENV)/.installed
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

install: $(VENV)/.installed

test-deps: $(VENV)/.test-installed

## Start the server on the embedded defaults (SQLite and a data folder in ./.openarts).
run: install
	$(BIN)/openarts serve --host $(HOST) --port $(PORT)

lint: test-deps
	$(BIN)/ruff check openarts tests bench tools examples
	$(BIN)/ruff format --check openarts tests bench tools examples

typecheck: test-deps
	$(BIN)/mypy

unit: test-deps
	$(BIN)/pytest

## Lint, type-check, then the whole suite (also on PostgreSQL when OPENARTS_TEST_POSTGRES_URL is set).
test: lint typecheck unit

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
