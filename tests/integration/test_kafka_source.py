"""LeanKafkaSource against the embedded broker: partitions, every message once, resume offsets
and work state, caught-up detection."""

from __future__ import annotations

import time
import uuid
from datetime import datetime

import pytest
from confluent_kafka import Message

from operators.state import InputProgress
from rtep.core.embedded import EmbeddedBroker
from rtep.core.kafka_admin import ensure_topics
from sources.kafka import LeanKafkaSource, LeanPartition, PartitionState
from tests.harness import produce


class Echo:
    """Work that hands the messages on and counts them (its state), recording its progress."""

    def __init__(self, partition: str, parts: int, progress: InputProgress, saved: int | None):
        self.progress = progress
        self.count = saved or 0
        self.parts = parts

    def process(self, messages: list[Message], now: datetime) -> list[Message]:
        self.count += len(messages)
        return messages

    def latest(self) -> datetime | None:
        return None

    def snapshot(self) -> int:
        return self.count


def echo_source(bootstrap: str, topic: str, **options: object) -> LeanKafkaSource[Message]:
    return LeanKafkaSource([bootstrap], [topic], Echo, **options)  # type: ignore[arg-type]


def read(part: LeanPartition[Message], count: int, timeout: float = 30.0) -> list[Message]:
    """Call next_batch until ``count`` messages came (or fail after ``timeout``)."""
    got: list[Message] = []
    deadline = time.monotonic() + timeout
    while len(got) < count:
        assert time.monotonic() < deadline, f"only {len(got)} of {count} messages read"
        got += part.next_batch()
    return got


def test_lists_partitions_reads_every_message_once_and_resumes_from_its_snapshot(
    broker: EmbeddedBroker,
) -> None:
    topic = f"t{uuid.uuid4().hex[:8]}.in"
    ensure_topics(broker.bootstrap, {topic: 1})
    values = [f"m{i}".encode() for i in range(25)]
    produce(broker.bootstrap, topic, values)
    source = echo_source(broker.bootstrap, topic, batch_size=10)
    assert source.list_parts() == [f"0-{topic}"]

    part = source.build_part("kafka_in", f"0-{topic}", None)
    first = read(part, 25)
    assert [m.value() for m in first] == values
    assert [m.offset() for m in first] == list(range(25))
    assert part.snapshot() == PartitionState(25, 25)  # the next offset to read, the work's state
    part.close()

    resumed = source.build_part("kafka_in", f"0-{topic}", PartitionState(20, 20))
    assert [m.value() for m in read(resumed, 5)] == values[20:]
    assert resumed.next_batch() == []
    assert resumed.snapshot() == PartitionState(25, 25)
    resumed.close()

    older = source.build_part("kafka_in", f"0-{topic}", 24)  # rtep 0.1.x saved the offset alone
    assert [m.value() for m in read(older, 1)] == values[24:]
    assert older.snapshot() == PartitionState(25, 1)
    older.close()


def test_a_partition_is_caught_up_only_once_it_has_read_to_its_end(broker: EmbeddedBroker) -> None:
    """Scenario: 30 messages wait in a partition; it is read 10 at a time.
    We expect: no caught-up mark while messages are left, one once the end is reached, and none
    again as soon as new messages arrive."""
    topic = f"t{uuid.uuid4().hex[:8]}.in"
    ensure_topics(broker.bootstrap, {topic: 1})
    produce(broker.bootstrap, topic, [f"m{i}".encode() for i in range(30)])
    part = echo_source(broker.bootstrap, topic, batch_size=10).build_part(
        "kafka_in", f"0-{topic}", None
    )
    progress = part._work.progress  # type: ignore[attr-defined]
    got: list[Message] = []
    deadline = time.monotonic() + 30
    while progress.caught_up_since is None:
        assert time.monotonic() < deadline, "never caught up"
        got += part.next_batch()
    assert len(got) == 30  # caught up only once everything was read
    first_end = progress.caught_up_since
    produce(broker.bootstrap, topic, [b"late"])
    while not part.next_batch():
        assert time.monotonic() < deadline, "the new message never came"
    # reading again: no longer caught up, or caught up anew after the new message
    assert progress.caught_up_since is None or progress.caught_up_since > first_end
    part.close()


def test_lists_every_partition_of_every_topic(broker: EmbeddedBroker) -> None:
    topic = f"t{uuid.uuid4().hex[:8]}.in"
    ensure_topics(broker.bootstrap, {topic: 3})
    source = echo_source(broker.bootstrap, topic)
    assert sorted(source.list_parts()) == [f"{i}-{topic}" for i in range(3)]


def test_consumer_only_settings_do_not_reach_the_admin_client(
    broker: EmbeddedBroker, capfd: pytest.CaptureFixture[str]
) -> None:
    """librdkafka warns (CONFWARN, on stderr) when a client gets a property of another kind."""
    topic = f"t{uuid.uuid4().hex[:8]}.in"
    ensure_topics(broker.bootstrap, {topic: 1})
    produce(broker.bootstrap, topic, [b"m0"])
    consumer_only = {"auto.offset.reset": "earliest", "queued.max.messages.kbytes": "1024"}
    source = echo_source(broker.bootstrap, topic, consumer_defaults=consumer_only)
    assert source.list_parts() == [f"0-{topic}"]
    part = source.build_part("kafka_in", f"0-{topic}", None)
    assert [m.value() for m in read(part, 1)] == [b"m0"]
    part.close()
    assert "CONFWARN" not in capfd.readouterr().err
