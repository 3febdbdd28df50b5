"""Metric hooks run after each stateful step's batch or tick (per batch, never per event)."""

from __future__ import annotations

from collections import Counter
from typing import Any

from operators.detections.rule import Rule
from operators.records import Event, Session
from rtep.core import metrics

_open_sessions: dict[int, int] = {}
_session_users: dict[int, int] = {}


def observe_dedup(logic: Any) -> None:
    """Count the duplicates the deduplicator dropped in this batch."""
    dropped = logic.take_duplicate_count()
    if dropped:
        metrics.EVENTS_DUPLICATE.inc(dropped)


def observe_sessions(logic: Any, events: list[Event], sessions: list[Session]) -> None:
    """Active sessions and users held in state (per process), late events, closed sessions."""
    key = id(logic)
    if logic.is_empty():
        _open_sessions.pop(key, None)
        _session_users.pop(key, None)
    else:
        _open_sessions[key] = logic.open_sessions()
        _session_users[key] = logic.users()
    metrics.ACTIVE_SESSIONS.set(sum(_open_sessions.values()))
    metrics.SESSION_STATE_USERS.set(sum(_session_users.values()))
    late = sum(event.late for event in events)
    closed: Counter[str] = Counter(s.ended_by for s in sessions if s.ended_by is not None)
    if late:
        metrics.EVENTS_LATE.inc(late)
    for cause, count in closed.items():
        metrics.SESSIONS_CLOSED.labels(cause).inc(count)


def observe_alerts(rule: Rule[Any]) -> None:
    """Count new incidents (not updates of an ongoing one) by rule and severity."""
    opened = rule.stats.take()
    if opened:
        metrics.ALERTS.labels(rule.RULE, rule.SEVERITY).inc(opened)


def observe_rollups(logic: Any) -> None:
    """Count events too late for their minute bucket (already closed and written)."""
    dropped = logic.take_late_dropped()
    if dropped:
        metrics.ROLLUP_LATE_DROPPED.inc(dropped)
