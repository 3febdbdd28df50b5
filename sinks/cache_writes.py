"""What the flow sends the Redis cache (``CacheWrites``), folded into one pending write per key.

The flow maps each of its four streams (events, sessions, alerts, rollup rows) to
``(key, CacheWrites)`` before merging them into the Redis sink's input, so the sink folds each
kind with its own method (``Ops``) instead of asking every record its type. An ``Erase`` (an
``Event``) travels in the events, sessions and alerts lists, in order with their records: at each
one the user's pending writes are forgotten and the deletion of their keys is queued.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from operator import attrgetter
from typing import Any, TypeVar

from operators.erasure import Erase, has_erasure, split_at_erasures
from operators.records import USER_HASH, Alert, Event, RollupRow, Session
from sinks.codec import alert_json, json_text

T = TypeVar("T")
OpKey = tuple[str, str]
"""A pending write's key: (kind, ident), kind one of erase, user, session, alert, count."""
UserFields = dict[str, tuple[datetime, str | None]]
"""A user hash being folded: field → (time of the event it comes from, its text)."""


@dataclass(slots=True)
class CacheWrites:
    """The Redis sink's input: records for the cache, by kind (in the flow, one kind per chunk).

    ``events``, ``sessions`` and ``alerts`` may hold an ``Erase`` among their records (see the
    module's docstring)."""

    events: list[Event] = field(default_factory=list)
    sessions: list[Session] = field(default_factory=list)
    alerts: list[Alert] = field(default_factory=list)
    rollups: list[RollupRow] = field(default_factory=list)

    def __len__(self) -> int:
        """How many records: what the sink's ``max_pending`` counts."""
        return len(self.events) + len(self.sessions) + len(self.alerts) + len(self.rollups)


def cache_events(chunk: tuple[str, list[Event]]) -> tuple[str, CacheWrites]:
    """``map`` step: an events chunk as the Redis sink's input (same key)."""
    return chunk[0], CacheWrites(events=chunk[1])


def cache_sessions(chunk: tuple[str, list[Session]]) -> tuple[str, CacheWrites]:
    """``map`` step: a sessions chunk as the Redis sink's input (same key)."""
    return chunk[0], CacheWrites(sessions=chunk[1])


def cache_alerts(chunk: tuple[str, list[Alert]]) -> tuple[str, CacheWrites]:
    """``map`` step: an alerts chunk as the Redis sink's input (same key)."""
    return chunk[0], CacheWrites(alerts=chunk[1])


def cache_rollups(chunk: tuple[str, list[RollupRow]]) -> tuple[str, CacheWrites]:
    """``map`` step: a rollup rows chunk as the Redis sink's input (same key)."""
    return chunk[0], CacheWrites(rollups=chunk[1])


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

    def add(self, writes: CacheWrites, count_key: str) -> None:
        """Fold a ``CacheWrites`` into the pending writes (``count_key``: ``RedisKeys.counts``)."""
        self._fold(writes.events, self._add_event)
        self._fold(writes.sessions, self._add_session)
        self._fold(writes.alerts, self._add_alert)
        for row in writes.rollups:
            key = count_key.format(type=row.type, minute=row.minute.astimezone(UTC))
            self.put(("count", key), int(row.events))

    def _fold(self, items: list[T], add: Callable[[T], None]) -> None:
        """``add`` each record in order, erasing at each ``Erase`` among them."""
        runs: Iterable[tuple[list[T], object]] = (
            split_at_erasures(items) if has_erasure(items) else ((items, None),)
        )
        for run, erase in runs:
            for item in run:
                add(item)
            if isinstance(erase, Erase):
                self.erase(erase)

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

    def _add_session(self, session: Session) -> None:
        """An open session's score is its last activity; a closed one's None (to remove)."""
        score = None if session.ended_at is not None else session.last_event_at.timestamp()
        self.put(("session", session.session_id), score)

    def _add_alert(self, alert: Alert) -> None:
        """The alert's latest version, as the JSON pushed on the recent-alerts list."""
        self.put(("alert", alert.alert_id), alert_json(alert))

    def _add_event(self, event: Event) -> None:
        """Fold an event into its user's hash: ``{field: (event time, text)}``.

        Each field keeps its value from the latest event (by event time, the later one on ties)
        that had it, so the result does not depend on how records were split into batches (what
        catch-up relies on). ``last_seen``'s text is None here: the writer formats its time as
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
