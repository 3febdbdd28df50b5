"""Records for the sink tests: events, rejections, sessions, alerts and rollup rows."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from operators.records import Alert, Event, Reason, Rejection, Session, Source

T0 = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)


def make_event(i: int = 0, **changes: Any) -> Event:
    """A page_view event number ``i`` (deterministic id), with ``changes`` applied."""
    user = changes.pop("user_id", f"u{i % 7}")
    values: dict[str, Any] = {
        "event_id": str(uuid.UUID(int=i + 1)),
        "type": "page_view",
        "ts": T0 + timedelta(seconds=i),
        "user_id": user,
        "payload": {"userId": user, "page": f"/p/{i % 11}", "device": "Chrome on macOS"},
        "received_at": T0 + timedelta(seconds=i, milliseconds=5),
        "ip": "10.0.0.1",
        "device": "Chrome on macOS",
        "page": f"/p/{i % 11}",
        "browser": "Chrome",
        "os": "macOS",
        "device_class": "desktop",
        "session_id": f"s-{user}",
    }
    values.update(changes)
    return Event(**values)


def make_rejection(offset: int, raw: bytes, reason: Reason = Reason.INVALID_JSON) -> Rejection:
    """A rejection of ``raw`` read at ``offset`` of partition 0 of topic ``t.events``."""
    return Rejection(
        reason=reason,
        detail=f"bad message at {offset}",
        raw=raw,
        source=Source("t.events", 0, offset),
        received_at=T0 + timedelta(seconds=offset % 86400),
    )


def make_session(sid: str = "s1", **changes: Any) -> Session:
    """An open session with two events, with ``changes`` applied."""
    values: dict[str, Any] = {
        "session_id": sid,
        "user_id": "u1",
        "started_at": T0,
        "last_event_at": T0 + timedelta(seconds=30),
        "ended_at": None,
        "event_count": 2,
        "page_views": 1,
        "duration_seconds": 30.0,
        "entry_page": "/home",
        "exit_page": "/cart",
        "device": "Chrome on macOS",
        "ip": "10.0.0.1",
        "ended_by": None,
    }
    values.update(changes)
    return Session(**values)


def make_alert(alert_id: str, **changes: Any) -> Alert:
    """A failed_login_burst alert on user u1, with ``changes`` applied."""
    values: dict[str, Any] = {
        "alert_id": alert_id,
        "rule": "failed_login_burst",
        "severity": "warning",
        "subject_type": "user",
        "subject": "u1",
        "window_start": T0,
        "window_end": T0 + timedelta(seconds=40),
        "event_count": 5,
        "details": {"ips": ["10.0.0.1"]},
        "created_at": T0 + timedelta(seconds=41),
    }
    values.update(changes)
    return Alert(**values)
