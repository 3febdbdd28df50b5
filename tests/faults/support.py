"""What every fault scenario shares: producing a workload, metrics, kills, and the conservation check.

The conservation assertion is the master assertion of the suite: every message produced is a
stored event, a duplicate of one, or a dead letter, and the sets (not only the counts) are exact.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

import pytest
import redis
from confluent_kafka import Producer

from tests.faults.workload import Message, Workload
from tests.harness import ROOT, Record, Stack, read_topic, wait_until

DlqRule = Literal["exact", "repeats", "subset"]
HEAVY = os.environ.get("RTEP_HEAVY_TESTS") == "1"
FIGURES = ROOT / ".run" / "fault-figures.jsonl"


def heavy_variant(default: int, heavy: int) -> list[object]:
    """Parametrize a size: the default run, plus a ``heavy``-marked full-size run."""
    return [default, pytest.param(heavy, marks=pytest.mark.heavy, id=f"heavy-{heavy}")]


def produce_messages(brokers: str, topic: str, messages: list[Message], **config: object) -> None:
    """Produce ``messages`` in order (with their keys) and wait until all are acknowledged."""
    producer = Producer(
        {"bootstrap.servers": brokers, "linger.ms": 5, "acks": "all",
         "enable.idempotence": True, **config}
    )  # fmt: skip
    for message in messages:
        while True:
            try:
                producer.produce(topic, message.value, message.key)
                break
            except BufferError:
                producer.poll(0.1)
        producer.poll(0)
    assert producer.flush(60) == 0, "messages not acknowledged"


def metric(port: int, name: str, **labels: str) -> float:
    """Sum of the samples of ``name`` whose labels include ``labels`` (0 when absent)."""
    import urllib.request

    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
            text = resp.read().decode()
    except OSError:
        return 0.0
    wanted = [f'{k}="{v}"' for k, v in labels.items()]
    total = 0.0
    for line in text.splitlines():
        head, _, value = line.rpartition(" ")
        metric_name = head.split("{", 1)[0]
        if metric_name == name and all(w in head for w in wanted):
            total += float(value)
    return total


def kill9(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL the dataflow process (no handler, no final snapshot) and reap it."""
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)


def counts(stack: Stack) -> tuple[int, int]:
    """(rows in rtep.events, rows in rtep.rejected_events)."""
    row = stack.query(
        "SELECT (SELECT count(*) FROM rtep.events), (SELECT count(*) FROM rtep.rejected_events)"
    )[0]
    return int(row[0]), int(row[1])  # type: ignore[call-overload]


def wait_all_stored(
    stack: Stack, workload: Workload, proc: subprocess.Popen[bytes] | None, timeout: float = 180
) -> None:
    """Poll until every expected event and rejection is in PostgreSQL (the pipeline still up)."""
    target = (len(workload.expected_ids), workload.rejections)

    def done() -> bool:
        assert proc is None or proc.poll() is None, f"pipeline exited:\n{stack.pipeline_log()}"
        return counts(stack) == target

    wait_until(done, timeout=timeout, interval=0.3, what=f"{target} events/rejections stored")


@dataclass(frozen=True)
class Conservation:
    """The figures a scenario reports after the conservation check."""

    produced: int
    stored: int
    duplicates: int
    dead_letters: int
    dlq_repeats: int


