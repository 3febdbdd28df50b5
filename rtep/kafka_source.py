"""The Kafka input: bytewax's ``KafkaSource``, handing on confluent-kafka's own messages.

Why: bytewax 0.21.1's source wraps every message in a ``KafkaSourceMessage`` dataclass (eight
method calls and a frozen-dataclass init each) and ``kafka.operators.input`` then splits errors
from messages with a per-item branch: 13 % of the pipeline's time in the benchmark profile. Here
a batch is the list ``Consumer.consume`` returned, minus errors (logged); the step after reads
``value()``, ``topic()``, ``partition()``, ``offset()`` itself.

Everything else is bytewax's: partitions listed from the topic metadata, one consumer per
partition (``assign``, no consumer group), the next offset kept in the recovery snapshot, the
consumer-lag gauge. ``_KafkaSourcePartition`` is private to bytewax; bytewax is pinned to 0.21.1
in ``pyproject.toml`` and ``tests/integration/test_kafka_source.py`` checks offsets and resume.
"""

from __future__ import annotations

from typing import Any

from bytewax.connectors.kafka import KafkaSource
from bytewax.connectors.kafka import _KafkaSourcePartition as _BytewaxPartition
from bytewax.inputs import FixedPartitionedSource, StatefulSourcePartition
from confluent_kafka import KafkaError, Message

from rtep.logs import get_logger

log = get_logger("rtep.kafka_source")


class LeanKafkaSource(FixedPartitionedSource[Message, int | None]):
    """A ``KafkaSource`` whose batches are lists of ``confluent_kafka.Message`` (errors logged).

    Takes ``KafkaSource``'s arguments (``brokers``, ``topics``, ``starting_offset``,
    ``add_config``, ``batch_size``), plus ``consumer_defaults``: settings for the consumers only,
    which ``add_config`` overrides. ``add_config`` alone reaches the admin client that lists the
    partitions: it warns about every consumer-only property it is given (``CONFWARN`` on stderr
    at each start). Consumer errors are never raised, as with ``kafka.operators.input``.
    """

    def __init__(
        self,
        brokers: list[str],
        topics: list[str],
        *,
        add_config: dict[str, str] | None = None,
        consumer_defaults: dict[str, str] | None = None,
        **options: Any,
    ) -> None:
        shared = add_config or {}
        self._lister = KafkaSource(brokers, topics, add_config=shared, **options)
        consumer = {**(consumer_defaults or {}), **shared}
        self._source = KafkaSource(
            brokers, topics, raise_on_errors=False, add_config=consumer, **options
        )

    def list_parts(self) -> list[str]:
        """Each Kafka partition of the topics is an input partition ("<index>-<topic>")."""
        return self._lister.list_parts()

    def build_part(self, step_id: str, for_part: str, resume_state: int | None) -> LeanPartition:
        """Bytewax's partition (consumer, offsets, lag gauge) behind a cheaper ``next_batch``."""
        return LeanPartition(self._source.build_part(step_id, for_part, resume_state))


class LeanPartition(StatefulSourcePartition[Message, int | None]):
    """One Kafka partition; the snapshot is the offset of the next message to read."""

    def __init__(self, inner: _BytewaxPartition) -> None:
        self._inner = inner
        self._consumer = inner._consumer
        self._batch_size = inner._batch_size

    def next_batch(self) -> list[Message]:
        """Up to ``batch_size`` messages (1 ms wait at most); errors are logged and skipped."""
        msgs = self._consumer.consume(self._batch_size, 0.001)
        if any(msg.error() is not None for msg in msgs):
            msgs = [msg for msg in msgs if _usable(msg)]
        if msgs:
            self._inner._offset = (msgs[-1].offset() or 0) + 1  # resume after the last one read
        return msgs

    def snapshot(self) -> int | None:
        """Where a resumed run starts reading."""
        return self._inner.snapshot()

    def close(self) -> None:
        """Close the consumer."""
        self._inner.close()


def _usable(msg: Message) -> bool:
    """True for a message; an error is logged (consumer errors are transient in librdkafka)."""
    error: KafkaError | None = msg.error()
    if error is None:
        return True
    log.warning("kafka source error", error=str(error), partition=msg.partition())
    return False
