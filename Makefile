# rtep: the two commands a new user needs are `make run` and `make test`.
PYTHON ?= python3
PY := .venv/bin/python
VENV_STAMP := .venv/.installed

.PHONY: run test test-heavy migrate bench bench-rss bench-scale setup clean

$(VENV_STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv .venv
	.venv/bin/pip install --quiet --upgrade pip
	.venv/bin/pip install --quiet -e '.[dev,bench]'
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

bench: $(VENV_STAMP)  ## raw vs peer (Quix Streams) vs rtep, < 10 min; writes bench/results/
	$(PY) -m bench

bench-rss: $(VENV_STAMP)  ## dataflow RSS after each of five 1 M-event backlogs (~6 min)
	$(PY) -m bench --rss

bench-scale: $(VENV_STAMP)  ## rtep's throughput as 1, 2, 3 processes of one cluster (~4 min)
	$(PY) -m bench --scale 1 2 3

test-heavy: $(VENV_STAMP)  ## heavier fault-injection variants
	RTEP_HEAVY_TESTS=1 $(PY) -m pytest tests/faults

clean:
	rm -rf .run .pytest_cache .mypy_cache .ruff_cache .hypothesis
