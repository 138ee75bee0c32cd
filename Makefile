# The two commands a user runs: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# strict editable mode links the mapped folders (compiler/ -> flowc.compiler, ...) into one
# tree on sys.path, which mypy can follow; a new module needs `make install` again.
EDITABLE := --config-settings editable_mode=strict

.PHONY: demo test test-fast test-slow install install-test lint typecheck bench bench-run bench-memory bench-pg bench-jobs bench-tpch bench-test bench-lsp clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# `make install` always installs (after adding a module, say); `make demo` only when
# pyproject.toml changed since the last install (the stamp), so that it starts at once.
STAMP := $(VENV)/.installed

install: $(BIN)/python
	$(BIN)/pip install --quiet -e . $(EDITABLE)
	@touch $(STAMP)

install-test: $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]' $(EDITABLE)
	@touch $(STAMP)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e . $(EDITABLE)
	@touch $(STAMP)

DEMO := specs/green_taxi

demo: $(STAMP)
	@test -n "$$(ls $(DEMO)/data/green_tripdata_2020-1*.csv.gz 2>/dev/null)" \
		|| $(BIN)/python $(DEMO)/generate_data.py
	$(BIN)/flowc run $(DEMO)/specs/green_taxi.flow
	@echo
	@echo "Results of the green-taxi example (project $(DEMO)):"
	@echo "  DuckDB warehouse: $(DEMO)/.flowc/warehouse.duckdb (table ny_taxi.green_taxi; intermediate nodes in schema flowc_internal)"
	@echo "  Parquet by day:   $(DEMO)/out/green_taxi/"
	@echo "  daily summary:    $(DEMO)/out/daily_stats.csv"
	@echo "  run history:      $(BIN)/flowc runs $(DEMO)/specs/green_taxi.flow"

lint: install-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: install-test
	$(BIN)/mypy -p flowc
	$(BIN)/mypy tests benchmarks

test: lint typecheck
	$(BIN)/pytest -q

# The edit-test loop: everything but the tests that need Postgres or the BigQuery emulator
# (marked from their fixtures in tests/conftest.py) and the slow property runs.
test-fast: install-test
	FLOWC_TEST_FAST=1 $(BIN)/pytest -q -m "not slow and not postgres and not bigquery"

test-slow: install-test
	$(BIN)/pytest -q -m slow --hypothesis-profile=slow

bench: install
	$(BIN)/python benchmarks/check_bench.py

bench-run: install
	$(BIN)/python benchmarks/run_bench.py

bench-memory: install
	$(BIN)/python benchmarks/memory_bench.py

bench-pg: install-test
	$(BIN)/python benchmarks/pg_bench.py

bench-jobs: install-test
	$(BIN)/python benchmarks/jobs_bench.py

bench-lsp: install-test
	$(BIN)/python benchmarks/lsp_bench.py

bench-tpch: install-test
	$(BIN)/python benchmarks/tpch_bench.py

bench-test: install
	$(BIN)/python benchmarks/test_bench.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
