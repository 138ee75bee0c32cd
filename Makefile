# The two commands a user runs: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# strict editable mode links the mapped folders (compiler/ -> flowc.compiler, ...) into one
# tree on sys.path, which mypy can follow; a new module needs `make install` again.
EDITABLE := --config-settings editable_mode=strict

.PHONY: demo test test-slow install install-test lint typecheck bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

install: $(BIN)/python
	$(BIN)/pip install --quiet -e . $(EDITABLE)

install-test: $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]' $(EDITABLE)

demo: install
	$(BIN)/flowc check specs/green_taxi
	@echo
	@echo "The example project is specs/green_taxi (spec: specs/green_taxi/specs/green_taxi.flow)."
	@echo "It checks clean; \`flowc run\` lands with the runtime (issue 4)."

lint: install-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: install-test
	$(BIN)/mypy -p flowc
	$(BIN)/mypy tests benchmarks

test: lint typecheck
	$(BIN)/pytest -q

test-slow: install-test
	$(BIN)/pytest -q -m slow --hypothesis-profile=slow

bench: install
	$(BIN)/python benchmarks/check_bench.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
