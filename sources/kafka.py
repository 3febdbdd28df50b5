"""The Kafka input: one consumer per partition, and the partition's own work done where it is read.

Why: Kafka orders events only within a partition, so event time and per-user state belong to the
partition (see docs/semantics.md). Each partition's ``PartitionWork`` (validation, dedup,
sessions, per-user rules: ``dataflows.partition_stage``) runs inside the source partition, on the
worker that reads it; its state is saved in the source's snapshot together with the next offset,
so state and offsets roll back together after a crash and follow their partition to whichever
worker reads it after a restart with another number of workers or processes (Bytewax hands a
partition's snapshot back as its ``resume_state``).

The partition also tells its work whether it is *caught up*: librdkafka reports the end of the
partition (``enable.partition.eof``) each time the consumer reaches it. Only then may the work's
event time advance with wall time; a partition that still has a backlog (or is held back by a
slow sink) never does. Caught-up partitions of one process may also follow the latest event time
read by the others (``InputProgress.follow``).

Everything else is bytewax's ``KafkaSource``: partitions listed from the topic metadata, one
consumer per partition (``assign``, no consumer group), the consumer-lag gauge. Its message
wrapper is skipped (13 % of the pipeline's time in a profile): the work reads confluent-kafka's
messages. ``_KafkaSourcePartition`` is private to bytewax; bytewax is pinned to 0.21.1 in
``pyproject.toml`` and ``tests/integration/test_kafka_source.py`` checks offsets and resume.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Generic, NamedTuple, Protocol, TypeVar

from bytewax.connectors.kafka import KafkaSource
from bytewax.connectors.kafka import _KafkaSourcePartition as _BytewaxPartition
from bytewax.inputs import FixedPartitionedSource, StatefulSourcePartition
from confluent_kafka import KafkaError, Message

from operators.state import InputProgress
from rtep.core.logs import get_logger

log = get_logger("sources.kafka")
Out = TypeVar("Out")


class PartitionWork(Protocol[Out]):
    """What runs on each partition's messages (see ``dataflows.partition_stage``)."""

    def process(self, messages: list[Message], now: datetime) -> list[Out]:
        """Items for the flow from a batch (maybe empty: ticks and progress still happen)."""
        ...

    def latest(self) -> datetime | None:
        """The latest event time read so far (for ``InputProgress.follow`` of the others)."""
        ...

    def snapshot(self) -> object:
        """Picklable state, saved with the partition's offset."""
        ...


WorkFactory = Callable[[str, int, InputProgress, object | None], PartitionWork[Out]]
"""``(partition, partitions of the input, progress, saved state or None)`` → the work."""


class PartitionState(NamedTuple):
    """A source partition's snapshot: where to resume reading, and its work's state."""

    offset: int | None
    work: object


class LeanKafkaSource(FixedPartitionedSource[Out, PartitionState], Generic[Out]):
    """A ``KafkaSource`` whose partitions run ``work`` on their messages (errors logged).

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
        work: WorkFactory[Out],
        *,
        add_config: dict[str, str] | None = None,
        consumer_defaults: dict[str, str] | None = None,
        **options: Any,
    ) -> None:
        shared = add_config or {}
        self._lister = KafkaSource(brokers, topics, add_config=shared, **options)
        # the partition's end must be reported (caught-up detection): not overridable
        consumer = {**(consumer_defaults or {}), **shared, "enable.partition.eof": "true"}
        self._source = KafkaSource(
            brokers, topics, raise_on_errors=False, add_config=consumer, **options
        )
        self._work = work
        self._latest: dict[str, datetime] = {}  # partition -> latest event time (this process)
        self._parts: int | None = None  # partitions of the input, listed once

    def list_parts(self) -> list[str]:
        """Each Kafka partition of the topics is an input partition ("<index>-<topic>")."""
        return self._lister.list_parts()

    def build_part(
        self, step_id: str, for_part: str, resume_state: PartitionState | int | None
    ) -> LeanPartition[Out]:
        """Bytewax's partition (consumer, offsets, lag gauge) running this source's work.

        ``resume_state`` may also be a bare offset (what rtep 0.1.x saved): the work starts empty.
        """
        if isinstance(resume_state, PartitionState):
            offset, saved = resume_state.offset, resume_state.work
        else:
            offset, saved = resume_state, None
        progress = InputProgress()
        if self._parts is None:
            self._parts = len(self.list_parts())
        work = self._work(for_part, self._parts, progress, saved)
        inner = self._source.build_part(step_id, for_part, offset)
        return LeanPartition(for_part, inner, work, progress, self._latest)


class LeanPartition(StatefulSourcePartition[Out, PartitionState], Generic[Out]):
    """One Kafka partition and its work; the snapshot holds the next offset and the work's state."""

    def __init__(
        self,
        name: str,
        inner: _BytewaxPartition,
        work: PartitionWork[Out],
        progress: InputProgress,
        latest: dict[str, datetime],
    ) -> None:
        self._name = name
        self._inner = inner
        self._consumer = inner._consumer
        self._batch_size = inner._batch_size
        self._work = work
        self._progress = progress
        self._latest = latest

    def next_batch(self) -> list[Out]:
        """Up to ``batch_size`` messages (1 ms wait at most) through the work; errors are logged.

        Runs the work even when nothing was read, so that timers fire and progress is reported.
        """
        msgs = self._consumer.consume(self._batch_size, 0.001)
        at_end = False
        if msgs and any(msg.error() is not None for msg in msgs):
            msgs, at_end = _split_errors(msgs)
        now = datetime.now(UTC)
        progress = self._progress
        if msgs:
            self._inner._offset = (msgs[-1].offset() or 0) + 1  # resume after the last one read
            progress.caught_up_since = None  # these messages are the backlog, not idleness
        latest, name = self._latest, self._name
        others = [ts for part, ts in tuple(latest.items()) if part != name]  # other threads add
        progress.follow = max(others) if others else None
        out = self._work.process(msgs, now)
        if at_end and progress.caught_up_since is None:  # from the next call on
            progress.caught_up_since = now
        mine = self._work.latest()
        if mine is not None:
            latest[name] = mine
        return out

    def snapshot(self) -> PartitionState:
        """Where a resumed run starts reading, and the state it starts with."""
        return PartitionState(self._inner.snapshot(), self._work.snapshot())

    def close(self) -> None:
        """Close the consumer."""
        self._inner.close()


def _split_errors(msgs: list[Message]) -> tuple[list[Message], bool]:
    """The messages, and whether the partition's end was reached after the last of them.

    Other consumer errors are logged and skipped (they are transient in librdkafka).
    """
    kept: list[Message] = []
    at_end = False
    for msg in msgs:
        error: KafkaError | None = msg.error()
        if error is None:
            kept.append(msg)
            at_end = False
        elif error.code() == KafkaError._PARTITION_EOF:
            at_end = True
        else:
            log.warning("kafka source error", error=str(error), partition=msg.partition())
    return kept, at_end
