"""Re-ingest dead letters into the events topic after a fix (``python -m rtep.commands.dlq_replay``).

What is replayed is always a row of ``rtep.rejected_events``, selected by reason and time
(default) or by the letters found on the DLQ topic (``--from-topic``, filtered by the letters'
reason and timestamp). The bytes sent are the row's ``raw``: complete even when the topic's
letter was emptied for size (``rtep.truncated``). Each message keeps its original bytes and
key-less routing and carries headers ``rtep.replayed_from`` (topic/partition/offset of the
original), ``rtep.replay.of`` (the row's id) and ``rtep.replay.attempt``.

Idempotent, in both ways a replay can repeat:

- **Marking is atomic with producing.** Rows are taken in chunks, each in one transaction:
  ``SELECT … FOR UPDATE SKIP LOCKED`` (two replays at once never send the same row), marked
  (``replayed_at``, ``replay_count`` + 1), produced, and committed only once the broker
  acknowledged every message of the chunk. A failure rolls the chunk back: nothing marked that
  was not delivered.
- **A repeat is harmless.** If the process dies after the acknowledgements and before the commit,
  the next run sends the chunk again with the *same* attempt number: a valid event is stored once
  (eventId), and a message rejected again lands on the same row (unique
  ``(replay_of, replay_attempt)``), linked to its original, instead of a new unmarked one.

A row that is itself a rejected replay (``replay_of`` set) is never selected: its original is the
dead letter, re-sent with ``--include-replayed``. So a second replay sends nothing. Rows refused by
a store for derived records (``store_rejected`` from ``rtep.sessions``/``alerts``/rollups/Redis)
are recomputed, not replayed: only Kafka messages and refused events are selected.

Large replays stream: ``--chunk`` rows at a time (memory bounded by one chunk), the producer's
local queue absorbed by polling when full (``BufferError``), the topic read one message at a time.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from confluent_kafka import KafkaError, Message, Producer

from rtep.commands.cli import command_parser
from rtep.core.kafka_admin import iter_to_end
from rtep.core.logs import get_logger
from rtep.core.settings import Settings, get_settings, settings_help

log = get_logger("rtep.commands.dlq_replay")
Coordinates = tuple[str, int, int]


@dataclass(frozen=True)
class DeadLetter:
    """One rejected row to replay: its id, bytes, where it originally came from, and the attempt
    number this replay gives it."""

    id: int
    raw: bytes
    topic: str
    partition: int
    offset: int
    reason: str
    attempt: int

    def headers(self) -> list[tuple[str, str | bytes | None]]:
        """Where the replayed message comes from (the flow links a new rejection to ``id``)."""
        return [
            ("rtep.replayed_from", f"{self.topic}/{self.partition}/{self.offset}".encode()),
            ("rtep.replay.of", str(self.id).encode()),
            ("rtep.replay.attempt", str(self.attempt).encode()),
        ]


@dataclass(frozen=True)
class ReplayFilter:
    """Which dead letters to replay."""

    reasons: tuple[str, ...] = ()
    since: datetime | None = None
    until: datetime | None = None
    include_replayed: bool = False


_SELECT = """
SELECT id FROM rtep.rejected_events
WHERE id > %(after)s
  AND replay_of IS NULL
  AND (source_partition >= 0 OR source_topic = 'rtep.events')
  AND (%(all)s OR replayed_at IS NULL)
  AND (cardinality(%(reasons)s::text[]) = 0 OR reason = ANY(%(reasons)s::text[]))
  AND (%(since)s::timestamptz IS NULL OR received_at >= %(since)s::timestamptz)
  AND (%(until)s::timestamptz IS NULL OR received_at < %(until)s::timestamptz)
  AND (%(ids)s::bigint[] IS NULL OR id = ANY(%(ids)s::bigint[]))
