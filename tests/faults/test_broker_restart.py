"""The Kafka broker restarted mid-stream under a running pipeline."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from rtep.core.embedded import EmbeddedBroker
from rtep.core.kafka_admin import ensure_topics
from tests.faults.support import (
    assert_conservation,
    produce_messages,
    record_figures,
    wait_all_stored,
)
from tests.faults.workload import Workload, build_workload
from tests.harness import Record, Stack, read_topic, stop_process


@pytest.fixture
def private_broker(tmp_path: Path) -> Iterator[EmbeddedBroker]:
    """A broker of this test only (the scenario restarts it; the session broker stays up)."""
    with EmbeddedBroker(log_path=tmp_path / "broker.log") as running:
        yield running


def create_topics(stack: Stack) -> None:
    """The stack's topics, as the session fixture creates them (4 partitions for events)."""
    topics = stack.topics
    ensure_topics(
        stack.brokers,
        {topics["RTEP_EVENTS_TOPIC"]: 4, topics["RTEP_DLQ_TOPIC"]: 1,
         topics["RTEP_ALERTS_TOPIC"]: 1},
    )  # fmt: skip


def positions(records: list[Record]) -> list[tuple[bytes | None, int, int]]:
    """(value, partition, offset) of each record, sorted: what must be identical after a rebuild."""
    return sorted((r.value, r.partition, r.offset) for r in records)


def test_broker_restart_mid_stream_resumes_and_conserves(
    stack: Stack, private_broker: EmbeddedBroker
) -> None:
    """Scenario: the pipeline reads from a private broker; once the first half of the stream is
    stored the broker is stopped and started again on the same port, and the second half follows. The embedded broker (Tansu) keeps
    topics in memory only, so a restart loses every topic and message: the test rebuilds the
    log exactly (topics re-created, the same messages re-produced in the same order with the
    same keys, so every message gets its old partition and offset back), which is what a real,
    durable Kafka restart looks like to a consumer. What this cannot test: a durable broker's
    own recovery (log files, leader election), and dead letters or alerts the pipeline wrote to
    the broker before the restart (they are gone with its memory; the DLQ check reads what the
    pipeline wrote after the restart, plus its replays).

    We expect: the rebuilt log has the same (partition, offset) for every message; the pipeline
    (never restarted) resumes by itself, reads the second half from the restarted broker, and
    conservation holds exactly in PostgreSQL; the
    rejected rows are exactly the malformed messages by (partition, offset).
    """
    stack = dataclasses.replace(stack, brokers=private_broker.bootstrap)
    create_topics(stack)
    workload = build_workload(4000, seed=5, malformed_share=0.02, duplicate_share=0.02)
    first, second = workload.messages[:2000], workload.messages[2000:]
    topic = stack.topics["RTEP_EVENTS_TOPIC"]
    produce_messages(stack.brokers, topic, first)
    original = positions(read_topic(stack.brokers, topic))
    proc = stack.start_pipeline()
    try:
        wait_all_stored(stack, Workload(first), proc)
        private_broker.stop()
        restarted_at = time.monotonic()
        private_broker.start()
        create_topics(stack)
        produce_messages(stack.brokers, topic, first)
        assert positions(read_topic(stack.brokers, topic)) == original
        produce_messages(stack.brokers, topic, second)
        wait_all_stored(stack, workload, proc, timeout=240)
        resumed_after = time.monotonic() - restarted_at
    finally:
        assert stop_process(proc) == 0, stack.pipeline_log()
    result = assert_conservation(stack, workload, dlq="subset")
    record_figures(
        "broker_restart", produced=result.produced, stored=result.stored,
        seconds_to_drain_after_restart=round(resumed_after, 1),
        events_lost=0, duplicates_stored=0,
    )  # fmt: skip
