"""Sessionization per user in event time, with state discarded as soon as a session closes.

Definition (see docs/semantics.md, "Sessions"): a session starts at a user's first event, or at a successful
login while a session is open; it ends at a ``logout`` (which belongs to it, ``ended_by='logout'``),
after ``gap`` without events (``ended_by='timeout'``, ``ended_at`` = last event), or when the next
event would make it longer than ``max_length`` (``ended_by='timeout'``). Two consecutive events of
a user are in the same session exactly when the second is at most ``gap`` after the first.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Self

from operators.records import Event, Session
from operators.state import MIN_TICK, Clock, ClockSnapshot, ExpiryQueue, ShardClock

LOGOUT = "logout"
TIMEOUT = "timeout"


@dataclass(frozen=True, slots=True)
class SessionParams:
    """Session boundaries (event time) and how often an open session's row is re-emitted.

    ``update_interval`` (wall time) throttles the rows of open sessions: a session's row is emitted
    when it opens and when it closes, and in between at most once per interval (the latest state,
    if it changed); 0 emits every touched session after every batch. With many users nearly every
    event touches another session, so without it the sinks upsert about one row per event.
    """

    gap: timedelta = timedelta(seconds=1800)
    max_length: timedelta = timedelta(hours=24)
    lateness: timedelta = timedelta(seconds=60)
    update_interval: timedelta = timedelta(seconds=5)


def session_id_for(user_id: str, started_at: datetime, first_event_id: str) -> str:
    """Deterministic id, so a replay of the same input yields the same sessions."""
    key = f"{user_id}|{started_at.isoformat()}|{first_event_id}".encode()
    return hashlib.sha1(key, usedforsecurity=False).hexdigest()[:32]


_OpenTuple = tuple[
    str, str, datetime, datetime, int, int, str | None, datetime | None, str | None,
    datetime | None, str | None, str | None,
]  # fmt: skip


class _Open:
    """Mutable state of one session (internal; ``record`` gives the immutable row)."""

    __slots__ = (
        "device", "emitted", "ended_at", "ended_by", "entry_page", "entry_ts", "event_count",
        "exit_page", "exit_ts", "ip", "last", "page_views", "session_id", "started", "user_id",
    )  # fmt: skip

    def __init__(self, session_id: str, user_id: str, started: datetime) -> None:
        self.session_id = session_id
        self.user_id = user_id
        self.started = started
        self.last = started
        self.event_count = 0
        self.page_views = 0
        self.entry_page: str | None = None
        self.entry_ts: datetime | None = None
        self.exit_page: str | None = None
        self.exit_ts: datetime | None = None
        self.device: str | None = None
        self.ip: str | None = None
        self.ended_at: datetime | None = None
        self.ended_by: str | None = None
        self.emitted = False  # a row of it has been output (its opening row)

    def add(self, event: Event) -> None:
        """Count ``event`` into the session (any order within the session)."""
        ts = event.ts
        self.event_count += 1
        if event.type == "page_view":
            self.page_views += 1
        page = event.page
        if page is not None:
            if self.entry_ts is None or ts < self.entry_ts:
                self.entry_page, self.entry_ts = page, ts
            if self.exit_ts is None or ts >= self.exit_ts:
                self.exit_page, self.exit_ts = page, ts
        if self.device is None:
            self.device = event.device
        if self.ip is None:
            self.ip = event.ip
        if ts > self.last:
            self.last = ts
        elif ts < self.started:
            self.started = ts
        event.session_id = self.session_id

    def record(self) -> Session:
        """A fresh immutable row of the current state."""
        return Session(
            self.session_id, self.user_id, self.started, self.last, self.ended_at,
            self.event_count, self.page_views, (self.last - self.started).total_seconds(),
            self.entry_page, self.exit_page, self.device, self.ip, self.ended_by,
        )  # fmt: skip

    def to_tuple(self) -> _OpenTuple:
        """Immutable copy for snapshots (open sessions only)."""
        return (
            self.session_id, self.user_id, self.started, self.last, self.event_count,
            self.page_views, self.entry_page, self.entry_ts, self.exit_page, self.exit_ts,
            self.device, self.ip,
        )  # fmt: skip

    @classmethod
    def from_tuple(cls, t: _OpenTuple) -> _Open:
        """Inverse of ``to_tuple``."""
        s = cls(t[0], t[1], t[2])
        (s.last, s.event_count, s.page_views, s.entry_page, s.entry_ts, s.exit_page,
         s.exit_ts, s.device, s.ip) = t[3:]  # fmt: skip
        s.emitted = True  # snapshots are taken between batches, after each session's first row
        return s


_Closed = tuple[str, datetime, datetime]  # session_id, started_at, ended_at
SessionizerSnapshot = tuple[
    ClockSnapshot, tuple[_OpenTuple, ...], tuple[tuple[str, _Closed], ...],
    tuple[tuple[str, datetime], ...], tuple[tuple[str, datetime], ...], int,
    tuple[str, ...], datetime | None,
]  # fmt: skip


class Sessionizer:
    """ShardLogic[Event, Event | Session] for the users of one shard.

    Outputs every input event (the same object, ``session_id`` set, ``late`` set when it could not
    be placed) in input order, then at most one ``Session`` row per session: for each session
    opened or closed by the call, and, at most once per ``update_interval`` of wall time, for the
    open sessions changed since their last row ("dirty"; flushed together, by a tick if idle).
    The last row of every session is its closed state.
    Memory: one entry per open session, plus, until the watermark passes its end, the id and span of
    a user's session closed by an event (logout, new login, gap or cap seen on arrival) so that a
    straggler of that session is labelled with its id instead of opening a bogus session.
    """

    def __init__(self, params: SessionParams) -> None:
        self.params = params
        self.clock: Clock = ShardClock(params.lateness)
        self._open: dict[str, _Open] = {}
        self._closed: dict[str, _Closed] = {}
        self._open_expiry: ExpiryQueue[str] = ExpiryQueue()
        self._closed_expiry: ExpiryQueue[str] = ExpiryQueue()
        self._dirty: dict[str, _Open] = {}  # session id -> open session changed since its row
        self._flush_due: datetime | None = None  # wall time of the next flush of ``_dirty``
        self.late_events = 0

    # --- ShardLogic -----------------------------------------------------------------------------
    def on_batch(self, items: list[Event], now: datetime) -> list[Event | Session]:
        """Assign each event to its session; close what the watermark has passed."""
        rows = self.sessionize(items, now)
        out: list[Event | Session] = list(items)
        out.extend(rows)
        return out

    def sessionize(self, items: list[Event], now: datetime) -> list[Session]:
        """``on_batch`` without echoing the events: sets their ``session_id``/``late`` and
        returns only the session rows."""
        self.clock.advance(now)
        touched: dict[str, _Open] = {}
        observe, place = self.clock.observe, self._place
        for event in items:
            observe(event.ts, now)
            place(event, now, touched)
        self._expire(now, touched)
        return self._rows(touched, now)

    def on_tick(self, now: datetime) -> list[Session]:
        """Close sessions idle past the gap (watermark advanced by wall time)."""
        self.clock.advance(now)
        touched: dict[str, _Open] = {}
        self._expire(now, touched)
        return self._rows(touched, now)

    def next_tick(self) -> datetime | None:
        """When the earliest open session or remembered closed one would expire, or rows are due."""
        a, b = self._open_expiry.earliest(), self._closed_expiry.earliest()
        earliest = a if b is None else b if a is None else min(a, b)
        tick = self.clock.tick_for(earliest)
        flush = self._flush_due
        if flush is None:
            return tick
        last = self.clock.last_now
        if last is not None and flush < last + MIN_TICK:
            flush = last + MIN_TICK
        return flush if tick is None or flush < tick else tick

    def forget(self, user_id: str) -> list[str]:
        """Erase the user: drop their open session (never closed nor written again) and the
        span kept for stragglers; return the session ids dropped (operators/erasure.py)."""
        dropped = []
        opened = self._open.pop(user_id, None)
        if opened is not None:
            self._dirty.pop(opened.session_id, None)
            dropped.append(opened.session_id)
        closed = self._closed.pop(user_id, None)
        if closed is not None:
            dropped.append(closed[0])
        return dropped

    def is_empty(self) -> bool:
        """No open session and nothing remembered."""
        return not self._open and not self._closed

    def snapshot(self) -> SessionizerSnapshot:
        """Picklable immutable copy of the whole shard."""
        return (
            self.clock.snapshot(),
            tuple(s.to_tuple() for s in self._open.values()),
            tuple(self._closed.items()),
            self._open_expiry.snapshot(),
            self._closed_expiry.snapshot(),
            self.late_events,
            tuple(self._dirty),
            self._flush_due,
        )

    @classmethod
    def restore(cls, snapshot: SessionizerSnapshot, params: SessionParams) -> Self:
        """Rebuild a shard from ``snapshot``."""
        clock, opened, closed, open_q, closed_q, late, dirty, flush_due = snapshot
        self = cls(params)
        self.clock = ShardClock.restore(clock)
        self._open = {t[1]: _Open.from_tuple(t) for t in opened}
        by_id = {s.session_id: s for s in self._open.values()}
        self._dirty = {sid: by_id[sid] for sid in dirty}
        self._flush_due = flush_due
        self._closed = dict(closed)
        self._open_expiry = ExpiryQueue(open_q)
        self._closed_expiry = ExpiryQueue(closed_q)
        self.late_events = late
        return self

    # --- introspection for gauges ---------------------------------------------------------------
    def open_sessions(self) -> int:
        """Sessions currently open in this shard (for ``rtep_active_sessions``)."""
        return len(self._open)

    def users(self) -> int:
        """Users with any state in this shard (open session or remembered closed one)."""
        opened = self._open
        return len(opened) + sum(1 for user in self._closed if user not in opened)

    def take_late_count(self) -> int:
        """Events flagged late since the last call (for a metric); resets the counter."""
        n, self.late_events = self.late_events, 0
        return n

    # --- internals ------------------------------------------------------------------------------
    def _expiry(self, s: _Open) -> datetime:
        p = self.params
        by_gap, by_cap = s.last + p.gap, s.started + p.max_length
        return by_gap if by_gap < by_cap else by_cap

    def _rows(self, touched: dict[str, _Open], now: datetime) -> list[Session]:
        """Rows of the touched sessions that are new or closed, plus the dirty ones when due."""
        rows: list[Session] = []
        dirty = self._dirty
        every_batch = not self.params.update_interval
        for sid, s in touched.items():
            if every_batch or not s.emitted or s.ended_by is not None:
                s.emitted = True
                dirty.pop(sid, None)
                rows.append(s.record())
            else:
                dirty[sid] = s
        if not dirty:
            self._flush_due = None
        elif self._flush_due is None:
            self._flush_due = now + self.params.update_interval
        elif now >= self._flush_due:
            rows.extend(s.record() for s in dirty.values())
            dirty.clear()
            self._flush_due = None
        return rows

    def _place(self, event: Event, now: datetime, touched: dict[str, _Open]) -> None:
        ts, user = event.ts, event.user_id
        p = self.params
        s = self._open.get(user)
        if s is None:
            closed = self._closed.get(user)
            if closed is not None and ts < closed[2]:
                self._late(event, closed[0] if ts >= closed[1] else None)
                return
            watermark = self.clock.watermark(now)
            if watermark is not None and ts < watermark:
                self._late(event, None)
                return
        elif ts >= s.last:
            if not (
                ts - s.last > p.gap
                or ts - s.started > p.max_length
                or (event.type == "login" and event.successful_login)
            ):
                s.add(event)
                touched[s.session_id] = s
                if event.type == LOGOUT:
                    self._close(s, LOGOUT, ts, touched)
                return
            self._close(s, TIMEOUT, s.last, touched)
        elif (
            s.last - ts <= p.lateness
            and s.started - ts <= p.gap
            and s.last - ts <= p.max_length
            and (ts >= s.started or not self._before_closed(user, ts))
        ):
            s.add(event)
            touched[s.session_id] = s
            self._open_expiry.schedule(user, self._expiry(s))
            return
        else:
            self._late(event, s.session_id if ts >= s.started else self._closed_id(user, ts))
            return
        self._start(event, touched)

    def _start(self, event: Event, touched: dict[str, _Open]) -> None:
        """Open a session with ``event`` (closed at once if it is a logout)."""
        user, ts = event.user_id, event.ts
        s = _Open(session_id_for(user, ts, event.event_id), user, ts)
        s.add(event)
        touched[s.session_id] = s
        if event.type == LOGOUT:
            self._close(s, LOGOUT, ts, touched)
            return
        self._open[user] = s
        self._open_expiry.schedule(user, self._expiry(s))

    def _close(
        self, s: _Open, ended_by: str, ended_at: datetime, touched: dict[str, _Open]
    ) -> None:
        """Close a session because of an event: remember its span until the watermark passes."""
        s.ended_by, s.ended_at = ended_by, ended_at
        touched[s.session_id] = s
        self._open.pop(s.user_id, None)
        self._closed[s.user_id] = (s.session_id, s.started, ended_at)
        self._closed_expiry.schedule(s.user_id, ended_at)

    def _before_closed(self, user: str, ts: datetime) -> bool:
        """True when ``ts`` is before the end of the user's remembered closed session."""
        closed = self._closed.get(user)
        return closed is not None and ts < closed[2]

    def _closed_id(self, user: str, ts: datetime) -> str | None:
        closed = self._closed.get(user)
        return closed[0] if closed is not None and closed[1] <= ts < closed[2] else None

    def _late(self, event: Event, session_id: str | None) -> None:
        event.late = True
        event.session_id = session_id
        self.late_events += 1

    def _expire(self, now: datetime, touched: dict[str, _Open]) -> None:
        watermark = self.clock.watermark(now)
        if watermark is None:
            return
        for user in self._open_expiry.due(watermark, self._open_expiry_of):
            s = self._open.pop(user)
            s.ended_by, s.ended_at = TIMEOUT, s.last
            touched[s.session_id] = s
        for user in self._closed_expiry.due(watermark, self._closed_expiry_of):
            del self._closed[user]

    def _open_expiry_of(self, user: str) -> datetime | None:
        s = self._open.get(user)
        return None if s is None else self._expiry(s)

    def _closed_expiry_of(self, user: str) -> datetime | None:
        closed = self._closed.get(user)
        return None if closed is None else closed[2]
