"""One open session's state: what ``operators.sessions.Sessionizer`` holds per user."""

from __future__ import annotations

import hashlib
from datetime import datetime

from operators.records import Event, Session
from operators.snapshots import SessionTuple


def session_id_for(user_id: str, started_at: datetime, first_event_id: str) -> str:
    """Deterministic id, so a replay of the same input yields the same sessions."""
    key = f"{user_id}|{started_at.isoformat()}|{first_event_id}".encode()
    return hashlib.sha1(key, usedforsecurity=False).hexdigest()[:32]


class OpenSession:
    """Mutable state of one open session (``record`` gives the immutable row)."""

    __slots__ = (
        "country", "device", "emitted", "ended_at", "ended_by", "entry_page", "entry_ts", "event_count",
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
        self.country: str | None = None
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
        if self.country is None:
            self.country = event.country  # like ip: the first located event's
        if ts > self.last:
            self.last = ts
        elif ts < self.started:
            self.started = ts
        event.session_id = self.session_id  # the one write besides ``Sessionizer._late``

    def record(self) -> Session:
        """A fresh immutable row of the current state."""
        return Session(
            self.session_id, self.user_id, self.started, self.last, self.ended_at,
            self.event_count, self.page_views, (self.last - self.started).total_seconds(),
            self.entry_page, self.exit_page, self.device, self.ip, self.ended_by, self.country,
        )  # fmt: skip

    def to_tuple(self) -> SessionTuple:
        """Immutable copy for snapshots (open sessions only)."""
        return (
            self.session_id, self.user_id, self.started, self.last, self.event_count,
            self.page_views, self.entry_page, self.entry_ts, self.exit_page, self.exit_ts,
            self.device, self.ip, self.country,
        )  # fmt: skip

    @classmethod
    def from_tuple(cls, t: SessionTuple) -> OpenSession:
        """Inverse of ``to_tuple`` (0.2.0's tuple has no country: None until an event has one)."""
        s = cls(t[0], t[1], t[2])
        (s.last, s.event_count, s.page_views, s.entry_page, s.entry_ts, s.exit_page,
         s.exit_ts, s.device, s.ip) = t[3:12]  # fmt: skip
        s.country = t[12] if len(t) == 13 else None  # type: ignore[misc]  # the 13-tuple
        s.emitted = True  # snapshots are taken between batches, after each session's first row
        return s
