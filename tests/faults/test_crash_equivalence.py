"""Sessions and alerts after crashes equal those of an uninterrupted run of the same input."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import random
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest

from rtep.core.embedded import free_port
from rtep.core.kafka_admin import ensure_topics
from tests.faults.support import (
    assert_conservation,
    heavy_variant,
    kill9,
    metric,
    record_figures,
    wait_all_stored,
)
from tests.faults.workload import DUPLICATE, VALID, Message, Workload
from tests.harness import (
    ROOT,
    Stack,
    fresh_database,
    read_topic,
    stop_process,
    unique_topics,
    wait_until,
)

KILLS = 3
SETTINGS = {
    "RTEP_SNAPSHOT_INTERVAL_SECONDS": "1",
    "RTEP_ALLOWED_LATENESS_SECONDS": "5",
    "RTEP_SESSION_GAP_SECONDS": "20",
}
"""Same settings for both runs. A partition's event time moves by wall time only once it is caught
up (never across a crash's downtime), so a small lateness makes no event late in either run; with
a short gap every session closes within seconds of the input's end, and both runs are compared
once all are closed (an open session may be closed by wall time a moment later in one run only)."""
SESSIONS = "SELECT * FROM rtep.sessions ORDER BY session_id"
ALERTS = (
    "SELECT alert_id, rule, severity, subject_type, subject, window_start, window_end, "
    "event_count, details FROM rtep.alerts ORDER BY alert_id"
)


def workload_from(stack: Stack, labels: Path) -> Workload:
    """The ground truth of what the simulator sent, from its labels and the topic itself."""
    rows = [json.loads(line) for line in labels.read_text().splitlines() if line.strip()]
    malformed = {row["sha256"]: row["reason"] for row in rows if row["kind"] == "malformed"}
    seen: set[str] = set()
    messages = []
    for record in read_topic(stack.brokers, stack.topics["RTEP_EVENTS_TOPIC"]):
        value = record.value or b""
        reason = malformed.get(hashlib.sha256(value).hexdigest())
        if reason is not None:
            messages.append(Message(record.key, value, reason))
            continue
        event_id = str(orjson.loads(value)["eventId"])
        truth = DUPLICATE if event_id in seen else VALID
        seen.add(event_id)
        messages.append(Message(record.key, value, truth, event_id))
    return Workload(messages)


@pytest.mark.parametrize("count", heavy_variant(4000, 20_000))
def test_sessions_and_alerts_after_crashes_equal_an_uninterrupted_run(
    stack: Stack, tmp_path: Path, count: int
) -> None:
    """Scenario: the simulator sends ``count`` messages (10% attacks, 2% malformed, 1%
    duplicates; an hour of simulated time sent over ~12 s) into a one-partition topic; run B consumes it while being
    SIGKILLed three times at seeded random points (snapshots every 1 s) and restarted; then run
    A, with its own fresh database and recovery directory, consumes the same topic without
    interruption. The topic has one partition so that both runs see the input in one order (with
    several partitions, the interleaving of partitions differs between any two runs, crashes or
    not, and so can the late-event decisions).

    We expect: rtep.sessions of both runs are equal in every column and rtep.alerts in every
    column but created_at (wall time); the alerts are not trivially empty; conservation holds
    exactly in both databases.

    This test found that credential_stuffing alert ids depended on the pace of the input (run B
    reads at the simulator's pace, run A a backlog): upstream steps group a batch by user shard,
    so the IP rule saw a batch-dependent order. Rules now evaluate a batch in event-time order.
    """
    topics = unique_topics()
    ensure_topics(stack.brokers, {topics["RTEP_EVENTS_TOPIC"]: 1, topics["RTEP_DLQ_TOPIC"]: 1,
                                  topics["RTEP_ALERTS_TOPIC"]: 1})  # fmt: skip
    crashed = dataclasses.replace(stack, topics=topics, workdir=tmp_path / "crashed")
    crashed.workdir.mkdir()
    labels = tmp_path / "labels.jsonl"
    rate = count // 12
    sim = subprocess.Popen(
        [sys.executable, "-m", "sim", "--rate", str(rate), "--count", str(count), "--users", str(count // 20),
         "--span", "3600", "--seed", "8", "--attack-share", "0.1", "--malformed-share", "0.02",
         "--duplicate-share", "0.01", "--labels", str(labels), "--no-create-topics"],
        env=crashed.env(), cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    rng = random.Random(count)
    for _ in range(KILLS):
        port = free_port()
        proc = crashed.start_pipeline(RTEP_METRICS_PORT=str(port), **SETTINGS)
        wait_until(
            lambda: proc.poll() is None and metric(port, "rtep_events_consumed_total") > 0,  # noqa: B023
            timeout=60,
            what="the pipeline to consume",
        )
        time.sleep(rng.uniform(0.5, 3.0))  # the seeded kill point: a scenario parameter
        kill9(proc)
    _, err = sim.communicate(timeout=300)
    assert sim.returncode == 0, err.decode()[-3000:]
    workload = workload_from(crashed, labels)
    assert len(workload.messages) == count
    run_to_the_end(crashed, workload)

    with fresh_database() as dsn:
        other = {**unique_topics(), "RTEP_EVENTS_TOPIC": topics["RTEP_EVENTS_TOPIC"]}
        ensure_topics(stack.brokers, {other["RTEP_DLQ_TOPIC"]: 1, other["RTEP_ALERTS_TOPIC"]: 1})
        straight = dataclasses.replace(
            crashed, dsn=dsn, topics=other, workdir=tmp_path / "straight"
        )
        straight.workdir.mkdir()
        run_to_the_end(straight, workload)
        sessions, alerts = straight.query(SESSIONS), straight.query(ALERTS)
        assert_conservation(straight, workload)

    assert len(alerts) > 0
    assert crashed.query(SESSIONS) == sessions, differences(crashed.query(SESSIONS), sessions)
    assert crashed.query(ALERTS) == alerts, differences(crashed.query(ALERTS), alerts)
    result = assert_conservation(crashed, workload, dlq="repeats")
    record_figures(
        "crash_equivalence", crashes=KILLS, produced=result.produced, sessions=len(sessions),
        alerts=len(alerts), sessions_equal=True, alerts_equal=True,
    )  # fmt: skip


def differences(crashed: list[tuple[object, ...]], straight: list[tuple[object, ...]]) -> str:
    """A readable diff of two row lists keyed by their first column (the primary key)."""
    a, b = {r[0]: r for r in crashed}, {r[0]: r for r in straight}
    lines = [f"only after crashes: {a[k]}" for k in a.keys() - b.keys()]
    lines += [f"only uninterrupted: {b[k]}" for k in b.keys() - a.keys()]
    lines += [f"differs: {a[k]} != {b[k]}" for k in a.keys() & b.keys() if a[k] != b[k]]
    return "\n".join(lines[:20])


def alerts_settled(stack: Stack) -> Callable[[], bool]:
    """A condition true once the alerts table reads the same on two polls in a row.

    Alerts are written by their own sinks, a moment after the events of the same batch: the
    events being stored does not mean the last alert versions are.
    """
    last: list[object] = []

    def settled() -> bool:
        now = stack.query(ALERTS)
        same = bool(now) and bool(last) and last[0] == now
        last[:] = [now]
        return same

    return settled


def run_to_the_end(stack: Stack, workload: Workload) -> None:
    """Start the pipeline, wait until every event is stored and counted in its session, stop it."""
    proc = stack.start_pipeline(**SETTINGS)
    try:
        wait_all_stored(stack, workload, proc, timeout=240)
        wait_until(
            lambda: stack.query(
                "SELECT (SELECT sum(event_count) FROM rtep.sessions) = count(*) FROM rtep.events"
            )[0][0],
            timeout=60,
            what="every stored event to be counted in its session",
        )
        wait_until(
            lambda: stack.query("SELECT count(*) FROM rtep.sessions WHERE ended_by IS NULL")[0][0]
            == 0,
            timeout=120,
            what="every session to be closed",
        )
        wait_until(alerts_settled(stack), timeout=60, interval=1, what="alerts to stop changing")
    finally:
        assert stop_process(proc) == 0, stack.pipeline_log()
