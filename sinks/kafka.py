"""Dead letters and alerts to Kafka, through an idempotent producer flushed before each batch returns.

Delivery: at-least-once. ``write_batch`` returns only when the broker acknowledged every message
(``acks=all``); a batch with undelivered messages is retried (only those messages) by
``sinks.retry`` while the error is transient, and raises otherwise. A crash after the broker
acknowledged a batch but before Bytewax's next snapshot replays that batch: the same dead letter
or alert can then appear twice on the topic. Consumers de-duplicate on
(``rtep.source.topic``, ``rtep.source.partition``, ``rtep.source.offset``) for dead letters and
on ``alert_id`` (same id = same incident, latest version wins) for alerts.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from functools import partial
from typing import Any

from bytewax.outputs import DynamicSink, StatelessSinkPartition
from confluent_kafka import KafkaError, KafkaException, Message, Producer

from operators.erasure import ERASURES
from operators.records import Alert, Rejection
from rtep.core.metrics import EVENTS_STORED, SINK_WRITE_SECONDS
from sinks.codec import alert_json
from sinks.retry import KAFKA, RetriableKafkaError, RetryPolicy

Headers = list[tuple[str, str | bytes | None]]
PRODUCER_MAX_BYTES = 1_000_000
"""librdkafka's default ``message.max.bytes`` (when RTEP_KAFKA_EXTRA_CONFIG does not set it)."""
_MARGIN = 1024  # record and batch framing around key, value and headers
KafkaMessage = tuple[bytes | None, bytes, Headers]


def dlq_message(rejection: Rejection) -> KafkaMessage:
    """A rejection as a dead letter: original bytes unchanged, where it came from, and why."""
    src = rejection.source
    headers: Headers = [
        ("rtep.reason", str(rejection.reason).encode()),
        ("rtep.detail", rejection.detail.encode("utf-8", "replace")),
        ("rtep.source.topic", src.topic.encode()),
        ("rtep.source.partition", str(src.partition).encode()),
        ("rtep.source.offset", str(src.offset).encode()),
    ]
    if rejection.replay is not None:  # a replayed dead letter rejected again: its original row
        headers += [("rtep.replay.of", str(rejection.replay.of).encode()),
                    ("rtep.replay.attempt", str(rejection.replay.attempt).encode())]  # fmt: skip
    return None, rejection.raw, headers


def fit(message: KafkaMessage, limit: int) -> KafkaMessage:
    """``message``, or, when its value would exceed the producer's ``message.max.bytes``, the same
    message with an empty value and headers ``rtep.truncated`` (the original size) and
    ``rtep.sha256``.

    Why: the producer refuses such a message permanently, which would stop the flow and, replayed
    after the restart, stop it again: one oversized input (the broker accepted it on the events
    topic) must not stop the pipeline. The full bytes of a dead letter stay in
    ``rtep.rejected_events.raw`` (same source topic/partition/offset). Raise
    ``message.max.bytes`` in RTEP_KAFKA_EXTRA_CONFIG to carry big values on the topic itself.
    """
    key, value, headers = message
    if len(value) + sum(len(k) + len(v or b"") for k, v in headers) + _MARGIN <= limit:
        return message
    digest = hashlib.sha256(value).hexdigest()
    extra: Headers = [("rtep.truncated", str(len(value)).encode()), ("rtep.sha256", digest)]
    return key, b"", [*headers, *extra]


def alert_message(alert: Alert) -> KafkaMessage:
    """An alert as one message: key = subject, value = JSON of the ``alerts`` row fields."""
    return alert.subject.encode(), alert_json(alert), []


class KafkaTopicSink(DynamicSink[Any]):
    """Items → one Kafka topic via ``encode(item) -> (key, value, headers)``; flushed per batch.

    Guarantee: at-least-once (see the module docstring for when a duplicate appears).
    """

    def __init__(
        self,
        brokers: str,
        topic: str,
        encode: Callable[[Any], KafkaMessage],
        *,
        sink: str,
        retry: RetryPolicy | None = None,
        extra_config: dict[str, str] | None = None,
        message_timeout_ms: int = 30_000,
    ) -> None:
        self.topic = topic
        self.encode = encode
        self.sink = sink
        self.retry = retry or RetryPolicy()
        self.config: dict[str, Any] = {
            "bootstrap.servers": brokers,
            "acks": "all",
            "enable.idempotence": True,
            "linger.ms": 5,
            "message.timeout.ms": message_timeout_ms,
            **(extra_config or {}),
        }

    def build(self, step_id: str, worker_index: int, worker_count: int) -> KafkaTopicPartition:
        """One producer per worker."""
        return KafkaTopicPartition(self)


