"""A backlog over several partitions gives the in-order results, with 1 worker, 2 or 2 processes.

Kafka orders events only within a partition, and a backlog is read at a different speed per
partition. The stored sessions, failed-login and credential-stuffing alerts and per-minute rollups
must still be those of the offline reference computed from the sorted history.
"""

from __future__ import annotations

import sqlite3
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from dataflows.params import ip_params, rule_params
from operators.detections.credential_stuffing import CredentialStuffing
from operators.detections.failed_login_burst import FailedLoginBurst
from operators.detections.ip_rules import IpRules
from operators.detections.password_spraying import PasswordSpraying
from operators.records import Alert, Event
from operators.validation import Limits, check_message
from rtep.core.embedded import free_port
from rtep.core.settings import Settings
from tests.faults.support import kill9
from tests.harness import Stack, read_topic, stop_processes, wait_until
from tests.unit.session_oracle import reference_sessions

SIM = ["--count", "15000", "--rate", "0", "--users", "400", "--span", "10800", "--seed", "11",
       "--attack-share", "0.06", "--malformed-share", "0.01"]  # fmt: skip
"""Three hours of traffic of 400 users, with injected attacks (failed-login bursts, stuffing)."""

VARIANTS = {"1 worker": ((),), "2 workers": (("-w", "2"),), "2 processes": ((), ())}
"""The dataflow processes each variant starts (their extra arguments)."""


def history_of(stack: Stack) -> dict[int, list[Event]]:
    """The valid events of the input topic, per partition, in partition order: judged as the
    pipeline judges them (its default limits), so a message the simulator stamped hours ahead
    of the clock is a rejection in both."""
    limits = Limits()
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


