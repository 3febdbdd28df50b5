"""Sending simulated messages to Kafka: pacing, delivery checks, labels, progress.

Delivery guarantee: acks=all with idempotence, so a retried batch is not duplicated by the
producer; every delivery error stops the run with a non-zero exit (never a silent loss).
"""

from __future__ import annotations

import json
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, TextIO

from confluent_kafka import KafkaError, KafkaException, Producer
from confluent_kafka import Message as KafkaMessage
from confluent_kafka.admin import AdminClient, NewTopic

from sim.events import iso
from sim.generator import Message

PRODUCER_CONFIG: dict[str, Any] = {
    "acks": "all",
    "enable.idempotence": True,
    "linger.ms": 10,
    "batch.num.messages": 10_000,
    "batch.size": 1_048_576,
    "queue.buffering.max.messages": 1_000_000,
    "queue.buffering.max.kbytes": 1_048_576,
    "message.max.bytes": 2_000_000,
}


class StopGenerating(Exception):
    """Raised by a stop request while the next messages are being generated (a chunk of an
    endless run takes seconds): what was already produced is still flushed."""


class DeliveryFailed(RuntimeError):
    """The broker did not accept a message: the run is incomplete and must not look complete."""


def ensure_topic(brokers: str, topic: str, partitions: int, timeout: float = 30.0) -> None:
    """Create ``topic`` with ``partitions`` if missing; wait until the broker lists it."""
    admin = AdminClient({"bootstrap.servers": brokers})
    if topic in admin.list_topics(timeout=timeout).topics:
        return
    future = admin.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=1)])
    try:
        future[topic].result(timeout=timeout)
    except KafkaException as exc:
        if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
            raise
    deadline = time.monotonic() + timeout
    while topic not in admin.list_topics(timeout=timeout).topics:
        if time.monotonic() > deadline:
            raise TimeoutError(f"topic {topic} was created but is not listed after {timeout:.0f}s")
        time.sleep(0.1)  # poll interval


@dataclass
class Tally:
    """What was sent: the numbers of the final summary and of the progress line."""

    messages: int = 0
    kinds: Counter[str] = field(default_factory=Counter)
    reasons: Counter[str] = field(default_factory=Counter)
    incidents: Counter[str] = field(default_factory=Counter)
    injected: Counter[str] = field(default_factory=Counter)
    first_ts: float | None = None
    last_ts: float | None = None

    def add(self, msg: Message) -> None:
        """Count one sent message and the labels it carries."""
        self.messages += 1
        self.kinds[msg.kind] += 1
        if msg.kind in ("benign", "attack"):
            self.first_ts = msg.ts if self.first_ts is None else self.first_ts
            self.last_ts = msg.ts
        for label in msg.labels:
            if label["kind"] == "malformed":
                self.reasons[label["reason"]] += 1
            elif label["kind"] == "incident":
                self.incidents[label["rule"]] += 1
                if label["injected"]:
                    self.injected[label["rule"]] += 1

    def summary(self, interrupted: bool) -> dict[str, Any]:
        """The final ``{"kind": "summary"}`` label record."""
        return {
            "kind": "summary",
            "messages": self.messages,
            "valid_distinct": self.kinds["benign"] + self.kinds["attack"],
            "benign": self.kinds["benign"],
            "attack_messages": self.kinds["attack"],
            "duplicates": self.kinds["duplicate"],
            "malformed": self.kinds["malformed"],
            "malformed_by_reason": dict(sorted(self.reasons.items())),
            "incidents_by_rule": dict(sorted(self.incidents.items())),
            "injected_incidents_by_rule": dict(sorted(self.injected.items())),
            "first_ts": None if self.first_ts is None else iso(self.first_ts),
            "last_ts": None if self.last_ts is None else iso(self.last_ts),
            "interrupted": interrupted,
        }