class KafkaTopicPartition(StatelessSinkPartition[Any]):
    """One worker's producer."""

    def __init__(self, config: KafkaTopicSink) -> None:
        self.config = config
        self.producer = Producer(config.config)
        self._flush_timeout = config.config["message.timeout.ms"] / 1000 + 5

    def write_batch(self, items: list[Any]) -> None:
        """Produce every item and wait for all acknowledgements; retry undelivered ones."""
        if not items:
            return
        limit = int(self.config.config.get("message.max.bytes", PRODUCER_MAX_BYTES))
        encode = self.config.encode
        messages = [fit(encode(item), limit) for item in items if type(item) not in ERASURES]
        with SINK_WRITE_SECONDS.labels(sink=self.config.sink).time():
            self.config.retry.call(
                lambda: self._deliver(messages), backend=KAFKA, sink=self.config.sink
            )
        EVENTS_STORED.labels(sink=self.config.sink).inc(len(messages))

    def close(self) -> None:
        """Deliver anything still queued (only called when the flow ends on finite input)."""
        self.producer.flush(self._flush_timeout)

    def _deliver(self, pending: list[KafkaMessage]) -> None:
        """One attempt; on a transient failure ``pending`` keeps only the undelivered messages."""
        outcomes: list[tuple[KafkaMessage, list[KafkaError | None]]] = [(m, []) for m in pending]
        errors: list[KafkaError] = []
        try:
            for message, reports in outcomes:
                self._produce(message, partial(_record, reports))
            self.producer.flush(self._flush_timeout)
        except (KafkaException, SystemError) as exc:
            # A fatal error surfaces from produce/poll/flush, during a delivery callback as a
            # SystemError caused by the KafkaException.
            fatal = _fatal_error(exc)
            if fatal is None:
                raise
            errors.append(fatal)
        undelivered = [m for m, reports in outcomes if not reports or reports[0] is not None]
        if not undelivered:
            return
        errors += [r[0] for _, r in outcomes if r and r[0] is not None]
        if not errors or any(
            e.fatal() or e.code() == KafkaError.UNKNOWN_PRODUCER_ID or _is_timeout(e)
            for e in errors
        ):
            # The broker lost the producer's state (e.g. restarted without storage) or never
            # answered: an idempotent producer can stay stuck on its old sequence, so a fresh
            # one resends what was not acknowledged (at-least-once: a resend may duplicate).
            self.producer = Producer(self.config.config)
        elif permanent := [e for e in errors if not (e.retriable() or _is_timeout(e))]:
            raise KafkaException(permanent[0])
        pending[:] = undelivered
        reason = errors[0].str() if errors else "no acknowledgement in time"
        raise RetriableKafkaError(
            f"{len(undelivered)} of {len(outcomes)} messages to {self.config.topic} "
            f"not delivered: {reason}"
        )

    def _produce(
        self, message: KafkaMessage, on_delivery: Callable[[KafkaError | None, Message], None]
    ) -> None:
        key, value, headers = message
        while True:
            try:
                self.producer.produce(
                    self.config.topic, value=value, key=key, headers=headers,
                    on_delivery=on_delivery,
                )  # fmt: skip
                return
            except BufferError:
                self.producer.poll(0.1)  # the local queue is full: serve delivery reports


def _record(reports: list[KafkaError | None], err: KafkaError | None, _msg: Message) -> None:
    """Delivery callback: note the outcome (None = acknowledged)."""
    reports.append(err)


def _fatal_error(exc: BaseException | None) -> KafkaError | None:
    """The fatal KafkaError carried by ``exc`` or its causes, if any."""
    while exc is not None:
        if isinstance(exc, KafkaException) and exc.args and isinstance(exc.args[0], KafkaError):
            return exc.args[0] if exc.args[0].fatal() else None
        exc = exc.__cause__ or exc.__context__
    return None


def _is_timeout(error: KafkaError) -> bool:
    return error.code() in (KafkaError._MSG_TIMED_OUT, KafkaError._TIMED_OUT)


class DlqSink(KafkaTopicSink):
    """Rejections → the DLQ topic (``dlq_message``): original bytes, reason and source headers.

    Guarantee: at-least-once. A crash after the broker acknowledged a batch and before the next
    snapshot replays it: that batch's dead letters then appear twice, with identical headers.
    """

    def __init__(self, brokers: str, topic: str, **options: Any) -> None:
        super().__init__(brokers, topic, dlq_message, sink="dlq", **options)


class AlertsTopicSink(KafkaTopicSink):
    """Alerts → the alerts topic (``alert_message``), key = subject.

    Guarantee: at-least-once. Each new version of an incident is a message; a replay after a
    crash can repeat messages; ``alert_id`` identifies the incident (the latest version wins).
    """

    def __init__(self, brokers: str, topic: str, **options: Any) -> None:
        super().__init__(brokers, topic, alert_message, sink="alerts_topic", **options)
