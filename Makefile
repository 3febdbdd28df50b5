# rtep: the two commands a new user needs are `make run` and `make test`.
PYTHON ?= python3
PY := .venv/bin/python
VENV_STAMP := .venv/.installed

.PHONY: run test lint typecheck migrate bench setup clean

$(VENV_STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv .venv
	.venv/bin/pip install --quiet --upgrade pip
	.venv/bin/pip install --quiet -e '.[dev]'
	touch $(VENV_STAMP)

setup: $(VENV_STAMP)

run: $(VENV_STAMP)  ## simulator -> embedded broker -> dataflow -> PostgreSQL/Redis, with metrics
	$(PY) -m rtep.run

test: $(VENV_STAMP)  ## the whole test suite (lint, types, unit, integration, e2e, faults, ops)
	$(PY) -m ruff check .
	$(PY) -m mypy
	$(PY) -m pytest

migrate: $(VENV_STAMP)  ## apply pending sql/ migrations to RTEP_DATABASE_URL (idempotent)
	$(PY) -m rtep.migrate

bench: $(VENV_STAMP)
	$(PY) -m bench

clean:
	rm -rf .run .pytest_cache .mypy_cache .ruff_cache .hypothesis
