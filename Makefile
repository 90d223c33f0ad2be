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

# CI runs this: lint and types first (cheap, and they fail for real), then the whole suite, which includes the
# engine's end-to-end tests again on the pure-Python hot path (tests/cdc/engine/test_pure_python_pass.py).
# The suite runs in PYTEST_WORKERS pytest-xdist processes, each with its own PostgreSQL servers, services and Airflow
# home. Two, not `-n auto`: most of the suite waits on servers, subprocesses and Airflow rather than computing, so two
# workers nearly halve the wall time on CI's two cores; more would add servers and contend for the CPU that the
# timing-bounded reliability tests need. worksteal: tests take from 0.01 s to two minutes, and a worker that runs dry
# takes half of the other's queue instead of idling. Plain `pytest` stays serial (-n is not in addopts), which is
# what a single test file wants; PYTEST_WORKERS=0 makes `make test` serial too.
PYTEST_WORKERS ?= 2
test: lint typecheck
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist worksteal

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
