"""Sessionization per user in event time, with state discarded as soon as a session closes.

Definition (see docs/semantics.md, "Sessions"): a session starts at a user's first event, or at a successful
login while a session is open; it ends at a ``logout`` (which belongs to it, ``ended_by='logout'``),
after ``gap`` without events (``ended_by='timeout'``, ``ended_at`` = last event), or when the next
event would make it longer than ``max_length`` (``ended_by='timeout'``). Two consecutive events of
a user are in the same session exactly when the second is at most ``gap`` after the first.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Self

from operators.expiry import ExpiryQueue
from operators.records import Event, Session
from operators.session_state import OpenSession, session_id_for
from operators.snapshots import ClosedSpan, SessionsSnapshot
from operators.state import MIN_TICK, ShardClock
from operators.stateful import StatefulLogic

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


@dataclass(slots=True)
class SessionStats:
    """What the metrics report (``dataflows.observers.observe_sessions``).

    Counters since the observer last took them; gauges as of the end of the last call, and the
    values the observer last added to the process's gauges (it adds only the change since).
    """

    late_events: int = 0
    closed: Counter[str] = field(default_factory=Counter)  # sessions closed, by ``ended_by``
    open_sessions: int = 0  # gauge: sessions open
    users: int = 0  # gauge: users with state (an open session or a remembered closed one)
    reported: tuple[int, int] = (0, 0)  # (open_sessions, users) last added to the gauges


class Sessionizer(StatefulLogic[Event, Event | Session, SessionStats]):
    """Sessions of the users of one shard; the one step that writes an event's session fields.

    Outputs every input event (the same object, ``session_id`` set, ``late`` set when it could not
    be placed) in input order, then at most one ``Session`` row per session: for each session
    opened or closed by the call, and, at most once per ``update_interval`` of wall time, for the
    open sessions changed since their last row ("dirty"; flushed together, by a tick if idle).
    The last row of every session is its closed state.

    Event ownership: an event's ``session_id`` and ``late`` are set here, once, while the batch
    passes through ``sessionize``; it runs before any other step reads the batch (the per-user
    rules, the rollups, the sinks, the credential-stuffing step that holds events across
    batches), and nothing writes to an event after it: the same objects are shared by all of them
    and read on the sinks' own threads (``dataflows.partition_stage``).

    Memory: one entry per open session, plus, until the watermark passes its end, the id and span of
    a user's session closed by an event (logout, new login, gap or cap seen on arrival) so that a
    straggler of that session is labelled with its id instead of opening a bogus session.
    """

    def __init__(self, params: SessionParams) -> None:
        super().__init__(params.lateness, SessionStats())
        self.params = params
        self._open: dict[str, OpenSession] = {}
        self._closed: dict[str, ClosedSpan] = {}
        self._open_expiry: ExpiryQueue[str] = ExpiryQueue()
        self._closed_expiry: ExpiryQueue[str] = ExpiryQueue()
        self._dirty: dict[str, OpenSession] = {}  # session id -> changed since its row
        self._flush_due: datetime | None = None  # wall time of the next flush of ``_dirty``
        self._touched: dict[str, OpenSession] = {}  # opened, changed or closed by this call

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
        touched = self._touched = {}
        observe, place = self.clock.observe, self._place
        for event in items:
            observe(event.ts, now)
            place(event, now, touched)
        self._expire_at(now)
        return self._rows(now)

    def on_tick(self, now: datetime) -> list[Session]:
        """Close sessions idle past the gap (watermark advanced by wall time); flush due rows."""
        self._touched = {}
        super().on_tick(now)
        return self._rows(now)

    def next_tick(self) -> datetime | None:
        """When the earliest open session or remembered closed one would expire, or rows are due."""
        tick = super().next_tick()
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
        self._count()
        return dropped

    def is_empty(self) -> bool:
        """No open session and nothing remembered."""
        return not self._open and not self._closed

    def snapshot(self) -> SessionsSnapshot:
        """Picklable immutable copy of the whole shard."""
        return SessionsSnapshot(
            1,
            self.clock.snapshot(),
            tuple(s.to_tuple() for s in self._open.values()),
            tuple(self._closed.items()),
            self._open_expiry.snapshot(),
            self._closed_expiry.snapshot(),
            tuple(self._dirty),
            self._flush_due,
        )

    @classmethod
    def restore(cls, saved: Any, params: SessionParams) -> Self:
        """Rebuild a shard from a ``SessionsSnapshot`` (or 0.2.0's tuple)."""
        snapshot = SessionsSnapshot.of(saved)
        self = cls(params)
        self.clock = ShardClock.restore(snapshot.clock)
        self._open = {t[1]: OpenSession.from_tuple(t) for t in snapshot.open}
        by_id = {s.session_id: s for s in self._open.values()}
        self._dirty = {sid: by_id[sid] for sid in snapshot.dirty}
        self._flush_due = snapshot.flush_due
        self._closed = dict(snapshot.closed)
        self._open_expiry = ExpiryQueue(snapshot.open_expiry)
        self._closed_expiry = ExpiryQueue(snapshot.closed_expiry)
        self._count()
        return self

    # --- internals ------------------------------------------------------------------------------
    def _count(self) -> None:
        """Bring the gauges of ``stats`` up to date."""
        opened = self._open
        self.stats.open_sessions = len(opened)
        self.stats.users = len(opened) + sum(1 for user in self._closed if user not in opened)

    def _expiry(self, s: OpenSession) -> datetime:
        p = self.params
        by_gap, by_cap = s.last + p.gap, s.started + p.max_length
        return by_gap if by_gap < by_cap else by_cap

    def _rows(self, now: datetime) -> list[Session]:
        """Rows of the touched sessions that are new or closed, plus the dirty ones when due
        (the end of every call: the gauges are counted here too)."""
        self._count()
        rows: list[Session] = []
        dirty = self._dirty
        every_batch = not self.params.update_interval
        for sid, s in self._touched.items():
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

    def _place(self, event: Event, now: datetime, touched: dict[str, OpenSession]) -> None:
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

    def _start(self, event: Event, touched: dict[str, OpenSession]) -> None:
        """Open a session with ``event`` (closed at once if it is a logout)."""
        user, ts = event.user_id, event.ts
        s = OpenSession(session_id_for(user, ts, event.event_id), user, ts)
        s.add(event)
        touched[s.session_id] = s
        if event.type == LOGOUT:
            self._close(s, LOGOUT, ts, touched)
            return
        self._open[user] = s
        self._open_expiry.schedule(user, self._expiry(s))

    def _close(
        self, s: OpenSession, ended_by: str, ended_at: datetime, touched: dict[str, OpenSession]
    ) -> None:
        """Close a session because of an event: remember its span until the watermark passes."""
        s.ended_by, s.ended_at = ended_by, ended_at
        touched[s.session_id] = s
        self.stats.closed[ended_by] += 1
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
        self.stats.late_events += 1

    def _expire(self, watermark: datetime) -> list[Session]:
        """Close the open sessions ``watermark`` has passed (their rows come from ``_rows``) and
        forget the closed spans it has passed."""
        touched = self._touched
        expired = self._open_expiry.due(watermark, self._open_expiry_of)
        for user in expired:
            s = self._open.pop(user)
            s.ended_by, s.ended_at = TIMEOUT, s.last
            touched[s.session_id] = s
        if expired:
            self.stats.closed[TIMEOUT] += len(expired)
        for user in self._closed_expiry.due(watermark, self._closed_expiry_of):
            del self._closed[user]
        return []

    def _earliest(self) -> datetime | None:
        a, b = self._open_expiry.earliest(), self._closed_expiry.earliest()
        return a if b is None else b if a is None else min(a, b)

    def _open_expiry_of(self, user: str) -> datetime | None:
        s = self._open.get(user)
        return None if s is None else self._expiry(s)

    def _closed_expiry_of(self, user: str) -> datetime | None:
        closed = self._closed.get(user)
        return None if closed is None else closed[2]
