# rtep: the two commands a new user needs are `make run` and `make test`.
# PYTHON: the interpreter .venv is built with; empty = the first Python 3.11/3.12 on PATH.
PYTHON ?=
PY := .venv/bin/python
VENV_STAMP := .venv/.installed

.PHONY: run test test-deps prerequisites test-heavy migrate bench bench-rss bench-scale setup clean

$(VENV_STAMP): pyproject.toml
	test -x $(PY) || { python=$$(PYTHON=$(PYTHON) bash .ci/prerequisites.sh python) && "$$python" -m venv .venv; }
	.venv/bin/pip install --quiet --upgrade pip
	.venv/bin/pip install --quiet -e '.[dev,bench]'
	touch $(VENV_STAMP)

setup: $(VENV_STAMP)

run: $(VENV_STAMP)  ## simulator -> embedded broker -> dataflow -> PostgreSQL/Redis, live console
	.venv/bin/rtep run

# .ci/prerequisites.sh and the install scripts source .ci/lib.sh (apt and Python helpers).
prerequisites:  ## the README's prerequisites (Python 3.11/3.12, PostgreSQL, Redis) in ~1 s, or the fix
	@PYTHON=$(PYTHON) bash .ci/prerequisites.sh all

# Installs once, then checks in about a second: Prometheus/promtool (apt) for tests/observability,
# the pinned validators (.venv-validators) and shellcheck for tests/ops.
test-deps: prerequisites  ## what the tests need besides .venv (idempotent)
	@bash .ci/install-prometheus.sh
	@PYTHON=$(PYTHON) bash .ci/install-validators.sh

test: test-deps $(VENV_STAMP)  ## the whole test suite (lint, types, unit, integration, e2e, faults, ops)
	$(PY) -m ruff check .
	$(PY) -m mypy
	$(PY) -m pytest

migrate: $(VENV_STAMP)  ## apply pending sql/ migrations to RTEP_DATABASE_URL (idempotent)
	.venv/bin/rtep migrate

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
