"""Re-ingest dead letters into the events topic after a fix (``python -m rtep.dlq_replay``).

Source: ``rtep.rejected_events`` (default) or the DLQ topic (``--from-topic``), filtered by reason
and time. Each replayed message keeps its original bytes and key-less routing, gains the header
``rtep.replayed_from`` (topic/partition/offset of the original), and its rejected row is marked
``replayed_at``. A second replay finds nothing left to replay; and were the same bytes re-sent,
``rtep.events`` would still hold each eventId once.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from datetime import datetime

import psycopg
from confluent_kafka import KafkaError, Producer

from rtep.cli import command_parser
from rtep.kafka_admin import read_to_end
from rtep.logs import get_logger
from rtep.settings import Settings, get_settings, settings_help

log = get_logger("rtep.dlq_replay")


@dataclass(frozen=True)
class DeadLetter:
    """One rejected message to replay, and where it originally came from."""

    raw: bytes
    topic: str
    partition: int
    offset: int
    reason: str


@dataclass(frozen=True)
class ReplayFilter:
    """Which dead letters to replay."""

    reasons: tuple[str, ...] = ()
    since: datetime | None = None
    until: datetime | None = None
    include_replayed: bool = False


_SELECT_REJECTED = """
SELECT raw, source_topic, source_partition, source_offset, reason
FROM rtep.rejected_events
WHERE (%(all)s OR replayed_at IS NULL)
  AND (cardinality(%(reasons)s::text[]) = 0 OR reason = ANY(%(reasons)s::text[]))
  AND (%(since)s::timestamptz IS NULL OR received_at >= %(since)s::timestamptz)
  AND (%(until)s::timestamptz IS NULL OR received_at < %(until)s::timestamptz)
ORDER BY id
LIMIT %(limit)s
"""


def from_table(dsn: str, flt: ReplayFilter, limit: int) -> list[DeadLetter]:
    """Dead letters from ``rtep.rejected_events`` matching the filter (oldest first)."""
    params = {
        "all": flt.include_replayed,
        "reasons": list(flt.reasons),
        "since": flt.since,
        "until": flt.until,
        "limit": limit,
    }
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(_SELECT_REJECTED, params).fetchall()
    return [DeadLetter(bytes(r[0]), r[1], r[2], r[3], r[4]) for r in rows]


def from_topic(settings: Settings, flt: ReplayFilter, limit: int) -> list[DeadLetter]:
    """Dead letters read from the DLQ topic, from the beginning to its current end."""
    out: list[DeadLetter] = []
    for msg in read_to_end(settings.kafka_brokers, settings.dlq_topic, settings.kafka_extra_config):
        headers = {k: _text(v) for k, v in list(msg.headers() or [])}
        letter = DeadLetter(
            msg.value() or b"",
            headers.get("rtep.source.topic", ""),
            int(headers.get("rtep.source.partition", "-1")),
            int(headers.get("rtep.source.offset", "-1")),
            headers.get("rtep.reason", ""),
        )
        if _matches(letter, flt, msg.timestamp()[1]):
            out.append(letter)
    return out[:limit]


def _text(value: str | bytes | None) -> str:
    return value.decode() if isinstance(value, bytes) else (value or "")


def _matches(letter: DeadLetter, flt: ReplayFilter, ts_ms: int) -> bool:
    if flt.reasons and letter.reason not in flt.reasons:
        return False
    stamp = ts_ms / 1000
    if flt.since and stamp < flt.since.timestamp():
        return False
    return not (flt.until and stamp >= flt.until.timestamp())


def replay(settings: Settings, letters: list[DeadLetter]) -> int:
    """Produce the letters to the events topic, then mark them replayed; return the count."""
    if not letters:
        return 0
    producer = Producer(
        {"bootstrap.servers": settings.kafka_brokers, "acks": "all", "enable.idempotence": True}
        | settings.kafka_extra_config
    )
    failures: list[KafkaError] = []
    for letter in letters:
        origin = f"{letter.topic}/{letter.partition}/{letter.offset}".encode()
        producer.produce(
            settings.events_topic,
            letter.raw,
            headers=[("rtep.replayed_from", origin)],
            on_delivery=lambda err, _msg: failures.append(err) if err else None,
        )
        producer.poll(0)
    remaining = producer.flush(60)
    if remaining or failures:
        raise RuntimeError(
            f"{remaining + len(failures)} replayed messages were not acknowledged; nothing was "
            "marked replayed: run the command again"
        )
    with psycopg.connect(settings.database_url.get_secret_value()) as conn:
        conn.cursor().executemany(
            "UPDATE rtep.rejected_events SET replayed_at = now() WHERE source_topic = %s"
            " AND source_partition = %s AND source_offset = %s",
            [(x.topic, x.partition, x.offset) for x in letters],
        )
    return len(letters)


def main(argv: list[str] | None = None, prog: str = "python -m rtep.dlq_replay") -> int:
    """CLI: select dead letters, replay them, report counts."""
    parser = command_parser(
        prog,
        __doc__,
        settings_help(
            "database_url", "kafka_brokers", "events_topic", "dlq_topic", "kafka_extra_config"
        ),
        f"{prog} --reason too_large --dry-run",
        f"{prog} --from-topic --since 2026-11-24T00:00:00+00:00",
    )
    parser.add_argument(
        "--from-topic", action="store_true", help="read the DLQ topic, not the table"
    )
    parser.add_argument(
        "--reason", action="append", default=[], help="only this reason (repeatable)"
    )
    parser.add_argument("--since", type=datetime.fromisoformat, help="received at or after (ISO)")
    parser.add_argument("--until", type=datetime.fromisoformat, help="received before (ISO)")
    parser.add_argument(
        "--include-replayed", action="store_true", help="replay again rows already replayed"
    )
    parser.add_argument("--limit", type=int, default=1_000_000)
    parser.add_argument("--dry-run", action="store_true", help="count what would be replayed")
    args = parser.parse_args(argv)
    settings = get_settings()
    flt = ReplayFilter(tuple(args.reason), args.since, args.until, args.include_replayed)
    if args.from_topic:
        letters = from_topic(settings, flt, args.limit)
        if not args.include_replayed:
            done = _already_replayed(settings.database_url.get_secret_value(), letters)
            letters = [x for x in letters if (x.topic, x.partition, x.offset) not in done]
    else:
        letters = from_table(settings.database_url.get_secret_value(), flt, args.limit)
    if args.dry_run:
        log.info("dry run: would replay", count=len(letters))
        return 0
    count = replay(settings, letters)
    log.info("dead letters replayed", count=count, topic=settings.events_topic)
    return 0


def _already_replayed(dsn: str, letters: list[DeadLetter]) -> set[tuple[str, int, int]]:
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            "SELECT source_topic, source_partition, source_offset FROM rtep.rejected_events"
            " WHERE replayed_at IS NOT NULL"
        ).fetchall()
    return {(r[0], r[1], r[2]) for r in rows}


if __name__ == "__main__":
    sys.exit(main())