def assert_conservation(
    stack: Stack, workload: Workload, *, dlq: DlqRule = "exact", sent: list[Record] | None = None
) -> Conservation:
    """The master assertion: produced = distinct stored + duplicates + dead letters, sets exact.

    Checks rtep.events (the eventId set, no duplicate row), rtep.rejected_events (exactly the
    malformed messages by (partition, offset), with their reason and byte-identical raw bytes) and
    the DLQ topic per ``dlq``: "exact" (no fault that can repeat a dead letter), "repeats" (the
    DLQ is at-least-once across a crash: every dead letter, some more than once), "subset" (the
    broker lost its memory: no dead letter that should not be there).
    """
    topic = stack.topics["RTEP_EVENTS_TOPIC"]
    sent = sent if sent is not None else read_topic(stack.brokers, topic)
    assert len(sent) == len(workload.messages), "the topic must hold exactly what was produced"
    reasons = workload.reasons
    expected_dead = {
        (r.partition, r.offset): (reasons[r.value or b""], r.value or b"")
        for r in sent
        if (r.value or b"") in reasons
    }
    stored = [str(r[0]) for r in stack.query("SELECT event_id FROM rtep.events")]
    assert len(stored) == len(set(stored)), "an event is stored twice"
    assert set(stored) == workload.expected_ids
    rejected = {
        (int(p), int(o)): (reason, bytes(raw))  # type: ignore[call-overload]
        for p, o, reason, raw in stack.query(
            "SELECT source_partition, source_offset, reason, raw FROM rtep.rejected_events "
            "WHERE source_topic = %s",
            topic,
        )
    }
    assert rejected == expected_dead
    dlq_records = read_topic(stack.brokers, stack.topics["RTEP_DLQ_TOPIC"])
    letters = Counter(
        (int(r.headers["rtep.source.partition"]), int(r.headers["rtep.source.offset"]),
         r.headers["rtep.reason"].decode(), r.value or b"")
        for r in dlq_records
    )  # fmt: skip
    expected_letters = {(p, o, why, raw) for (p, o), (why, raw) in expected_dead.items()}
    if dlq == "subset":
        assert set(letters) <= expected_letters
    else:
        assert set(letters) == expected_letters
    repeats = sum(letters.values()) - len(letters)
    if dlq == "exact":
        assert repeats == 0, f"{repeats} dead letters repeated without a crash"
    assert len(sent) == len(set(stored)) + workload.duplicates + len(rejected)
    return Conservation(len(sent), len(stored), workload.duplicates, len(rejected), repeats)


def full_log(stack: Stack) -> str:
    """The pipeline's whole output (``Stack.pipeline_log`` keeps only the tail, where Rust
    backtraces can push out the line that says why the flow stopped)."""
    path = stack.workdir / "pipeline.log"
    return path.read_text(errors="replace") if path.exists() else ""


def record_figures(scenario: str, **figures: object) -> None:
    """Append a scenario's figures to .run/fault-figures.jsonl (docs/guarantees.md quotes them)."""
    FIGURES.parent.mkdir(parents=True, exist_ok=True)
    with Path(FIGURES).open("a") as out:
        out.write(json.dumps({"scenario": scenario, "heavy": HEAVY, **figures}) + "\n")


def assert_redis_caught_up(stack: Stack, client: redis.Redis, *patterns: str) -> int:
    """Every user whose id matches one of the SQL LIKE ``patterns`` has the Redis hash of their
    latest event in PostgreSQL, and each of their open sessions is in sessions:active with its
    last activity; returns how many users were checked."""
    prefix = stack.redis_prefix
    where = " OR ".join(["user_id LIKE %s"] * len(patterns))
    latest = stack.query(
        "SELECT DISTINCT ON (user_id) user_id, ts, type, page, session_id FROM rtep.events "
        f"WHERE {where} ORDER BY user_id, ts DESC",
        *patterns,
    )
    for user, ts, kind, page, session in latest:
        stamp = ts.astimezone(UTC).isoformat(timespec="microseconds")  # type: ignore[attr-defined]
        got = client.hgetall(f"{prefix}user:{user}")
        assert got["last_seen"] == stamp, user
        assert (got["last_type"], got["last_page"], got["session_id"]) == (kind, page, session)
    open_sessions = stack.query(
        f"SELECT session_id, last_event_at FROM rtep.sessions WHERE ended_at IS NULL AND ({where})",
        *patterns,
    )
    for session, last in open_sessions:
        assert isinstance(last, datetime)
        assert client.zscore(f"{prefix}sessions:active", str(session)) == last.timestamp(), session
    return len(latest)
