"""LeanKafkaSource against the embedded broker: partitions, every message once, resume offsets."""

from __future__ import annotations

import time
import uuid

import pytest
from confluent_kafka import Message

from rtep.embedded import EmbeddedBroker
from rtep.kafka_admin import ensure_topics
from rtep.kafka_source import LeanKafkaSource, LeanPartition
from tests.harness import produce


def read(part: LeanPartition, count: int, timeout: float = 30.0) -> list[Message]:
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
    source = LeanKafkaSource([broker.bootstrap], [topic], batch_size=10)
    assert source.list_parts() == [f"0-{topic}"]

    part = source.build_part("kafka_in", f"0-{topic}", None)
    first = read(part, 25)
    assert [m.value() for m in first] == values
    assert [m.offset() for m in first] == list(range(25))
    assert part.snapshot() == 25  # the next offset to read
    part.close()

    resumed = source.build_part("kafka_in", f"0-{topic}", 20)
    assert [m.value() for m in read(resumed, 5)] == values[20:]
    assert resumed.next_batch() == []
    resumed.close()


def test_lists_every_partition_of_every_topic(broker: EmbeddedBroker) -> None:
    topic = f"t{uuid.uuid4().hex[:8]}.in"
    ensure_topics(broker.bootstrap, {topic: 3})
    source = LeanKafkaSource([broker.bootstrap], [topic])
    assert sorted(source.list_parts()) == [f"{i}-{topic}" for i in range(3)]


def test_consumer_only_settings_do_not_reach_the_admin_client(
    broker: EmbeddedBroker, capfd: pytest.CaptureFixture[str]
) -> None:
    """librdkafka warns (CONFWARN, on stderr) when a client gets a property of another kind."""
    topic = f"t{uuid.uuid4().hex[:8]}.in"
    ensure_topics(broker.bootstrap, {topic: 1})
    produce(broker.bootstrap, topic, [b"m0"])
    consumer_only = {"auto.offset.reset": "earliest", "queued.max.messages.kbytes": "1024"}
    source = LeanKafkaSource([broker.bootstrap], [topic], consumer_defaults=consumer_only)
    assert source.list_parts() == [f"0-{topic}"]
    part = source.build_part("kafka_in", f"0-{topic}", None)
    assert [m.value() for m in read(part, 1)] == [b"m0"]
    part.close()
    assert "CONFWARN" not in capfd.readouterr().err
