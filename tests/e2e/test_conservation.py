"""End to end: simulator → broker → dataflow → PostgreSQL / DLQ, with exact conservation."""

from __future__ import annotations

import hashlib
from collections import Counter
from pathlib import Path

import orjson
from confluent_kafka import Producer

from rtep.core.embedded import free_port
from tests.harness import Stack, read_topic, scrape_metric, stop_process, wait_until

N = 20_000


def test_conservation_and_idempotent_resend(stack: Stack, tmp_path: Path) -> None:
    """Scenario: 20,000 messages, 2% malformed, 1% re-sent duplicates, then the whole stream again.

    We expect: rtep.events holds exactly the distinct valid eventIds; rejected_events and the DLQ
    hold exactly the malformed messages, byte-identical, with the labelled reason; messages in =
    rows stored + duplicates + dead letters; re-sending everything adds no event row.
    """
    labels = stack.run_labelled_sim(
        tmp_path / "labels.jsonl",
        "--count", str(N), "--rate", "0", "--users", "500", "--seed", "11",
        "--attack-share", "0", "--malformed-share", "0.02", "--duplicate-share", "0.01",
    )  # fmt: skip
    malformed = {lab["sha256"]: lab["reason"] for lab in labels if lab["kind"] == "malformed"}
    n_duplicates = sum(1 for lab in labels if lab["kind"] == "duplicate")

    sent = read_topic(stack.brokers, stack.topics["RTEP_EVENTS_TOPIC"])
    assert len(sent) == N
    expected_ids: set[str] = set()
    expected_dead: Counter[tuple[bytes, str]] = Counter()
    for record in sent:
        digest = hashlib.sha256(record.value or b"").hexdigest()
        if digest in malformed:
            expected_dead[(record.value or b"", malformed[digest])] += 1
        else:
            expected_ids.add(orjson.loads(record.value or b"")["eventId"])
    assert sum(expected_dead.values()) == len([lab for lab in labels if lab["kind"] == "malformed"])

    port = free_port()
    pipeline = stack.start_pipeline(RTEP_METRICS_PORT=str(port))
    try:
        wait_until(
            lambda: (
                pipeline.poll() is None
                and stack.scalar("SELECT count(*) FROM rtep.events") == len(expected_ids)
                and stack.scalar("SELECT count(*) FROM rtep.rejected_events")
                == sum(expected_dead.values())
            ),
            timeout=240,
            what="the pipeline to store every event and rejection",
        )
        stored_ids = {str(r[0]) for r in stack.query("SELECT event_id FROM rtep.events")}
        assert stored_ids == expected_ids
        rejected = Counter(
            (bytes(raw), reason)  # type: ignore[arg-type]
            for raw, reason in stack.query("SELECT raw, reason FROM rtep.rejected_events")
        )
        assert rejected == expected_dead
        dlq = wait_until(
            lambda: (
                (recs := read_topic(stack.brokers, stack.topics["RTEP_DLQ_TOPIC"]))
                and len(recs) >= sum(expected_dead.values())
                and recs
            ),
            timeout=60,
            what="dead letters",
        )
        dead = Counter((r.value or b"", r.headers["rtep.reason"].decode()) for r in dlq)
        assert dead == expected_dead
        assert all(
            r.headers["rtep.source.topic"].decode() == stack.topics["RTEP_EVENTS_TOPIC"]
            for r in dlq
        )
        # conservation: every message is a stored row, a duplicate, or a dead letter
        assert len(stored_ids) + n_duplicates + sum(expected_dead.values()) == N

        # re-send the whole stream: no new event row
        producer = Producer({"bootstrap.servers": stack.brokers})
        for record in sent:
            producer.produce(stack.topics["RTEP_EVENTS_TOPIC"], record.value, record.key)
            producer.poll(0)
        assert producer.flush(30) == 0
        wait_until(
            lambda: (
                scrape_metric(port, "rtep_events_consumed_total") >= 2 * N
                and stack.scalar("SELECT count(*) FROM rtep.rejected_events")
                == 2 * sum(expected_dead.values())
            ),
            timeout=240,
            what="the pipeline to consume the re-sent stream",
        )
        assert stack.scalar("SELECT count(*) FROM rtep.events") == len(expected_ids)
    finally:
        assert stop_process(pipeline) in (0, -2, 130), stack.pipeline_log()
