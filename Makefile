# Two commands do everything: `make demo` and `make test`. Both create .venv and install what they need.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test test-fast bench lint typecheck install clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Also builds the optional compiled hot path (setup.py) in place: again when its Cython source changes.
$(STAMP): pyproject.toml setup.py airflow_connectors/cdc/engine/_speedups.pyx | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# KEEP=1 keeps the demo's service and databases up (until Ctrl-C) to look around in the console it prints.
demo: $(STAMP)
	DEMO_KEEP=$(KEEP) $(BIN)/python -m airflow_connectors.demo

# CI runs this: lint and types first (cheap, and they fail for real), then the whole suite, then the engine's
# end-to-end tests again on the pure-Python hot path (the compiled one is optional: both must replicate alike; the
# decoder and COPY-line unit tests run on both in the first pass already).
PURE_PYTHON_TESTS := tests/cdc/engine/test_run.py tests/cdc/engine/test_hard_cases.py tests/cdc/engine/test_streaming.py
test: lint typecheck
	$(BIN)/python -m pytest
	CDC_PURE_PYTHON=1 $(BIN)/python -m pytest -m 'not slow' $(PURE_PYTHON_TESTS)

test-fast: $(STAMP)
	$(BIN)/python -m pytest -m 'not slow'

bench: $(STAMP)
	$(BIN)/python -m bench

lint: $(STAMP)
	$(BIN)/ruff check airflow_connectors tests dags bench
	$(BIN)/ruff format --check airflow_connectors tests dags bench

typecheck: $(STAMP)
	$(BIN)/mypy airflow_connectors

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info airflow_connectors/cdc/engine/_speedups.c airflow_connectors/cdc/engine/_speedups.*.so