class Progress:
    """One line on stderr per second: an updating line on a TTY, key=value lines otherwise."""

    def __init__(self, stream: TextIO = sys.stderr, total: int = 0) -> None:
        self.stream = stream
        self.tty = stream.isatty()
        self.total = total
        self.started = self.last = time.monotonic()
        self.last_count = 0

    def maybe(self, tally: Tally, force: bool = False) -> None:
        """Print if a second has passed (or ``force``)."""
        now = time.monotonic()
        if not force and now - self.last < 1.0:
            return
        rate = (tally.messages - self.last_count) / max(now - self.last, 1e-9)
        self.last, self.last_count = now, tally.messages
        of = f"/{self.total}" if self.total else ""
        fields = (
            f"sent={tally.messages}{of} rate={rate:.0f}/s malformed={tally.kinds['malformed']} "
            f"duplicates={tally.kinds['duplicate']} attacks={tally.kinds['attack']} "
            f"incidents={sum(tally.incidents.values())}"
        )
        if self.tty:
            self.stream.write("\r\x1b[2K" + fields.replace("=", " "))
        else:
            self.stream.write(f"sim progress {fields} elapsed={now - self.started:.1f}s\n")
        self.stream.flush()

    def done(self) -> None:
        """End the updating line."""
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()


class Sender:
    """Produces messages in order, paced, writing labels as their messages go out."""

    def __init__(self, brokers: str, topic: str, labels: TextIO | None) -> None:
        self.topic = topic
        self.producer = Producer({"bootstrap.servers": brokers, **PRODUCER_CONFIG})
        self.labels = labels
        self.tally = Tally()
        self.stopping = False
        self.generating = False  # inside next(messages): a stop must interrupt it
        self._errors: list[str] = []
        self._sent_at: dict[str, str] = {}
        self._progress = Progress()

    def _delivered(self, err: KafkaError | None, _msg: KafkaMessage) -> None:
        if err is not None:
            self._errors.append(str(err))

    def run(
        self,
        messages: Iterable[Message],
        pace: Callable[[float], float] | None,
        progress: Progress,
    ) -> Tally:
        """Send until the messages end or ``stopping`` is set; flush; raise on any delivery error.

        ``pace`` maps an event timestamp to the monotonic time it may be sent at (None: at once).
        """
        producer, topic, tally = self.producer, self.topic, self.tally
        self._progress = progress
        stream = iter(messages)
        while not self.stopping:
            msg = self._next(stream)
            if msg is None:
                break
            if pace is not None:
                self._wait_until(pace(msg.ts))
                if self.stopping:
                    break
            if msg.threshold and msg.event_id is not None:
                self._sent_at[msg.event_id] = iso(time.time())
            while True:
                try:
                    producer.produce(topic, msg.value, msg.key, on_delivery=self._delivered)
                    break
                except BufferError:
                    producer.poll(0.05)
            tally.add(msg)
            if msg.labels and self.labels is not None:
                self._write_labels(msg)
            if not tally.messages & 255:
                producer.poll(0)
                self._check()
                progress.maybe(tally)
        left = producer.flush(60)
        self._check()
        if left:
            raise DeliveryFailed(f"{left} messages still undelivered after 60 s")
        progress.maybe(tally, force=True)
        progress.done()
        return tally

    def _next(self, stream: Iterator[Message]) -> Message | None:
        """The next message, or None at the end or when a stop interrupted its generation."""
        self.generating = True
        try:
            return next(stream, None)
        except StopGenerating:
            return None
        finally:
            self.generating = False

    def request_stop(self) -> None:
        """Stop sending (a signal handler calls this): the current message is the last one;
        a chunk being generated is abandoned at once rather than after seconds."""
        self.stopping = True
        if self.generating:
            raise StopGenerating

    def _wait_until(self, deadline: float) -> None:
        """Serve delivery reports until ``deadline`` (monotonic) or a stop request."""
        while not self.stopping:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            self.producer.poll(min(left, 0.1))
            self._check()
            self._progress.maybe(self.tally)

    def _write_labels(self, msg: Message) -> None:
        assert self.labels is not None
        for label in msg.labels:
            record = label
            if label["kind"] == "incident":
                sent = self._sent_at.get(label["threshold_event_id"])
                record = {**label, "threshold_sent_at": sent}
            self.labels.write(json.dumps(record, separators=(",", ":")) + "\n")
        for label in msg.labels:  # no later message needs these threshold events
            if label["kind"] == "incident":
                self._sent_at.pop(label["threshold_event_id"], None)

    def _check(self) -> None:
        if self._errors:
            raise DeliveryFailed(f"{len(self._errors)} delivery errors, first: {self._errors[0]}")
