# Triage. `make run` starts the whole server on embedded defaults; `make test` runs the suite.
# durable-rules builds on Python 3.11 and 3.12 only (its C extension fails to import on 3.13).
PYTHON ?= $(shell command -v python3.11 || command -v python3.12)
VENV := .venv
BIN := $(VENV)/bin
PG_TEST_URL ?= postgresql+psycopg://postgres@127.0.0.1:5432/test
PYTEST_ARGS ?=

.PHONY: run test test-sqlite test-postgres install check lint format clean bench

$(BIN)/.installed: requirements.txt requirements-dev.txt
	@test -n "$(PYTHON)" || { echo "Python 3.11 or 3.12 is needed (durable-rules does not build on 3.13)"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	touch $@

install: $(BIN)/.installed

run: install
	$(BIN)/python -m app.serve

check: install
	$(BIN)/python -m app.check

# The lint gate (CI runs it before the tests): ruff's lint and format check, mypy on the core,
# and the layers (no import circle, nothing in app/ importing workers/).
lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/python tools/import_graph.py

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

test: test-sqlite test-postgres

test-sqlite: install
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

test-postgres: install
	TEST_DATABASE_URL=$(PG_TEST_URL) $(BIN)/python -m pytest -q $(PYTEST_ARGS)

# The load benches (bench/README.md), one after the other, each appending to bench/RESULTS.md:
# about an hour on a 2-core machine. BENCH_PG is a PostgreSQL server where each makes (and drops)
# a database of its own; ingest, steps and rules_engine use BENCH_REDIS (default db 14, flushed).
BENCH_PG ?= postgresql+psycopg://postgres@127.0.0.1:5432/postgres
bench: install
	$(BIN)/python bench/webhook_load.py --database-url $(BENCH_PG) --workers 2
	$(BIN)/python bench/soak.py --database-url $(BENCH_PG)
	BENCH_PG=$(BENCH_PG) $(BIN)/python bench/ingest.py
	$(BIN)/python bench/steps.py --database-url $(BENCH_PG)
	$(BIN)/python bench/rules_engine.py

clean:
	rm -rf $(VENV) instance .pytest_cache
