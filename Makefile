# One entry point per task, the same for you and for CI (.ci/run calls `make test`).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: test check bench run install clean

# (Re)install when pyproject.toml changes; creates the virtualenv if missing.
$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[all,dev]'
	@touch $(STAMP)

install: $(STAMP)

## make test: the whole suite (Redis tests included), coverage of src/ >= 90% enforced
test: $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

## make check: formatting, lint and strict typing
check: $(STAMP)
	$(VENV)/bin/ruff format --check src tests benchmarks examples
	$(VENV)/bin/ruff check src tests benchmarks examples
	$(VENV)/bin/mypy

## make bench: stratacache beside its peers, ratios written to docs/benchmarks.md
bench: $(STAMP)
	$(PY) -m benchmarks $(BENCH_ARGS)

## make run: the catalog demo service on http://$(HOST):$(PORT)/ (memory in front of Redis
## when REDIS_URL is set); `make run PORT=8123` to move it. The tour: examples/walkthrough.py
HOST = 127.0.0.1
PORT = 8000
run: $(STAMP)
	$(PY) -m examples.catalog --host $(HOST) --port $(PORT)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis .coverage htmlcov
