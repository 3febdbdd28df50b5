"""Kafka sinks against the embedded broker: dead letters and alerts, byte-exact, read back."""

from __future__ import annotations

import json
import threading
import uuid
from pathlib import Path
from typing import Any

import pytest

from operators.records import Reason
from rtep.core.embedded import EmbeddedBroker
from rtep.core.kafka_admin import ensure_topics, read_to_end
from sinks.codec import alert_document
from sinks.kafka import AlertsTopicSink, DlqSink, KafkaTopicPartition, dlq_message
from sinks.retry import BackendUnavailable, RetryPolicy
from tests.integration.factories import make_alert, make_rejection


def new_topic(broker: EmbeddedBroker) -> str:
    """A fresh one-partition topic."""
    topic = f"t{uuid.uuid4().hex[:8]}.out"
    ensure_topics(broker.bootstrap, {topic: 1})
    return topic


def test_dead_letters_are_byte_exact_with_headers(broker: EmbeddedBroker) -> None:
    topic = new_topic(broker)
    raws = [bytes(range(256)), b"\xff\xfe\x00 not utf-8", b"", b'{"eventId": 1}']
    rejections = [make_rejection(i, raw, Reason.INVALID_UTF8) for i, raw in enumerate(raws)]
    part = DlqSink(broker.bootstrap, topic).build("dlq", 0, 1)
    part.write_batch(rejections[:2])
    part.write_batch(rejections[2:])
    part.close()

    got = read_to_end(broker.bootstrap, topic)
    assert [m.value() or b"" for m in got] == raws
    for i, msg in enumerate(got):
        assert msg.headers() == [
            ("rtep.reason", b"invalid_utf8"),
            ("rtep.detail", f"bad message at {i}".encode()),
            ("rtep.source.topic", b"t.events"),
            ("rtep.source.partition", b"0"),
            ("rtep.source.offset", str(i).encode()),
        ]
        assert msg.key() is None


def test_dlq_message_keeps_the_original_bytes() -> None:
    key, value, headers = dlq_message(make_rejection(42, b"\x00\x01raw"))
    assert (key, value) == (None, b"\x00\x01raw")
    assert dict(headers)["rtep.source.offset"] == b"42"


def test_alerts_are_json_rows_keyed_by_subject(broker: EmbeddedBroker) -> None:
    topic = new_topic(broker)
    alerts = [make_alert("a1"), make_alert("a2", subject="10.1.2.3", subject_type="ip")]
    AlertsTopicSink(broker.bootstrap, topic).build("alerts", 0, 1).write_batch(alerts)
    got = read_to_end(broker.bootstrap, topic)
    decoded: list[dict[str, Any]] = [json.loads(m.value() or b"") for m in got]
    assert [m.key() for m in got] == [b"u1", b"10.1.2.3"]
    assert decoded == [alert_document(a) for a in alerts]
    assert list(decoded[0]) == [
        "alert_id", "rule", "severity", "subject_type", "subject", "window_start",
        "window_end", "event_count", "details", "created_at",
    ]  # fmt: skip


def test_a_large_batch_survives_a_full_local_queue(broker: EmbeddedBroker) -> None:
    """BufferError (local queue full) is absorbed by polling, not raised: nothing is lost."""
    topic = new_topic(broker)
    sink = DlqSink(broker.bootstrap, topic, extra_config={"queue.buffering.max.messages": "100"})
    part = sink.build("dlq", 0, 1)
    part.write_batch([make_rejection(i, f"m{i}".encode()) for i in range(1000)])
    got = read_to_end(broker.bootstrap, topic)
    assert [m.value() for m in got] == [f"m{i}".encode() for i in range(1000)]


def dlq_then_stop(
    private: EmbeddedBroker, max_retry_seconds: float, message_timeout_ms: int
) -> tuple[str, KafkaTopicPartition]:
    """A DLQ sink on a new topic of ``private`` that delivered one message, then the broker stops."""
    topic = new_topic(private)
    part = DlqSink(
        private.bootstrap, topic,
        retry=RetryPolicy(max_retry_seconds=max_retry_seconds, max_backoff=0.5),
        message_timeout_ms=message_timeout_ms,
    ).build("dlq", 0, 1)  # fmt: skip
    part.write_batch([make_rejection(0, b"before")])
    private.stop()
    return topic, part


def test_a_broker_that_stays_down_fails_loudly(tmp_path: Path) -> None:
    """Scenario: the broker dies and does not come back.
    We expect: the sink retries, then raises BackendUnavailable naming Kafka and the fix."""
    with EmbeddedBroker(log_path=tmp_path / "broker.log") as private:
        _topic, part = dlq_then_stop(private, max_retry_seconds=1.5, message_timeout_ms=1000)
        with pytest.raises(BackendUnavailable, match=r"Kafka unavailable.*RTEP_KAFKA_BROKERS"):
            part.write_batch([make_rejection(1, b"second")])


def test_a_broker_restart_delays_the_batch_without_losing_it(tmp_path: Path) -> None:
    """Scenario: the broker is down while a batch is produced and comes back on the same port.
    We expect: write_batch blocks (retrying) and then delivers every message of the batch."""
    private = EmbeddedBroker(log_path=tmp_path / "broker.log").start()
    try:
        topic, part = dlq_then_stop(private, max_retry_seconds=120, message_timeout_ms=2000)
        done = threading.Event()
        writer = threading.Thread(
            target=lambda: (part.write_batch([make_rejection(i, b"during") for i in range(1, 6)]),
                            done.set()),
            daemon=True,
        )  # fmt: skip
        writer.start()
        assert not done.wait(1.5), "write_batch must block while the broker is down"
        private.start()  # memory storage: the topic is gone, create it again
        ensure_topics(private.bootstrap, {topic: 1})
        writer.join(timeout=90)
        assert done.is_set()
        assert [m.value() for m in read_to_end(private.bootstrap, topic)] == [b"during"] * 5
    finally:
        private.stop()
