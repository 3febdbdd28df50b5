"""`make test` on a fresh machine: a missing prerequisite fails in seconds with the fix in one line.

The README promises that `make run` and `make test` are all a new user types; `make test` first runs
``.ci/prerequisites.sh all`` then installs what the tests need (``make test-deps``). These tests
point the check at a closed port, which is what a stopped PostgreSQL or Redis looks like.
"""

from __future__ import annotations

import os
import re
import subprocess
import time

import pytest

from rtep.core.embedded import free_port
from tests.harness import ROOT


def _check(**env: str) -> tuple[subprocess.CompletedProcess[str], float]:
    started = time.monotonic()
    result = subprocess.run(
        ["bash", ".ci/prerequisites.sh", "all"],
        cwd=ROOT, env=os.environ | env, capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    return result, time.monotonic() - started


def test_prerequisites_pass_on_this_machine() -> None:
    result, _ = _check()
    assert result.returncode == 0, result.stderr
    assert "ok" in result.stdout


@pytest.mark.parametrize(
    ("variable", "url", "service"),
    [
        ("RTEP_TEST_ADMIN_DSN", "postgresql://postgres@127.0.0.1:{port}/postgres", "PostgreSQL"),
        ("RTEP_TEST_REDIS_URL", "redis://127.0.0.1:{port}/0", "Redis"),
    ],
)
def test_a_service_that_does_not_answer_fails_fast_naming_the_fix(
    variable: str, url: str, service: str
) -> None:
    """Scenario: PostgreSQL or Redis is not running where the tests look.

    We expect: exit 1 within 5 s, one line on stderr naming the service, the variable and a fix.
    """
    port = free_port()
    result, seconds = _check(**{variable: url.format(port=port)})
    assert result.returncode == 1
    assert seconds < 5, seconds
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert re.search(
        rf"{service} does not answer at 127\.0\.0\.1:{port} \({variable}\)\. Fix: ", lines[0]
    )


def test_make_test_installs_its_tools_before_the_suite_and_ci_calls_only_make_test() -> None:
    plan = subprocess.run(
        ["make", "-n", "test"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout  # fmt: skip
    order = [
        plan.index(".ci/prerequisites.sh all"),
        plan.index(".ci/install-prometheus.sh"),
        plan.index(".ci/install-validators.sh"),
        plan.index("-m pytest"),
    ]
    assert order == sorted(order), plan
    ci = (ROOT / ".ci" / "run").read_text().strip().splitlines()
    assert ci[-1] == "make test"
    assert [line for line in ci if line.strip().startswith("make")] == ["make test"]
