"""Every record rtep produces, and where each is kept: the one place a record's shape is spelt.

Events, rejections, sessions, alerts and rollup rows flow between the steps and into the sinks;
the PostgreSQL sinks take their column lists from here (``columns``), the Redis sink and
``rtep erase`` their keys (``RedisKeys``), and ``tests/integration/test_record_shapes.py`` checks
both against the SQL tables. Plain slotted dataclasses (not pydantic): millions are built per
minute.
"""

from __future__ import annotations

from dataclasses import MISSING, dataclass, fields
from datetime import datetime
from enum import StrEnum
from operator import attrgetter
from typing import Any, NamedTuple


class Reason(StrEnum):
    """Why a message was rejected. The fixed, documented set of the contract."""

    INVALID_UTF8 = "invalid_utf8"
    INVALID_JSON = "invalid_json"
    NOT_AN_OBJECT = "not_an_object"
    MISSING_FIELD = "missing_field"
    WRONG_TYPE = "wrong_type"
    UNKNOWN_TYPE = "unknown_type"
    INVALID_EVENT_ID = "invalid_event_id"
    INVALID_TIMESTAMP = "invalid_timestamp"
    FUTURE_TIMESTAMP = "future_timestamp"
    EMPTY_USER_ID = "empty_user_id"
    INVALID_VALUE = "invalid_value"
    TOO_LARGE = "too_large"
    EMPTY_MESSAGE = "empty_message"
    TOO_LONG = "too_long"
    STORE_REJECTED = "store_rejected"


class Source(NamedTuple):
    """Where a message came from in Kafka (for dead letters and idempotent rejected rows).

    A NamedTuple: one is built per message, and it is 5 times cheaper than a frozen dataclass."""

    topic: str
    partition: int
    offset: int


class Replay(NamedTuple):
    """A message re-sent by ``rtep.commands.dlq_replay``: the ``rtep.rejected_events`` row it replays and
    the attempt number (headers ``rtep.replay.of``, ``rtep.replay.attempt``)."""

    of: int
    attempt: int


@dataclass(frozen=True, slots=True)
class Rejection:
    """A message that failed validation: the original bytes, where they came from, and why
    (and, when it was a replay of a dead letter rejected again, which one)."""

    reason: Reason
    detail: str
    raw: bytes
    source: Source
    received_at: datetime
    replay: Replay | None = None


@dataclass(slots=True)
class Event:
    """A valid, normalised event. ``session_id`` and ``late`` are set by sessionization, the
    fields between ``browser`` and ``longitude`` by enrichment."""

    event_id: str
    type: str
    ts: datetime
    user_id: str
    payload: dict[str, Any]
    received_at: datetime
    ip: str | None = None
    device: str | None = None
    page: str | None = None
    browser: str | None = None
    os: str | None = None
    device_class: str | None = None
    # where ``ip`` is (``operators.geo.Location``): set by enrichment, None for private or
    # unknown addresses; city and coordinates only with a city database
    country: str | None = None
    asn: int | None = None
    as_org: str | None = None
    city: str | None = None
    latitude: float | None = None
    longitude: float | None = None
    session_id: str | None = None
    late: bool = False

    @property
    def failed_login(self) -> bool:
        """True for a login whose payload says ``success: false``."""
        return self.type == "login" and self.payload.get("success", True) is False

    @property
    def successful_login(self) -> bool:
        """True for a login that succeeded (``success`` absent or true)."""
        return self.type == "login" and self.payload.get("success", True) is not False

    def __setstate__(self, state: tuple[None, dict[str, Any]]) -> None:
        """Unpickle (a recovery snapshot holds events): fields added since the snapshot was
        written take their defaults instead of being missing (an ``AttributeError`` later)."""
        for name, default in _EVENT_DEFAULTS:
            setattr(self, name, default)
        for name, value in state[1].items():
            setattr(self, name, value)


_EVENT_DEFAULTS = tuple((f.name, f.default) for f in fields(Event) if f.default is not MISSING)

EVENT_TS = attrgetter("ts")
"""An event's time, read in C: for ``max``/``sorted`` over a batch without a Python call per item."""


@dataclass(slots=True)
class Session:
    """One row of ``rtep.sessions`` (upserted by session_id; ``ended_at`` None while open).

    A fresh copy per emission that the operator never touches again: read-only by convention
    (not ``frozen``: a frozen dataclass costs 6x more to build, and one is built per event or so).
    """

    session_id: str
    user_id: str
    started_at: datetime
    last_event_at: datetime
    ended_at: datetime | None
    event_count: int
    page_views: int
    duration_seconds: float
    entry_page: str | None
    exit_page: str | None
    device: str | None
    ip: str | None
    ended_by: str | None
    country: str | None = None  # of the session's first located event (``operators.geo``)


@dataclass(slots=True)
class Alert:
    """One row of ``rtep.alerts`` (upserted by alert_id: an ongoing incident overwrites it).

    A fresh copy per emission, read-only by convention (like ``Session``).
    """

    alert_id: str
    rule: str
    severity: str
    subject_type: str
    subject: str
    window_start: datetime
    window_end: datetime
    event_count: int
    details: dict[str, Any]
    created_at: datetime


@dataclass(slots=True)
class RollupRow:
    """One row of ``rtep.event_counts_minute``: current totals, to overwrite (not add).

    A fresh copy per emission, read-only by convention (like ``Session``).
    """

    minute: datetime
    type: str
    events: int
    unique_users: int


def columns(record: type) -> tuple[str, ...]:
    """A record's fields in order: the columns its table has and its sink writes (one each)."""
    return tuple(f.name for f in fields(record))


REJECTION_COLUMNS = (
    "received_at", "reason", "detail", "raw", "source_topic", "source_partition", "source_offset",
    "replay_of", "replay_attempt",
)  # fmt: skip
"""``rtep.rejected_events`` columns a ``Rejection`` fills (``source`` and ``replay`` flattened)."""


@dataclass(frozen=True, slots=True)
class RedisKeys:
    """The contract's Redis key layout under one prefix (``RTEP_REDIS_PREFIX``): written by the
    Redis sink, deleted by ``rtep erase``, read by dashboards and tests."""

    prefix: str = "rtep:"

    def user(self, user_id: str) -> str:
        """Hash of the user's last activity (``USER_HASH``)."""
        return f"{self.prefix}user:{user_id}"

    @property
    def sessions_active(self) -> str:
        """Sorted set: open session_id -> last activity (epoch seconds)."""
        return self.prefix + "sessions:active"

    @property
    def alerts_recent(self) -> str:
        """List of the latest alerts as JSON, newest first, capped."""
        return self.prefix + "alerts:recent"

    @property
    def counts(self) -> str:
        """``str.format`` template of a per-minute count key: ``type`` and ``minute`` (UTC)."""
        return self.prefix + "counts:{type}:{minute:%Y%m%d%H%M}"


USER_HASH = {
    "last_type": "type", "last_page": "page", "device": "device", "session_id": "session_id",
    "country": "country",
}  # fmt: skip
"""A ``RedisKeys.user`` hash: ``last_seen`` (the latest event time) and these fields, each the
named ``Event`` attribute of the user's latest event that had it."""
