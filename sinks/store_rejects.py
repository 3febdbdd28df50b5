"""Rows a store refuses for their data, as ``store_rejected`` dead letters.

A PostgreSQL writer isolates the rows its table refuses (a value out of range, a constraint, an
index entry too large; ``sinks.pg_writer``), the Redis writer the writes Redis refuses
(WRONGTYPE); both hand them to a ``RejectWriter``, which stores each in ``rtep.rejected_events``
and on the DLQ topic with the store's message, so that no refused row stops the flow or is lost.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from operators.records import Reason, Rejection, Source
from rtep.core.logs import get_logger
from rtep.core.metrics import EVENTS_REJECTED
from sinks.kafka import DlqSink, KafkaTopicPartition
from sinks.pg_spec import Row, TableSpec
from sinks.pg_tables import REJECTED
from sinks.pg_writer import PostgresWriter, Refused, Timeouts
from sinks.retry import RetryPolicy

if TYPE_CHECKING:
    from rtep.core.settings import Settings

log = get_logger("rtep.sinks.postgres")


def store_rejection(spec: TableSpec[Any], row: Row, error: Exception, now: datetime) -> Rejection:
    """A refused row as a dead letter: reason ``store_rejected``, the database's message.

    Its source is ``(rtep.<table>, -1, n)``, ``n`` a hash of the table and the row's natural key:
    not a Kafka position, but stable, so a replay of the same refused row is one row in
    ``rtep.rejected_events`` (its unique key) and one DLQ letter per delivery."""
    key = spec.key_of(row)
    digest = hashlib.sha256(repr((spec.table, key)).encode()).digest()
    offset = int.from_bytes(digest[:8], "big") >> 1  # a non-negative bigint
    message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    sqlstate = getattr(error, "sqlstate", None)
    state = f" (SQLSTATE {sqlstate})" if sqlstate else f" ({type(error).__name__})"
    named = ", ".join(f"{c}={v!s:.80}" for c, v in zip(spec.key, key, strict=True))
    detail = f"rtep.{spec.table} refused the row {named}: {message}{state}"
    return Rejection(
        Reason.STORE_REJECTED, detail[:1000], spec.raw(row), Source(f"rtep.{spec.table}", -1, offset), now
    )  # fmt: skip


@dataclass(frozen=True)
class StoreRejects:
    """Where rows refused for their data go: ``rtep.rejected_events`` and the DLQ topic."""

    dsn: str
    brokers: str
    dlq_topic: str
    extra_config: dict[str, str] = field(default_factory=dict)
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    timeouts: Timeouts = field(default_factory=Timeouts)

    @classmethod
    def from_settings(cls, settings: Settings, dsn: str, retry: RetryPolicy) -> StoreRejects:
        """The flow's DLQ topic and rejected-events table (on ``dsn``)."""
        return cls(
            dsn, settings.kafka_brokers, settings.dlq_topic, settings.kafka_extra_config, retry,
            Timeouts.from_settings(settings),
        )  # fmt: skip

    def open(self) -> RejectWriter:
        """A writer of such dead letters (one per sink writer thread; connects on first use)."""
        return RejectWriter(self)


class RejectWriter:
    """Writes ``store_rejected`` dead letters, table first, then topic (each idempotent)."""

    def __init__(self, target: StoreRejects) -> None:
        self.target = target
        self._table: PostgresWriter[Rejection] | None = None
        self._topic: KafkaTopicPartition | None = None

    def reject(self, spec: TableSpec[Any], refused: Refused) -> None:
        """Dead-letter the refused rows of ``spec``'s table (blocks while the DLQ is down)."""
        now = datetime.now(UTC)
        rejections = [store_rejection(spec, row, error, now) for row, error in refused]
        for rejection in rejections:
            log.warning(
                "row refused by PostgreSQL: dead-lettered as store_rejected",
                table=spec.table, source_offset=rejection.source.offset, detail=rejection.detail,
            )  # fmt: skip
        self.write(rejections)

    def write(self, rejections: list[Rejection]) -> None:
        """Store the dead letters in ``rtep.rejected_events``, then on the DLQ topic."""
        target = self.target
        if self._table is None:
            self._table = PostgresWriter(REJECTED, target.dsn, target.retry, timeouts=target.timeouts)
        if self._topic is None:
            sink = DlqSink(target.brokers, target.dlq_topic, retry=target.retry,
                           extra_config=target.extra_config)  # fmt: skip
            self._topic = sink.build("store_rejects", 0, 1)
        self._table.write_batch(rejections)
        self._topic.write_batch(rejections)
        EVENTS_REJECTED.labels(Reason.STORE_REJECTED.value).inc(len(rejections))

    def close(self) -> None:
        """Close the connection and flush the producer, if they were opened."""
        if self._table is not None:
            self._table.close()
        if self._topic is not None:
            self._topic.close()