def drain(stack: Stack, processes: list[Any], stored: int, must_close: set[str]) -> None:
    """Wait until ``stored`` events are stored, the sessions of ``must_close`` closed (within
    seconds of that) and every event counted in its session."""
    wait_until(
        lambda: (
            all(p.poll() is None for p in processes)
            and stack.scalar("SELECT count(*) FROM rtep.events") == stored
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
    print(f"closed {len(must_close)} sessions {time.monotonic() - stored_at:.1f} s after storing")
    wait_until(
        lambda: stack.scalar("SELECT coalesce(sum(event_count), 0) FROM rtep.sessions") == stored,
        timeout=30,
        what="every event to be counted in its session",
    )


def run_to_the_end(stack: Stack, processes: list[Any], reference: Reference) -> None:
    """``drain`` the reference's history, wait for the alerts and rollups that follow the last
    events (credential stuffing waits for every partition's progress), then stop the processes."""
    try:
        drain(stack, processes, len(reference.history), reference.must_close)
        wait_until(
            lambda: reference.alerts_and_rollups_match(stack),
            timeout=30,
            what="the alerts and rollups to be those of the in-order stream",
        )
    finally:
        codes = stop_processes(processes)
        assert all(code in (0, -2, 130) for code in codes), stack.pipeline_log()


class Reference:
    """The in-order results of a history (valid events per partition, in partition order)."""

    def __init__(self, by_partition: dict[int, list[Event]]) -> None:
        self.settings = Settings()
        self.history = [e for part in sorted(by_partition) for e in by_partition[part]]
        gap = timedelta(seconds=self.settings.session_gap_seconds)
        lateness = timedelta(seconds=self.settings.allowed_lateness_seconds)
        self.sessions = reference_sessions(self.history, gap)
        # A session must be closed once every partition's event time is past its gap.
        slowest = min(max(e.ts for e in part) for part in by_partition.values())
        self.must_close = {
            r.session_id
            for r in self.sessions
            if r.ended_by == "logout" or r.last_event_at + gap < slowest - lateness
        }

    def check(self, stack: Stack) -> None:
        """Assert that the stack's tables hold exactly the in-order results."""
        assert (
            stack.scalar("SELECT count(*) FROM rtep.events WHERE late OR session_id IS NULL") == 0
        )
        stored = {
            row[0]: row[1:]
            for row in stack.query(
                "SELECT session_id, started_at, event_count, ended_by FROM rtep.sessions"
            )
        }
        assert {sid: (s[0], s[1]) for sid, s in stored.items()} == {
            r.session_id: (r.started_at, r.event_count) for r in self.sessions
        }
        for r in self.sessions:
            if r.session_id in self.must_close:
                assert stored[r.session_id][2] == r.ended_by, r
            else:
                assert stored[r.session_id][2] in (None, "timeout"), r
        self._check_alerts(stack)
        self._check_rollups(stack)

    def _expected_alerts(self) -> dict[str, dict[str, tuple[Any, ...]]]:
        """Per rule, the incidents of one pass over the sorted history."""
        failed = [e for e in self.history if e.failed_login]
        now = datetime.now(UTC)
        settings = self.settings
        bursts = FailedLoginBurst(rule_params(FailedLoginBurst, settings))
        stuffing = IpRules(  # as the flow: stuffing yields an IP that spraying holds
            CredentialStuffing(rule_params(CredentialStuffing, settings)),
            PasswordSpraying(ip_params(settings).spraying),
        )
        return {
            FailedLoginBurst.RULE: incidents(bursts.on_batch(failed, now)),
            CredentialStuffing.RULE: incidents(
                [a for a in stuffing.on_batch(failed, now) if a.rule == CredentialStuffing.RULE]
            ),
        }

    def _stored_alerts(self, stack: Stack, rule: str) -> dict[str, tuple[Any, ...]]:
        return incidents(
            stack.query(
                "SELECT alert_id, subject, window_start, window_end, event_count FROM rtep.alerts"
                " WHERE rule = %s",
                rule,
            )
        )

    def _expected_rollups(self) -> dict[tuple[Any, ...], tuple[int, int]]:
        counts: Counter[tuple[datetime, str]] = Counter()
        users: dict[tuple[datetime, str], set[str]] = {}
        for e in self.history:
            key = (e.ts.replace(second=0, microsecond=0), e.type)
            counts[key] += 1
            users.setdefault(key, set()).add(e.user_id)
        return {key: (n, len(users[key])) for key, n in counts.items()}

    def _stored_rollups(self, stack: Stack) -> dict[tuple[Any, ...], tuple[Any, ...]]:
        return {
            (row[0], row[1]): (row[2], row[3])
            for row in stack.query(
                "SELECT minute, type, events, unique_users FROM rtep.event_counts_minute"
            )
        }

    def alerts_and_rollups_match(self, stack: Stack) -> bool:
        """True once the stored alerts and rollups are the reference's."""
        return self._stored_rollups(stack) == self._expected_rollups() and all(
            self._stored_alerts(stack, rule) == expected
            for rule, expected in self._expected_alerts().items()
        )

    def _check_alerts(self, stack: Stack) -> None:
        for rule, expected in self._expected_alerts().items():
            assert self._stored_alerts(stack, rule) == expected, rule
            assert expected, f"the simulator's attacks raised no {rule}"

    def _check_rollups(self, stack: Stack) -> None:
        assert self._stored_rollups(stack) == self._expected_rollups()


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
    reference = Reference(by_partition)
    assert len(reference.must_close) > 100
    processes = start(stack, variant)
    run_to_the_end(stack, processes, reference)
    reference.check(stack)


def resumable_epoch(stack: Stack) -> int:
    """The epoch a restart would resume from: the frontier every worker of the latest execution
    has passed, as saved in the recovery store (-1 before any)."""
    frontiers: list[int] = []
    for path in (stack.workdir / "recovery").glob("*.sqlite3"):
        with sqlite3.connect(path) as db:
            frontiers += [
                row[0]
                for row in db.execute(
                    "SELECT worker_frontier FROM fronts WHERE ex_num = (SELECT max(ex_num) FROM fronts)"
                )
            ]
    return min(frontiers, default=-1)


def test_state_follows_its_partition_when_a_killed_run_resumes_as_two_processes(
    stack: Stack,
) -> None:
    """Scenario: one worker reads three hours of traffic and snapshots its state; it is killed
    (kill -9); an hour more of the same users' traffic arrives; the flow resumes as a cluster of
    two processes, so each partition's state (open sessions, rule windows, dedup ids, partial
    rollups) must come back on whichever process now reads the partition.

    We expect: the in-order results of the whole four hours, as if read in one go.
    """
    begin = datetime.now(UTC) - timedelta(hours=4)
    common = ["--rate", "0", "--users", "400", "--population-seed", "11",
              "--attack-share", "0.06", "--malformed-share", "0.01"]  # fmt: skip
    stack.run_sim(*common, "--count", "12000", "--seed", "11", "--start", begin.isoformat(),
                  "--span", "10800")  # fmt: skip
    first = Reference(history_of(stack))
    one = stack.start_pipeline(RTEP_SNAPSHOT_INTERVAL_SECONDS="1")
    try:
        drain(stack, [one], len(first.history), first.must_close)
        settled = resumable_epoch(stack)
        wait_until(
            lambda: resumable_epoch(stack) > settled + 1,
            timeout=60,
            what="a snapshot taken after everything was stored",
        )
    finally:
        kill9(one)
    later = (begin + timedelta(hours=3)).isoformat()
    stack.run_sim(*common, "--count", "4000", "--seed", "12", "--start", later, "--span", "3000")
    reference = Reference(history_of(stack))
    processes = start(stack, "2 processes")
    run_to_the_end(stack, processes, reference)
    reference.check(stack)
