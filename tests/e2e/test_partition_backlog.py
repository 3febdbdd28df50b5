"""A backlog over several partitions gives the in-order results, with 1 worker, 2 or 2 processes.

Kafka orders events only within a partition, and a backlog is read at a different speed per
partition. The stored sessions, failed-login and credential-stuffing alerts and per-minute rollups
must still be those of the offline reference computed from the sorted history.
"""

from __future__ import annotations

import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from operators.detection import (
    Alert,
    CredentialStuffing,
    CredentialStuffingParams,
    FailedLoginBurst,
    FailedLoginBurstParams,
)
from operators.model import Event
from operators.validation import Limits, check_message
from rtep.embedded import free_port
from rtep.settings import Settings
from tests.harness import Stack, read_topic, stop_processes, wait_until
from tests.unit.session_oracle import reference_sessions

SIM = ["--count", "15000", "--rate", "0", "--users", "400", "--span", "10800", "--seed", "11",
       "--attack-share", "0.06", "--malformed-share", "0.01"]  # fmt: skip
"""Three hours of traffic of 400 users, with injected attacks (failed-login bursts, stuffing)."""

VARIANTS = {"1 worker": ((),), "2 workers": (("-w", "2"),), "2 processes": ((), ())}
"""The dataflow processes each variant starts (their extra arguments)."""


def history_of(stack: Stack) -> dict[int, list[Event]]:
    """The valid events of the input topic, per partition, in partition order."""
    limits = Limits(max_future_skew=timedelta(days=1))
    now = datetime.now(UTC)
    by_partition: dict[int, list[Event]] = {}
    seen: set[str] = set()
    for record in read_topic(stack.brokers, stack.topics["RTEP_EVENTS_TOPIC"]):
        event = check_message(record.value or b"", now, now, limits)
        if isinstance(event, Event) and event.event_id not in seen:
            seen.add(event.event_id)
            by_partition.setdefault(record.partition, []).append(event)
    return by_partition


def incidents(alerts: list[Alert] | list[tuple[Any, ...]]) -> dict[str, tuple[Any, ...]]:
    """alert_id → (subject, window start, window end, count): the last state of each."""
    rows = [
        (a.alert_id, a.subject, a.window_start, a.window_end, a.event_count)
        if isinstance(a, Alert)
        else a
        for a in alerts
    ]
    return {row[0]: tuple(row[1:]) for row in rows}


def start(stack: Stack, variant: str) -> list[Any]:
    """The variant's dataflow processes, started on the stack."""
    args = VARIANTS[variant]
    if len(args) == 1:
        return [stack.start_pipeline(*args[0])]
    addresses = ";".join(f"127.0.0.1:{free_port()}" for _ in args)
    port = free_port()
    return [
        stack.start_pipeline("-i", str(i), "-a", addresses, RTEP_METRICS_PORT=str(port + i))
        for i in range(len(args))
    ]


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_a_multi_partition_backlog_gives_the_in_order_sessions_alerts_and_rollups(
    stack: Stack, tmp_path: Path, variant: str
) -> None:
    """Scenario: three hours of simulator traffic (400 users, each user's events in time order,
    logouts, failed-login bursts and credential stuffing) are produced to a 4-partition topic
    before the flow starts; the flow then reads it as a backlog.

    We expect: no event late and every one in a session; the sessions (start, event count,
    logout or timeout), the failed_login_burst and credential_stuffing alerts and the minute
    rollups equal the offline reference; every session whose gap the stream's event time has
    passed is closed within seconds of the backlog being stored.
    """
    stack.run_labelled_sim(tmp_path / "labels.jsonl", *SIM)
    by_partition = history_of(stack)
    assert len(by_partition) == 4
    history = [e for part in sorted(by_partition) for e in by_partition[part]]
    settings = Settings()
    gap = timedelta(seconds=settings.session_gap_seconds)
    lateness = timedelta(seconds=settings.allowed_lateness_seconds)
    reference = reference_sessions(history, gap)
    # A session must be closed once every partition's event time is past its gap.
    slowest = min(max(e.ts for e in part) for part in by_partition.values())
    must_close = {
        r.session_id
        for r in reference
        if r.ended_by == "logout" or r.last_event_at + gap < slowest - lateness
    }
    assert len(must_close) > 100

    processes = start(stack, variant)
    try:
        wait_until(
            lambda: (
                all(p.poll() is None for p in processes)
                and stack.scalar("SELECT count(*) FROM rtep.events") == len(history)
            ),
            timeout=240,
            what="every valid event to be stored",
        )
        stored_at = time.monotonic()
        wait_until(
            lambda: (
                stack.scalar(
                    "SELECT count(*) FROM rtep.sessions WHERE ended_by IS NOT NULL"
                    " AND session_id = ANY(%s)",
                    list(must_close),
                )
                == len(must_close)
            ),
            timeout=30,
            what="the sessions whose gap has passed to be closed",
        )
        print(
            f"{variant}: closed {len(must_close)} sessions {time.monotonic() - stored_at:.1f} s after the backlog was stored"
        )
        wait_until(
            lambda: (
                stack.scalar("SELECT coalesce(sum(event_count), 0) FROM rtep.sessions")
                == len(history)
            ),
            timeout=30,
            what="every event to be counted in its session",
        )
    finally:
        codes = stop_processes(processes)
        assert all(code in (0, -2, 130) for code in codes), stack.pipeline_log()

    assert stack.scalar("SELECT count(*) FROM rtep.events WHERE late OR session_id IS NULL") == 0
    stored = {
        row[0]: row[1:]
        for row in stack.query(
            "SELECT session_id, started_at, event_count, ended_by FROM rtep.sessions"
        )
    }
    assert {sid: (s[0], s[1]) for sid, s in stored.items()} == {
        r.session_id: (r.started_at, r.event_count) for r in reference
    }
    for r in reference:
        if r.session_id in must_close:
            assert stored[r.session_id][2] == r.ended_by, r
        else:
            assert stored[r.session_id][2] in (None, "timeout"), r

    failed = [e for e in history if e.failed_login]
    now = datetime.now(UTC)
    for rule, expected in (
        (
            FailedLoginBurst.RULE,
            FailedLoginBurst(FailedLoginBurstParams.from_settings(settings)).on_batch(failed, now),
        ),
        (
            CredentialStuffing.RULE,
            CredentialStuffing(CredentialStuffingParams.from_settings(settings)).on_batch(
                failed, now
            ),
        ),
    ):
        rows = stack.query(
            "SELECT alert_id, subject, window_start, window_end, event_count FROM rtep.alerts"
            " WHERE rule = %s",
            rule,
        )
        assert incidents(rows) == incidents(expected), rule
        assert expected, f"the simulator's attacks raised no {rule}"

    counts: Counter[tuple[datetime, str]] = Counter()
    users: dict[tuple[datetime, str], set[str]] = {}
    for e in history:
        key = (e.ts.replace(second=0, microsecond=0), e.type)
        counts[key] += 1
        users.setdefault(key, set()).add(e.user_id)
    rollups = {
        (row[0], row[1]): (row[2], row[3])
        for row in stack.query(
            "SELECT minute, type, events, unique_users FROM rtep.event_counts_minute"
        )
    }
    assert rollups == {key: (n, len(users[key])) for key, n in counts.items()}
