"""The Redis views of the contract: last activity per user, active sessions, recent alerts, counts.

Each batch of ``CacheWrites`` (events, sessions, alerts, rollup rows: ``sinks.cache_writes``) is
first reduced to one write per key ("ops", the latest value per key), then sent in ONE pipeline
(``transaction=False``, ``sinks.redis_pipeline``), with the writes of many keys packed into one
command where Redis allows it:

- ``{prefix}user:{userId}`` hash ``last_seen`` (ISO, UTC, microseconds), ``last_type``,
  ``last_page``, ``device``, ``session_id`` from the user's latest event by event time; fields the
  event lacks keep their previous value. A small script skips the write of a user when the
  stored ``last_seen`` is newer, so late or replayed events never move a user back in time; one
  script call writes up to ``USERS_PER_CALL`` users.
- ``{prefix}sessions:active`` sorted set: one ZADD of the open sessions (score = last activity,
  epoch seconds), one ZREM of the closed ones.
- ``{prefix}alerts:recent`` list, newest first, capped: a new alert or a new version of one is
  pushed at the head and any older entry of the same ``alert_id`` removed (one entry per
  incident; a replayed identical alert moves to the head, never appears twice).
- ``{prefix}counts:{type}:{YYYYmmddHHMM}`` SET to the rollup's current total with a TTL.

Every write is an overwrite of the latest value, so replays are harmless. Every key family has
a TTL (users, the active-sessions set and the recent-alerts list: ``key_ttl_seconds``, renewed
at each write; counts: ``counts_ttl_seconds``), so Redis holds only what was recently active.

Redis is a cache of PostgreSQL, so an outage must not stop the pipeline (nor a full or read-only
Redis: OOM and READONLY replies are outages of the cache too): a failed batch is counted (``rtep_sink_errors_total{sink="redis"}``), logged, and its ops kept in a bounded "dirty"
map (latest value per key) that is written before the next batch once Redis answers again
(catch-up). While Redis is down every batch tries again, except after a slow failure (a timeout):
then attempts are spaced by ``retry_interval_seconds``.
What can be lost is documented in docs/sinks.md ("Redis catch-up"). A write Redis refuses for
its data (WRONGTYPE: someone stored another type under our key) is dropped from the batch and
dead-lettered as ``store_rejected``; the other keys are written.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from datetime import UTC, datetime

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from operators.records import Reason, RedisKeys, Rejection, Source
from rtep.core.logs import get_logger
from rtep.core.metrics import EVENTS_STORED, SINK_ERRORS, SINK_WRITE_SECONDS
from sinks.background import ChunkSink
from sinks.cache_writes import CacheWrites, Ops
from sinks.codec import json_text
from sinks.redis_pipeline import CachePipeline, RefusedWrite
from sinks.retry import REDIS, RetryPolicy
from sinks.store_rejects import RejectWriter, StoreRejects

log = get_logger("rtep.sinks.redis")
SINK = "redis"
_SLOW_FAILURE_SECONDS = 0.1


class RedisSink(ChunkSink[CacheWrites, CacheWrites]):
    """Events, sessions, alerts and rollup rows → the contract's Redis keys (one pipeline/batch).

    Its input is chunks ``(key, CacheWrites)``. Guarantee: best effort, never blocking
    PostgreSQL. Idempotent overwrites, so replays create no duplicate. During an outage the
    latest value per key is kept (up to ``dirty_cap`` keys) and written when Redis is back;
    beyond the cap the least recently updated keys are dropped until a later record rewrites
    them. See docs/sinks.md for exactly what can be lost. Written in the background
    (``sinks.background``): one client per process.
    """

    name = SINK

    def __init__(
        self,
        url: str,
        *,
        prefix: str = "rtep:",
        counts_ttl_seconds: int = 2 * 86400,
        recent_alerts_cap: int = 1000,
        dirty_cap: int = 100_000,
        retry_interval_seconds: float = 1.0,
        socket_timeout: float = 2.0,
        write_interval_seconds: float = 0.0,
        parts: Callable[[], list[str]] | None = None,
        max_pending: int = 20_000,
        key_ttl_seconds: int | None = None,
        rejects: StoreRejects | None = None,
    ) -> None:
        super().__init__(parts, max_pending, linger=write_interval_seconds)
        self.key_ttl_seconds = key_ttl_seconds
        self.rejects = rejects
        self.url = url
        self.prefix = prefix
        self.counts_ttl_seconds = counts_ttl_seconds
        self.recent_alerts_cap = recent_alerts_cap
        self.dirty_cap = dirty_cap
        self.retry_interval_seconds = retry_interval_seconds
        self.socket_timeout = socket_timeout

    def open(self) -> RedisWriter:
        """A synchronous writer with its own client (the background thread uses it).

        The key TTL and where refused writes go come from the settings unless given (the
        flow's wiring passes neither)."""
        ttl, rejects = self.key_ttl_seconds, self.rejects
        if ttl is None or rejects is None:
            from rtep.core.settings import get_settings

            settings = get_settings()
            ttl = ttl or settings.redis_key_ttl_seconds
            dsn = settings.database_url.get_secret_value()
            rejects = rejects or StoreRejects.from_settings(settings, dsn, RetryPolicy())
        return RedisWriter(self, ttl, rejects.open())

    def unchunk(self, values: list[CacheWrites]) -> tuple[list[CacheWrites], int]:
        """The chunks' ``CacheWrites`` as they are; ``max_pending`` counts their records."""
        return values, sum(map(len, values))


class RedisWriter:
    """One Redis client and its pending (dirty) writes."""

    def __init__(self, config: RedisSink, key_ttl_seconds: int, rejects: RejectWriter) -> None:
        self.config = config
        self.key_ttl_seconds = key_ttl_seconds
        self._rejects = rejects
        self.client = redis.Redis.from_url(
            config.url,
            socket_timeout=config.socket_timeout,
            socket_connect_timeout=config.socket_timeout,
            retry=Retry(NoBackoff(), 0),
        )
        keys = RedisKeys(config.prefix)
        self._pipeline = CachePipeline(
            self.client, keys, key_ttl_seconds=key_ttl_seconds,
            counts_ttl_seconds=config.counts_ttl_seconds,
            recent_alerts_cap=config.recent_alerts_cap,
        )  # fmt: skip
        self._count_key = keys.counts
        self._pending = Ops()
        self._next_attempt = 0.0
        self._down_since: float | None = None
        self._last_log = 0.0

    @property
    def dirty(self) -> int:
        """Keys waiting for Redis to come back (0 when healthy)."""
        return len(self._pending)

    def write_batch(self, items: list[CacheWrites]) -> None:
        """Reduce the batch to one write per key and send it with the pending ones; never block."""
        for writes in items:
            self._pending.add(writes, self._count_key)
        if not self._pending or time.monotonic() < self._next_attempt:
            self._trim()
            return
        started = time.perf_counter()
        try:
            refused = self._pipeline.send(self._pending)
        except REDIS.errors as exc:
            if not REDIS.unavailable(exc):
                raise
            self._failed(exc, time.perf_counter() - started)
            return
        if refused:
            self._reject(refused)
        SINK_WRITE_SECONDS.labels(sink=SINK).observe(time.perf_counter() - started)
        EVENTS_STORED.labels(sink=SINK).inc(len(self._pending))
        if self._down_since is not None:
            log.info("Redis back: caught up", keys=len(self._pending))
            self._down_since = None
            self._next_attempt = 0.0
        self._pending = Ops()

    def _failed(self, exc: BaseException, took: float) -> None:
        """Count the miss, keep the pending writes (bounded), back off only if failing is slow.

        A refused connection fails in a millisecond, so every batch retries (no batch is held
        back longer than needed); a timeout costs ``socket_timeout``, so those attempts are
        spaced by ``retry_interval_seconds``. Logged at the first failure, then every 10 s.
        """
        SINK_ERRORS.labels(sink=SINK).inc()
        now = time.monotonic()
        if took >= _SLOW_FAILURE_SECONDS:
            self._next_attempt = now + self.config.retry_interval_seconds
        if self._down_since is None or now - self._last_log >= 10:
            self._down_since = self._down_since or now
            self._last_log = now
            log.warning(
                "Redis unavailable: keeping the latest value per key for catch-up",
                pending_keys=len(self._pending), down_s=round(now - self._down_since, 1),
                error=str(exc).splitlines()[0] if str(exc) else type(exc).__name__, fix=REDIS.fix,
            )  # fmt: skip
        self._trim()

    def close(self) -> None:
        """Try the pending writes once more (finite input ends here), then close the client.

        Writes still pending after that are lost with the process (Redis is a cache)."""
        if self._pending:
            self._next_attempt = 0.0
            self.write_batch([])
        self.client.close()
        self._rejects.close()

    def _reject(self, refused: list[RefusedWrite]) -> None:
        """Dead-letter the writes Redis refused for their data (``store_rejected``)."""
        now = datetime.now(UTC)
        rejections = []
        for (kind, ident), value, error in refused:
            doc = {"kind": kind, "key": ident, "value": value}
            digest = hashlib.sha256(repr(("redis", kind, ident)).encode()).digest()
            rejections.append(Rejection(
                Reason.STORE_REJECTED,
                f"Redis refused the {kind} write of {ident[:80]!r}: {str(error).splitlines()[0]}",
                json_text(doc).encode(), Source("redis", -1, int.from_bytes(digest[:8]) >> 1), now,
            ))  # fmt: skip
        self._rejects.write(rejections)

    def _trim(self) -> None:
        """Bound the pending writes to ``dirty_cap`` keys (memory during an outage), saying so."""
        dropped = self._pending.trim(self.config.dirty_cap)
        if dropped:
            log.warning(
                "Redis catch-up map full: dropped the least recently updated keys",
                dropped=dropped,
                cap=self.config.dirty_cap,
            )
