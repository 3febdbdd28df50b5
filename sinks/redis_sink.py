"""The Redis views of the contract: last activity per user, active sessions, recent alerts, counts.

Each batch of mixed items (Event, Session, Alert, RollupRow) is first reduced to one write per
key ("ops", the latest value per key), then sent in ONE pipeline (``transaction=False``), with
the writes of many keys packed into one command where Redis allows it (per-command overhead,
in redis-py and in Redis, dominates: a batch of 5,000 events often touches 5,000 users):

- ``{prefix}user:{userId}`` hash ``last_seen`` (ISO, UTC, microseconds), ``last_type``,
  ``last_page``, ``device``, ``session_id`` from the user's latest event by event time; fields the
  event lacks keep their previous value. A small script skips the write of a user when the
  stored ``last_seen`` is newer, so late or replayed events never move a user back in time; one
  script call writes up to ``_USERS_PER_CALL`` users.
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
import itertools
import time
from collections.abc import Callable
from datetime import UTC, datetime
from operator import attrgetter
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from operators.erasure import Erase
from operators.records import (
    USER_HASH,
    Alert,
    Event,
    Reason,
    RedisKeys,
    Rejection,
    RollupRow,
    Session,
    Source,
)
from rtep.core.logs import get_logger
from rtep.core.metrics import EVENTS_STORED, SINK_ERRORS, SINK_WRITE_SECONDS
from sinks.background import BackgroundSink
from sinks.codec import alert_json, json_text
from sinks.retry import REDIS, RetryPolicy, redis_data_error
from sinks.store_rejects import RejectWriter, StoreRejects

log = get_logger("rtep.sinks.redis")
SINK = "redis"
_SLOW_FAILURE_SECONDS = 0.1

# For each user key: write its fields unless the stored last_seen is newer (ISO strings of one
# fixed format compare like the times they denote), and renew its TTL. ARGV[1] is the TTL, then,
# per key in order: the number of field/value pairs, the new last_seen, then the pairs. A key of
# another type (WRONGTYPE) is skipped and its index returned; any other error aborts the call.
_USERS_LUA = """
local ttl, i, refused = tonumber(ARGV[1]), 2, {}
for k = 1, #KEYS do
  local pairs_n, stamp = tonumber(ARGV[i]), ARGV[i + 1]
  local cur = redis.pcall('HGET', KEYS[k], 'last_seen')
  if type(cur) == 'table' and cur.err then
    if string.sub(cur.err, 1, 9) ~= 'WRONGTYPE' then return redis.error_reply(cur.err) end
    refused[#refused + 1] = k
  else
    if not cur or cur <= stamp then
      redis.call('HSET', KEYS[k], unpack(ARGV, i + 2, i + 1 + 2 * pairs_n))
    end
    redis.call('EXPIRE', KEYS[k], ttl)
  end
  i = i + 2 + 2 * pairs_n
end
return refused
"""
_USERS_PER_CALL = 1000  # bounds how long one script call holds Redis (~1 ms)
# Drop older entries of this alert (they start with ARGV[1]), push the new one, cap the list.
_ALERT_LUA = """
local head = ARGV[1]
for _, v in ipairs(redis.call('LRANGE', KEYS[1], 0, -1)) do
  if string.sub(v, 1, #head) == head then redis.call('LREM', KEYS[1], 0, v) end
end
redis.call('LPUSH', KEYS[1], ARGV[2])
redis.call('LTRIM', KEYS[1], 0, tonumber(ARGV[3]) - 1)
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[4]))
return 1
"""

# Remove the recent alerts whose subject is the user ARGV[1] (an erasure).
_ERASE_ALERTS_LUA = """
local removed = 0
for _, v in ipairs(redis.call('LRANGE', KEYS[1], 0, -1)) do
  local ok, doc = pcall(cjson.decode, v)
  if ok and doc.subject_type == 'user' and doc.subject == ARGV[1] then
    removed = removed + redis.call('LREM', KEYS[1], 0, v)
  end
