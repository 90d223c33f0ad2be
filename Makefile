# Two commands do everything: `make demo` and `make test`. Both create .venv and install what they need.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test test-fast bench lint typecheck install clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# KEEP=1 keeps the demo's service and databases up (until Ctrl-C) to look around in the console it prints.
demo: $(STAMP)
	DEMO_KEEP=$(KEEP) $(BIN)/python -m airflow_connectors.demo

# CI runs this: lint and types first (cheap, and they fail for real), then the whole suite.
test: lint typecheck
	$(BIN)/python -m pytest

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
	rm -rf $(VENV) .pytest_cache build *.egg-info
