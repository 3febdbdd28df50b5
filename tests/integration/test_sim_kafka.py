"""The simulator against a real (embedded) broker: what it says it sent is what a consumer reads."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import uuid
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import orjson
from confluent_kafka.admin import AdminClient

from rtep.core.embedded import EmbeddedBroker
from tests.harness import ROOT, read_topic, wait_until

N = 5000


def run_sim(broker: EmbeddedBroker, topic: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RTEP_")}
    env.update(RTEP_KAFKA_BROKERS=broker.bootstrap, RTEP_EVENTS_TOPIC=topic, PYTHONPATH=str(ROOT))
    proc = subprocess.run(
        [sys.executable, "-m", "sim", *args],
        env=env, cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def test_messages_land_keyed_in_user_order_and_match_the_summary(
    broker: EmbeddedBroker, tmp_path: Path
) -> None:
    """Scenario: 5,000 messages at full speed with attacks, malformed messages and duplicates.

    We expect: the topic (created with 4 partitions) holds exactly N messages; each keyed by its
    userId; each user's events in time order on one partition; and the labels' summary equals the
    counts a consumer derives from the topic (malformed by hash, duplicates by eventId)."""
    topic = f"t{uuid.uuid4().hex[:8]}.events"
    labels_file = tmp_path / "labels.jsonl"
    run_sim(
        broker, topic, "--count", str(N), "--rate", "0", "--users", "200", "--seed", "5",
        "--attack-share", "0.03", "--malformed-share", "0.03", "--duplicate-share", "0.02",
        "--labels", str(labels_file),
    )  # fmt: skip
    partitions = AdminClient({"bootstrap.servers": broker.bootstrap}).list_topics(topic).topics
    assert len(partitions[topic].partitions) == 4

    labels = [json.loads(line) for line in labels_file.read_text().splitlines()]
    summary = labels[-1]
    assert summary["kind"] == "summary" and not summary["interrupted"]
    malformed_labels = [lab for lab in labels if lab["kind"] == "malformed"]
    reason_of = {
        lab["sha256"]: lab["reason"] for lab in malformed_labels
    }  # same bytes, same reason

    records = read_topic(broker.bootstrap, topic)
    assert len(records) == N == summary["messages"]
    seen: set[str] = set()
    duplicates = 0
    reasons: Counter[str] = Counter()
    keyed: Counter[tuple[str, str, str]] = Counter()
    partition_of: dict[bytes, int] = {}
    last_ts: dict[str, datetime] = {}
    for rec in sorted(records, key=lambda r: (r.partition, r.offset)):
        assert rec.key is not None
        assert partition_of.setdefault(rec.key, rec.partition) == rec.partition
        value = rec.value or b""
        digest = hashlib.sha256(value).hexdigest()
        if digest in reason_of:
            reasons[reason_of[digest]] += 1
            keyed[(rec.key.decode(), digest, reason_of[digest])] += 1
            continue
        event = orjson.loads(value)
        if event["eventId"] in seen:
            duplicates += 1
            continue
        seen.add(event["eventId"])
        user = event["payload"]["userId"]
        assert rec.key == user.encode()
        ts = datetime.fromisoformat(event["timestamp"])
        assert ts >= last_ts.get(user, ts)
        last_ts[user] = ts
    assert len(seen) == summary["valid_distinct"]
    assert duplicates == summary["duplicates"]
    assert dict(reasons) == summary["malformed_by_reason"]
    assert sum(reasons.values()) == summary["malformed"]
    assert keyed == Counter((lab["key"], lab["sha256"], lab["reason"]) for lab in malformed_labels)


def test_same_seed_and_start_send_the_same_bytes(broker: EmbeddedBroker) -> None:
    args = ("--count", "800", "--rate", "0", "--users", "40", "--seed", "9", "--span", "3600",
            "--start", "2026-05-01T10:00:00Z", "--malformed-share", "0.05", "--duplicate-share", "0.02",
            "--attack-share", "0.05")  # fmt: skip
    topics = [f"t{uuid.uuid4().hex[:8]}.events" for _ in range(2)]
    for topic in topics:
        run_sim(broker, topic, *args)
    first, second = (
        sorted((r.key, r.value) for r in read_topic(broker.bootstrap, t)) for t in topics
    )
    assert first == second
    assert len(first) == 800


def test_endless_run_stops_cleanly_on_ctrl_c(broker: EmbeddedBroker, tmp_path: Path) -> None:
    """Scenario: `--count 0` in real time, interrupted with SIGINT once messages flow.

    We expect: exit 0, a summary marked interrupted whose count is exactly what the topic holds,
    and timestamps that follow the wall clock (none in the future)."""
    topic = f"t{uuid.uuid4().hex[:8]}.events"
    labels_file = tmp_path / "labels.jsonl"
    env = {k: v for k, v in os.environ.items() if not k.startswith("RTEP_")}
    env.update(RTEP_KAFKA_BROKERS=broker.bootstrap, RTEP_EVENTS_TOPIC=topic, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen(
        [sys.executable, "-m", "sim", "--count", "0", "--rate", "100", "--users", "200",
         "--seed", "3", "--malformed-share", "0.02", "--labels", str(labels_file)],
        env=env, cwd=ROOT, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        wait_until(
            lambda: labels_file.exists() and labels_file.stat().st_size > 0,
            timeout=60,
            what="the simulator to send its first labelled messages",
        )
    finally:
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 0, stderr[-2000:]
    summary = json.loads(labels_file.read_text().splitlines()[-1])
    assert summary["kind"] == "summary" and summary["interrupted"]
    records = read_topic(broker.bootstrap, topic)
    assert len(records) == summary["messages"] > 0
    malformed = {
        lab["sha256"]
        for lab in map(json.loads, labels_file.read_text().splitlines())
        if lab["kind"] == "malformed"
    }
    now = datetime.now(UTC)
    valid = [r for r in records if hashlib.sha256(r.value or b"").hexdigest() not in malformed]
    assert valid
    for rec in valid:
        assert datetime.fromisoformat(orjson.loads(rec.value or b"")["timestamp"]) <= now
