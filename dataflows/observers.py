"""Metric hooks run after each stateful step's batch or tick (per batch, never per event).

Each reads the ``stats`` its operator keeps: counters are taken (added to the metric, then reset),
and a gauge summed over the partitions of a process is moved by the change since the operator
last reported, which the stats remember.
"""

from __future__ import annotations

from operators.dedup import Deduplicator
from operators.detections.rule import Rule, RuleParams
from operators.rollups import MinuteRollup, RollupMerge
from operators.sessions import Sessionizer
from rtep.core import metrics


def observe_dedup(logic: Deduplicator) -> None:
    """Count the duplicates the deduplicator dropped in this batch."""
    stats = logic.stats
    if stats.duplicates:
        metrics.EVENTS_DUPLICATE.inc(stats.duplicates)
        stats.duplicates = 0


def observe_sessions(logic: Sessionizer) -> None:
    """Active sessions and users held in state (per process), late events, closed sessions."""
    stats = logic.stats
    gauges = (stats.open_sessions, stats.users)
    if gauges != stats.reported:
        metrics.ACTIVE_SESSIONS.inc(gauges[0] - stats.reported[0])
        metrics.SESSION_STATE_USERS.inc(gauges[1] - stats.reported[1])
        stats.reported = gauges
    if stats.late_events:
        metrics.EVENTS_LATE.inc(stats.late_events)
        stats.late_events = 0
    for cause, count in stats.closed.items():
        metrics.SESSIONS_CLOSED.labels(cause).inc(count)
    stats.closed.clear()


def observe_alerts(rule: Rule[RuleParams]) -> None:
    """Count new incidents (not updates of an ongoing one) by rule and severity, and by rule and
    the country of the event that opened each."""
    opened = rule.stats.take()
    if opened:
        metrics.ALERTS.labels(rule.RULE, rule.SEVERITY).inc(opened)
        for country, count in rule.stats.take_countries().items():
            metrics.ALERTS_BY_COUNTRY.labels(rule.RULE, country).inc(count)


def observe_rollups(logic: MinuteRollup | RollupMerge) -> None:
    """Count events too late for their minute bucket (already closed and written)."""
    stats = logic.stats
    if stats.late_dropped:
        metrics.ROLLUP_LATE_DROPPED.inc(stats.late_dropped)
        stats.late_dropped = 0