end
return removed
"""

OpKey = tuple[str, str]
UserFields = dict[str, tuple[datetime, str | None]]


def _last_seen(ts: datetime) -> str:
    """One fixed ISO format, so that string order is time order."""
    if ts.tzinfo is not UTC:  # validated events are in UTC already
        ts = ts.astimezone(UTC)
    return ts.isoformat(timespec="microseconds")


_USER_HASH_NAMES = tuple(USER_HASH)
_USER_HASH_VALUES = attrgetter(*USER_HASH.values())


def _user_fields(event: Event) -> zip[tuple[str, str | None]]:
    """The user-hash fields an event sets besides ``last_seen`` (None: the event lacks it)."""
    return zip(_USER_HASH_NAMES, _USER_HASH_VALUES(event), strict=True)


class Ops:
    """Pending Redis writes, one per key, oldest-updated first; folding keeps the latest value."""

    def __init__(self) -> None:
        self.items: dict[OpKey, Any] = {}  # insertion order = update order (put re-inserts)

    def __len__(self) -> int:
        return len(self.items)

    def add(self, item: Event | Session | Alert | RollupRow, count_key: str) -> None:
        """Fold one record into the pending writes."""
        if type(item) is Erase:
            self.erase(item)
        elif isinstance(item, Event):
            self._add_event(item)
        elif isinstance(item, Session):
            score = None if item.ended_at is not None else item.last_event_at.timestamp()
            self.put(("session", item.session_id), score)
        elif isinstance(item, Alert):
            self.put(("alert", item.alert_id), alert_json(item))
        elif isinstance(item, RollupRow):
            key = count_key.format(type=item.type, minute=item.minute.astimezone(UTC))
            self.put(("count", key), int(item.events))
        else:
            raise TypeError(f"RedisSink cannot write {type(item).__name__}")

    def erase(self, erase: Erase) -> None:
        """Forget the user's pending writes (their hash, their sessions, alerts about them) and
        queue the deletion of their keys, sent before any other write of the next pipeline."""
        user = erase.user_id
        self.items.pop(("user", user), None)
        for session_id in erase.session_ids:
            self.items.pop(("session", session_id), None)
        subject = json_text({"subject_type": "user", "subject": user})[1:-1].encode()
        for key in [k for k, v in self.items.items() if k[0] == "alert" and subject in v]:
            del self.items[key]
        self.items.pop(("erase", user), None)
        self.items = {("erase", user): tuple(erase.session_ids), **self.items}  # rare: O(n) is fine

    def put(self, key: OpKey, value: Any) -> None:
        """Record ``value`` as the newest write of ``key`` (moved to the end: most recent)."""
        self.items.pop(key, None)
        self.items[key] = value

    def _add_event(self, event: Event) -> None:
        """Fold an event into its user's hash: ``{field: (event time, text)}``.

        Each field keeps its value from the latest event (by event time, the later one on ties)
        that had it, so the result does not depend on how records were split into batches (what
        catch-up relies on). ``last_seen``'s text is None here: ``_send`` writes its time as
        ISO text once per user, not once per event (that formatting was 20 % of this thread).
        """
        key = ("user", event.user_id)
        ts = event.ts
        fields: UserFields = self.items.pop(key, None) or {}
        self.items[key] = fields
        last = fields.get("last_seen")
        if last is None or ts >= last[0]:
            fields["last_seen"] = (ts, None)
        for name, text in _user_fields(event):
            if text is not None and (name not in fields or ts >= fields[name][0]):
                fields[name] = (ts, text)

    def trim(self, cap: int) -> int:
        """Drop the least recently updated writes beyond ``cap``; return how many were dropped."""
        items = self.items
        dropped = max(0, len(items) - cap)
        oldest = (k for k in items if k[0] != "erase")  # an erasure is never dropped
        for key in list(itertools.islice(oldest, dropped)):
            del items[key]
        return dropped


class RedisSink(BackgroundSink[Event | Session | Alert | RollupRow]):
    """Events, sessions, alerts and rollup rows → the contract's Redis keys (one pipeline/batch).

    Guarantee: best effort, never blocking PostgreSQL. Idempotent overwrites, so replays create no
    duplicate. During an outage the latest value per key is kept (up to ``dirty_cap`` keys) and
    written when Redis is back; beyond the cap the least recently updated keys are dropped until
    a later record rewrites them. See docs/sinks.md for exactly what can be lost. Written in the
    background (``sinks.background``): one client per process.
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
        self._users_script = self.client.register_script(_USERS_LUA)
        self._alert_script = self.client.register_script(_ALERT_LUA)
        self._erase_alerts_script = self.client.register_script(_ERASE_ALERTS_LUA)
        self._keys = RedisKeys(config.prefix)
        self._count_key = self._keys.counts
        self._pending = Ops()
        self._next_attempt = 0.0
        self._down_since: float | None = None
        self._last_log = 0.0

    @property
    def dirty(self) -> int:
        """Keys waiting for Redis to come back (0 when healthy)."""
        return len(self._pending)

    def write_batch(self, items: list[Event | Session | Alert | RollupRow]) -> None:
        """Reduce the batch to one write per key and send it with the pending ones; never block."""
        for item in items:
            self._pending.add(item, self._count_key)
        if not self._pending or time.monotonic() < self._next_attempt:
            self._trim()
            return
        started = time.perf_counter()
        try:
            refused = self._send(self._pending)
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

    def _reject(self, refused: list[tuple[OpKey, Any, Exception]]) -> None:
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
        dropped = self._pending.trim(self.config.dirty_cap)
        if dropped:
            log.warning(
                "Redis catch-up map full: dropped the least recently updated keys",
                dropped=dropped,
                cap=self.config.dirty_cap,
            )

    def _send(self, ops: Ops) -> list[tuple[OpKey, Any, Exception]]:
        """All writes in one non-transactional pipeline, users and sessions packed per command.

        Returns the writes refused for their data (WRONGTYPE), which are not retried; raises
        the first error meaning Redis is unavailable (OOM, READONLY...), keeping every write
        pending."""
        keys = self._keys
        ttl = self.key_ttl_seconds
        active, recent = keys.sessions_active, keys.alerts_recent
        pipe = self.client.pipeline(transaction=False)
        commands: list[list[OpKey]] = []  # the ops each command of the pipeline writes
        user_ops: list[OpKey] = []
        user_keys: list[str] = []
        user_args: list[str | int] = [ttl]
        scores: dict[str, float] = {}
        ended: list[str] = []
        for op_key, value in ops.items.items():
            kind, ident = op_key
            if kind == "erase":  # first in the map (Ops.erase): later writes of the user stay
                commands += self._erase(pipe, ident, value)
            elif kind == "user":
                stamp = _last_seen(value["last_seen"][0])
                user_ops.append(op_key)
                user_keys.append(keys.user(ident))
                user_args += (len(value), stamp)
                for field, (_, text) in value.items():
                    user_args += (field, stamp if text is None else text)
                if len(user_keys) == _USERS_PER_CALL:
                    self._users_script(keys=user_keys, args=user_args, client=pipe)
                    commands.append(user_ops)
                    user_ops, user_keys, user_args = [], [], [ttl]
            elif kind == "session":
                if value is None:
                    ended.append(ident)
                else:
                    scores[ident] = value
            elif kind == "alert":
                head = json_text({"alert_id": ident})[:-1] + ","
                self._alert_script(
                    keys=[recent], args=[head, value, self.config.recent_alerts_cap, ttl],
                    client=pipe,
                )  # fmt: skip
                commands.append([op_key])
            else:
                pipe.set(ident, value, ex=self.config.counts_ttl_seconds)
                commands.append([op_key])
        if user_keys:
            self._users_script(keys=user_keys, args=user_args, client=pipe)
            commands.append(user_ops)
        if scores:
            pipe.zadd(active, scores)
            commands.append([("session", i) for i in scores])
        if ended:
            pipe.zrem(active, *ended)
            commands.append([("session", i) for i in ended])
        if scores or ended:
            pipe.expire(active, ttl)
            commands.append([])
        return _refused(ops, commands, pipe.execute(raise_on_error=False))

    def _erase(self, pipe: Any, user: str, session_ids: tuple[str, ...]) -> list[list[OpKey]]:
        """Queue the deletion of a user's keys: their hash, their sessions in sessions:active,
        the recent alerts about them; returns the (empty) op lists of those commands."""
        keys = self._keys
        pipe.delete(keys.user(user))
        if session_ids:
            pipe.zrem(keys.sessions_active, *session_ids)
        self._erase_alerts_script(keys=[keys.alerts_recent], args=[user], client=pipe)
        return [[], [], []] if session_ids else [[], []]


def _refused(
    ops: Ops, commands: list[list[OpKey]], results: list[Any]
) -> list[tuple[OpKey, Any, Exception]]:
    """The writes refused for their data, from a pipeline's results (``commands``: the ops each
    command wrote); raises the first error meaning Redis is unavailable."""
    refused: list[tuple[OpKey, Any, Exception]] = []
    for written, result in zip(commands, results, strict=True):
        if isinstance(result, Exception):
            if not redis_data_error(result):
                raise result
            refused += [(k, ops.items[k], result) for k in written]
        elif written and written[0][0] == "user" and result:  # the script's refused indexes
            wrongtype = redis.exceptions.ResponseError("WRONGTYPE: the key is not a hash")
            refused += [(written[k - 1], ops.items[written[k - 1]], wrongtype) for k in result]
    return refused
