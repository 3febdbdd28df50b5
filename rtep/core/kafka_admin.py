"""Kafka administration rtep needs: wait for a broker, create topics with explicit partitions.

Topics are always created explicitly: some brokers auto-create unknown topics, so a misspelt
name would otherwise run silently against an empty topic.
"""

from __future__ import annotations

import socket
import time
import uuid
from collections.abc import Iterator

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic


def admin(brokers: str) -> AdminClient:
    """An admin client for ``brokers`` (comma-separated host:port list)."""
    return AdminClient({"bootstrap.servers": brokers})


def _accepts(brokers: str, deadline: float) -> bool:
    """Wait until one bootstrap address accepts TCP connections (False at the deadline).

    Why before any Kafka client: librdkafka prints ``Connect to ipv4#… failed: Connection
    refused`` to stderr for every refused attempt, noise on a console while a broker starts.
    """
    addresses: list[tuple[str, int]] = []
    for bootstrap in brokers.split(","):
        host, _, port = bootstrap.strip().split("://")[-1].rpartition(":")
        addresses.append((host.strip("[]") or "127.0.0.1", int(port)))
    while time.monotonic() < deadline:
        for address in addresses:
            try:
                socket.create_connection(address, timeout=1).close()
                return True
            except OSError:
                pass
        time.sleep(0.05)  # poll interval while the port is closed
    return False


def wait_for_broker(brokers: str, timeout: float = 30.0) -> None:
    """Block until the broker answers a metadata request, or raise naming the fix."""
    deadline = time.monotonic() + timeout
    last: Exception | None = ConnectionRefusedError("no bootstrap address accepts TCP connections")
    if _accepts(brokers, deadline):
        client = admin(brokers)
        while time.monotonic() < deadline:
            try:
                client.list_topics(timeout=2)
                return
            except KafkaException as exc:
                last = exc
    raise TimeoutError(
        f"Kafka at {brokers} did not answer within {timeout:.0f}s ({last}); "
        "check RTEP_KAFKA_BROKERS or unset it to use the embedded broker"
    )


def ensure_topics(brokers: str, topics: dict[str, int], timeout: float = 30.0) -> None:
    """Create each missing topic with its partition count; leave existing ones unchanged."""
    client = admin(brokers)
    existing = set(client.list_topics(timeout=timeout).topics)
    missing = [
        NewTopic(name, num_partitions=parts, replication_factor=1)
        for name, parts in topics.items()
        if name not in existing
    ]
    if not missing:
        return
    for name, future in client.create_topics(missing, operation_timeout=timeout).items():
        try:
            future.result(timeout=timeout)
        except KafkaException as exc:
            if "TOPIC_ALREADY_EXISTS" not in str(exc):
                raise RuntimeError(f"cannot create topic {name}: {exc}") from exc


def read_to_end(
    brokers: str, topic: str, extra_config: dict[str, str] | None = None, timeout: float = 60.0
) -> list[Message]:
    """Every message of ``topic``, from the beginning to the current end of each partition."""
    return list(iter_to_end(brokers, topic, extra_config, timeout))


def iter_to_end(
    brokers: str, topic: str, extra_config: dict[str, str] | None = None, timeout: float = 60.0
) -> Iterator[Message]:
    """``read_to_end`` as a stream: one message at a time, for topics too big to hold.

    Stops when every partition reports EOF rather than by comparing offsets with high
    watermarks, which some Kafka-compatible brokers report wrongly. No consumer group is joined
    and nothing is committed. ``timeout`` bounds the whole read.
    """
    consumer = Consumer(
        {
            "bootstrap.servers": brokers,
            "group.id": f"rtep-reader-{uuid.uuid4().hex}",
            "enable.partition.eof": True,
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            **(extra_config or {}),
        }
    )
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        consumer.assign([TopicPartition(topic, p, 0) for p in partitions])
        pending = set(partitions)
        deadline = time.monotonic() + timeout
        while pending:
            if time.monotonic() > deadline:
                raise TimeoutError(f"reading {topic}: no end of partitions {sorted(pending)}")
            for msg in consumer.consume(1000, timeout=1):
                err = msg.error()
                if err is None:
                    yield msg
                elif err.code() == KafkaError._PARTITION_EOF:
                    pending.discard(msg.partition())
                else:
                    raise RuntimeError(f"reading {topic}: {err}")
    finally:
        consumer.close()
