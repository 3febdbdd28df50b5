"""One retry policy for every backend: capped exponential backoff with full jitter.

A sink's ``write_batch`` calls ``RetryPolicy.call`` with one attempt of its write. Errors that
mean the backend is unavailable are retried after a backoff, the sink reconnecting in its next
attempt; any other error propagates at once: bad data (``is_data_error``: the sink isolates the
refused rows and dead-letters them) or a bug. The classes matter: psycopg maps SQLSTATE class 54
("index row size exceeds the maximum") to ``OperationalError`` like a lost connection, and
retrying a batch that the data makes fail stopped all ingestion for ever. Blocking here
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

from rtep.core.logs import get_logger
from rtep.core.metrics import SINK_ERRORS

T = TypeVar("T")
log = get_logger("rtep.sinks.retry")


class BackendUnavailable(RuntimeError):
    """A backend stayed unreachable longer than the retry limit: stop the flow, say how to fix it."""


class RetriableKafkaError(Exception):
    """Kafka delivery failed for a transient reason (broker down, timeout): retry the batch."""


@dataclass(frozen=True, slots=True)
class Backend:
    """A backend's name, its errors, which of them mean "unavailable, retry", and the fix."""

    name: str
    errors: tuple[type[BaseException], ...]
    unavailable: Callable[[BaseException], bool]
    fix: str

    def transient(self, exc: BaseException) -> bool:
        """``exc`` means the backend is unavailable (retry later), not bad data nor a bug."""
        return isinstance(exc, self.errors) and self.unavailable(exc)


# SQLSTATE classes caused by the rows written: data exception (22: out of range, bad encoding…),
# integrity constraint violation (23), program limit exceeded (54: index row too large…).
PG_DATA_CLASSES = frozenset({"22", "23", "54"})
# Unavailability: connection (08), transaction rollback (40: deadlock, serialization), insufficient
# resources (53: disk full, out of memory, too many connections), operator intervention (57:
# statement timeout, admin shutdown, starting up), system error (58: I/O), lock timeout (55P03),
# a read-only server after a failover (25006).
_PG_OUTAGE_CLASSES = frozenset({"08", "40", "53", "57", "58"})
_PG_OUTAGE_STATES = frozenset({"55P03", "25006"})


def pg_data_error(exc: BaseException) -> bool:
    """A PostgreSQL error caused by the rows written: retrying cannot help, isolating them can.

    Includes a value psycopg cannot encode for its column (an integer beyond bigint)."""
    if isinstance(exc, OverflowError):
        return True
    if not isinstance(exc, psycopg.Error):
        return False
    state = exc.sqlstate
    if state is None:  # raised by psycopg itself while encoding a value
        return isinstance(exc, psycopg.DataError | psycopg.IntegrityError)
    return state[:2] in PG_DATA_CLASSES


def _pg_unavailable(exc: BaseException) -> bool:
    state = getattr(exc, "sqlstate", None)
    if state is None:  # no answer from the server: connection refused, lost, timed out
        return isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError)
    return state[:2] in _PG_OUTAGE_CLASSES or state in _PG_OUTAGE_STATES


# Redis replies meaning "not now" rather than "not this data": out of memory (maxmemory with
# noeviction), a read-only replica (failover), loading, cluster or replication trouble (redis-py
# raises these as their own classes), persistence failing, a busy script (by their prefix).
_REDIS_OUTAGE_ERRORS = (
    redis.exceptions.ConnectionError, redis.exceptions.TimeoutError,
    redis.exceptions.ReadOnlyError, redis.exceptions.OutOfMemoryError,
    redis.exceptions.TryAgainError, redis.exceptions.ClusterDownError,
    redis.exceptions.MasterDownError,
)  # fmt: skip
_REDIS_OUTAGE_REPLIES = ("MISCONF", "BUSY", "NOREPLICAS", "OOM", "READONLY")


def redis_data_error(exc: BaseException) -> bool:
    """A Redis reply refusing the data itself: a key of another type (WRONGTYPE)."""
    return isinstance(exc, redis.exceptions.ResponseError) and str(exc).startswith("WRONGTYPE")


def _redis_unavailable(exc: BaseException) -> bool:
    if isinstance(exc, _REDIS_OUTAGE_ERRORS):
        return True
    return isinstance(exc, redis.exceptions.ResponseError) and str(exc).startswith(
        _REDIS_OUTAGE_REPLIES
    )


POSTGRES = Backend(
    "PostgreSQL",
    (psycopg.Error,),
    _pg_unavailable,
    "check that PostgreSQL is running, reachable at RTEP_DATABASE_URL, not read-only and not out "
    "of disk, and what holds locks if statements time out (RTEP_PG_STATEMENT_TIMEOUT_MS, "
    "RTEP_PG_LOCK_TIMEOUT_MS)",
)
REDIS = Backend(
    "Redis",
    (redis.exceptions.RedisError,),
    _redis_unavailable,
    "check that Redis is running, reachable at RTEP_REDIS_URL, writable (not a replica) and "
    "below its maxmemory",
)
KAFKA = Backend(
    "Kafka",
    (RetriableKafkaError,),
    lambda _exc: True,
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
            except backend.errors as exc:
                if not backend.unavailable(exc):
                    raise  # bad data or a bug: retrying cannot help
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
