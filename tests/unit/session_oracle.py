"""Offline reference sessionization (the definition in docs/semantics.md, "Sessions", written the simple way).

Takes a user's complete, time-ordered history at once, so tests (unit and end-to-end) can compare
the streaming ``Sessionizer`` with what the definition says, e.g. from a simulator's event log.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from operators.records import Event
from operators.session_state import session_id_for


@dataclass
class RefSession:
    """The columns of rtep.sessions that follow from the definition."""

    session_id: str
    user_id: str
    started_at: datetime
    last_event_at: datetime
    ended_by: str = "timeout"
    event_ids: list[str] = field(default_factory=list)
    page_views: int = 0
    pages: list[str] = field(default_factory=list)

    @property
    def event_count(self) -> int:
        return len(self.event_ids)


def reference_sessions(
    events: Iterable[Event], gap: timedelta, max_length: timedelta = timedelta(hours=24)
) -> list[RefSession]:
    """All sessions of ``events`` (any users; stable-sorted by time per user), all closed."""
    by_user: dict[str, list[Event]] = {}
    for event in sorted(events, key=lambda e: e.ts):
        by_user.setdefault(event.user_id, []).append(event)
    sessions: list[RefSession] = []
    for user, history in by_user.items():
        current: RefSession | None = None
        for e in history:
            starts = (
                current is None
                or e.ts - current.last_event_at > gap
                or e.ts - current.started_at > max_length
                or e.successful_login
            )
            if starts:
                current = RefSession(session_id_for(user, e.ts, e.event_id), user, e.ts, e.ts)
                sessions.append(current)
            assert current is not None
            current.event_ids.append(e.event_id)
            current.last_event_at = e.ts
            current.page_views += e.type == "page_view"
            if e.page is not None:
                current.pages.append(e.page)
            if e.type == "logout":
                current.ended_by = "logout"
                current = None
    return sessions
