"""One retry policy for every backend: capped exponential backoff with full jitter.

A sink's ``write_batch`` calls ``RetryPolicy.call`` with one attempt of its write. Connection-type
errors (the backend is unavailable) are retried after a backoff, the sink reconnecting in its next
attempt; any other error propagates at once (it is a bug or bad data, not an outage). Blocking here
*is* the back-pressure: while ``write_batch`` does not return, Bytewax consumes nothing more, so
nothing is buffered without bound and nothing is dropped. After ``max_retry_seconds`` of failures
the policy raises ``BackendUnavailable``, naming the backend and the fix, and the flow exits
non-zero instead of spinning forever.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import psycopg
import redis.exceptions

from rtep.logs import get_logger
from rtep.metrics import SINK_ERRORS

T = TypeVar("T")
log = get_logger("rtep.sinks.retry")


class BackendUnavailable(RuntimeError):
    """A backend stayed unreachable longer than the retry limit: stop the flow, say how to fix it."""


class RetriableKafkaError(Exception):
    """Kafka delivery failed for a transient reason (broker down, timeout): retry the batch."""


@dataclass(frozen=True, slots=True)
class Backend:
    """A backend's name, which exceptions mean "unavailable, retry", and how to fix an outage."""

    name: str
    transient: tuple[type[BaseException], ...]
    fix: str


POSTGRES = Backend(
    "PostgreSQL",
    (psycopg.OperationalError, psycopg.InterfaceError),
    "check that PostgreSQL is running and reachable at RTEP_DATABASE_URL",
)
REDIS = Backend(
    "Redis",
    (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError),
    "check that Redis is running and reachable at RTEP_REDIS_URL",
)
KAFKA = Backend(
    "Kafka",
    (RetriableKafkaError,),
    "check that the brokers in RTEP_KAFKA_BROKERS are up",
)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Capped exponential backoff with full jitter, giving up after ``max_retry_seconds``.

    Delay before retry n (n = 1, 2, ...) is uniform in [0, min(max_backoff, initial * 2**(n-1))].
    """

    max_retry_seconds: float = 300.0
    initial_backoff: float = 0.1
    max_backoff: float = 5.0

    def delay(self, attempt: int) -> float:
        """The jittered wait before retry number ``attempt`` (1-based)."""
        ceiling = min(self.max_backoff, self.initial_backoff * 2 ** min(attempt - 1, 30))
        return random.uniform(0.0, ceiling)

    def call(self, attempt_fn: Callable[[], T], *, backend: Backend, sink: str) -> T:
        """Run ``attempt_fn`` until it succeeds; retry transient errors; give up after the limit."""
        started = time.monotonic()
        attempt = 0
        while True:
            try:
                return attempt_fn()
            except backend.transient as exc:
                attempt += 1
                SINK_ERRORS.labels(sink=sink).inc()
                elapsed = time.monotonic() - started
                error = _first_line(exc)
                if elapsed >= self.max_retry_seconds:
                    log.error(
                        "backend unavailable, giving up",
                        backend=backend.name, sink=sink, attempts=attempt,
                        elapsed_s=round(elapsed, 1), error=error,
                    )
                    raise BackendUnavailable(
                        f"{backend.name} unavailable for {elapsed:.0f}s ({attempt} attempts, "
                        f"sink {sink!r}): {error}. Fix: {backend.fix}; the limit is "
                        "RTEP_SINK_MAX_RETRY_SECONDS. The flow stops here and, restarted with "
                        "recovery, replays the unwritten batch: nothing is lost."
                    ) from exc
                # never wait past the limit, never give up before it: one last try at the limit
                wait = min(self.delay(attempt), self.max_retry_seconds - elapsed)
                log.warning(
                    "backend unavailable, retrying",
                    backend=backend.name, sink=sink, attempt=attempt,
                    elapsed_s=round(elapsed, 1), retry_in_s=round(wait, 3), error=error,
                )
                time.sleep(wait)  # back-off: blocking the worker is the back-pressure


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