ORDER BY id
LIMIT %(limit)s
FOR UPDATE SKIP LOCKED
"""
_MARK = """
UPDATE rtep.rejected_events SET replayed_at = now(), replay_count = replay_count + 1
WHERE id = ANY(%s)
RETURNING id, raw, source_topic, source_partition, source_offset, reason, replay_count
"""


def replay(
    settings: Settings,
    flt: ReplayFilter,
    *,
    ids: list[int] | None = None,
    limit: int = 1_000_000,
    chunk: int = 1000,
    dry_run: bool = False,
) -> int:
    """Replay the matching rows (only ``ids`` when given), chunk by chunk; return how many.

    ``dry_run`` counts them and changes nothing (each chunk is rolled back)."""
    sent = 0
    after = 0
    producer = _producer(settings)
    with psycopg.connect(settings.database_url.get_secret_value()) as conn:
        while sent < limit:
            params = _params(flt, after, min(chunk, limit - sent), ids)
            with conn.transaction():
                chosen = [row[0] for row in conn.execute(_SELECT, params).fetchall()]
                if chosen and not dry_run:
                    letters = [DeadLetter(r[0], bytes(r[1]), *r[2:]) for r in
                               conn.execute(_MARK, (chosen,)).fetchall()]  # fmt: skip
                    _produce(producer, settings.events_topic, letters)  # raises: rolled back
            if not chosen:
                break
            after = chosen[-1]
            sent += len(chosen)
            if not dry_run:
                log.info("dead letters replayed", count=len(chosen), total=sent, last_id=after)
    return sent


def _params(flt: ReplayFilter, after: int, limit: int, ids: list[int] | None) -> dict[str, Any]:
    return {"after": after, "all": flt.include_replayed, "reasons": list(flt.reasons),
            "since": flt.since, "until": flt.until, "ids": ids, "limit": limit}  # fmt: skip


def _producer(settings: Settings) -> Producer:
    return Producer(
        {"bootstrap.servers": settings.kafka_brokers, "acks": "all", "enable.idempotence": True,
         "linger.ms": 5} | settings.kafka_extra_config
    )  # fmt: skip


def _produce(producer: Producer, topic: str, letters: list[DeadLetter]) -> None:
    """Send ``letters`` and wait for every acknowledgement; raise if any is missing."""
    failures: list[KafkaError] = []

    def delivered(err: KafkaError | None, _msg: Message) -> None:
        if err is not None:
            failures.append(err)

    for letter in letters:
        while True:
            try:
                producer.produce(topic, letter.raw, headers=letter.headers(), on_delivery=delivered)
                break
            except BufferError:  # the local queue is full: wait for deliveries (back-pressure)
                producer.poll(0.5)
        producer.poll(0)
    remaining = producer.flush(60)
    if remaining or failures:
        first = failures[0].str() if failures else "no acknowledgement within 60 s"
        raise RuntimeError(
            f"{remaining + len(failures)} of {len(letters)} replayed messages were not "
            f"acknowledged ({first}); this chunk was not marked replayed: run the command again "
            "(a message that did arrive is harmless to send again)"
        )


def ids_from_topic(settings: Settings, flt: ReplayFilter) -> Iterator[int]:
    """The rows of the dead letters found on the DLQ topic that match the filter (a truncated
    letter too: its full bytes are the row's). Letters of rejected replays are skipped (their
    original is the dead letter); letters without a row are logged, not replayed."""
    wanted: dict[Coordinates, None] = {}
    for msg in iter_to_end(settings.kafka_brokers, settings.dlq_topic, settings.kafka_extra_config,
                           timeout=600):  # fmt: skip
        headers = {str(k): _text(v) for k, v in list(msg.headers() or [])}
        if "rtep.replay.of" in headers or not _matches(headers, flt, msg.timestamp()[1]):
            continue
        wanted[(headers.get("rtep.source.topic", ""),
                int(headers.get("rtep.source.partition", "-1")),
                int(headers.get("rtep.source.offset", "-1")))] = None  # fmt: skip
    found = _rows_at(settings.database_url.get_secret_value(), list(wanted))
    missing = len(wanted) - len(found)
    if missing:
        log.warning("dead letters with no rtep.rejected_events row: not replayed", count=missing)
    yield from found


def _rows_at(dsn: str, coordinates: Iterable[Coordinates]) -> list[int]:
    """The ids of the rows at these source coordinates."""
    coords = list(coordinates)
    if not coords:
        return []
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            "SELECT r.id FROM rtep.rejected_events r JOIN unnest(%s::text[], %s::int[], "
            "%s::bigint[]) AS c(t, p, o) ON (r.source_topic, r.source_partition, "
            "r.source_offset) = (c.t, c.p, c.o) ORDER BY r.id",
            ([c[0] for c in coords], [c[1] for c in coords], [c[2] for c in coords]),
        ).fetchall()
    return [int(r[0]) for r in rows]


def _text(value: str | bytes | None) -> str:
    return value.decode() if isinstance(value, bytes) else (value or "")


def _matches(headers: dict[str, str], flt: ReplayFilter, ts_ms: int) -> bool:
    if flt.reasons and headers.get("rtep.reason", "") not in flt.reasons:
        return False
    stamp = ts_ms / 1000
    if flt.since and stamp < flt.since.timestamp():
        return False
    return not (flt.until and stamp >= flt.until.timestamp())


def main(argv: list[str] | None = None, prog: str = "python -m rtep.commands.dlq_replay") -> int:
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
        "--from-topic", action="store_true", help="select by the DLQ topic's letters"
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
    parser.add_argument("--chunk", type=int, default=1000, help="rows per transaction")
    parser.add_argument("--dry-run", action="store_true", help="count what would be replayed")
    args = parser.parse_args(argv)
    settings = get_settings()
    flt = ReplayFilter(tuple(args.reason), args.since, args.until, args.include_replayed)
    ids = list(ids_from_topic(settings, flt)) if args.from_topic else None
    count = replay(settings, flt, ids=ids, limit=args.limit, chunk=args.chunk,
                   dry_run=args.dry_run)  # fmt: skip
    log.info("dry run: would replay" if args.dry_run else "replay done", count=count,
             topic=settings.events_topic)  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
