"""The retry limit is the time a backend may stay down: never give up before it, nor long after."""

from __future__ import annotations

import time

import psycopg
import pytest

from sinks.retry import POSTGRES, BackendUnavailable, RetryPolicy


@pytest.mark.parametrize("limit", [0.3, 0.6])
def test_gives_up_at_the_limit_not_before(limit: float) -> None:
    """A long jittered backoff (5 s cap) must not end the retries early (it used to: the policy
    gave up as soon as the *next* wait would cross the limit, e.g. after 2.5 s of a 5 s limit)."""
    attempts: list[float] = []

    def attempt() -> None:
        attempts.append(time.monotonic())
        raise psycopg.OperationalError("connection refused")

    policy = RetryPolicy(max_retry_seconds=limit, initial_backoff=limit, max_backoff=5.0)
    for _ in range(5):
        attempts.clear()
        with pytest.raises(BackendUnavailable):
            policy.call(attempt, backend=POSTGRES, sink="unit")
        took = attempts[-1] - attempts[0]
        assert limit <= took < limit + 0.2
