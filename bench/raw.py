"""The raw baseline: the least a Python Kafka → PostgreSQL consumer can do, as fast as it can.

``python -m bench.raw --brokers B --topic T --dsn D``: confluent-kafka consumer group → orjson →
``bench.checks`` → COPY into a TEMP staging table + ``INSERT … ON CONFLICT DO NOTHING`` into
``rtep.events``, one transaction per batch, Kafka offsets committed synchronously after each DB
commit (at-least-once, idempotent table). Runs until SIGINT/SIGTERM.
"""

from __future__ import annotations

import argparse
import signal
from datetime import UTC, datetime

import psycopg
from confluent_kafka import OFFSET_STORED, Consumer, TopicPartition

from bench.checks import COLUMNS, check

_COLS = ", ".join(COLUMNS)
_STAGING = (
    f"CREATE TEMP TABLE stg ON COMMIT DELETE ROWS AS SELECT {_COLS} FROM rtep.events WITH NO DATA"
)
_COPY = f"COPY stg ({_COLS}) FROM STDIN"
_INSERT = f"INSERT INTO rtep.events ({_COLS}) SELECT {_COLS} FROM stg ON CONFLICT DO NOTHING"


def run(brokers: str, topic: str, dsn: str, group: str, batch: int, fetch_wait_ms: int) -> None:
    """Consume, check, store, commit: until a stop signal."""
    stop = False

    def request_stop(*_: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    consumer = Consumer(
        {
            "bootstrap.servers": brokers,
            "group.id": group,
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "fetch.wait.max.ms": fetch_wait_ms,
        }  # assigned, not subscribed: no group rebalance wait; commits still go to the group
    )
    partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
    consumer.assign([TopicPartition(topic, p, OFFSET_STORED) for p in partitions])
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(_STAGING)
        while not stop:
            messages = consumer.consume(batch, timeout=0.2)
            if not messages:
                continue
            now = datetime.now(UTC)
            rows = []
            for msg in messages:
                if msg.error() is None and (row := check(msg.value(), now)) is not None:
                    rows.append(tuple(row.values()))
            if rows:
                with conn.transaction(), conn.cursor() as cur:
                    with cur.copy(_COPY) as copy:
                        for values in rows:
                            copy.write_row(values)
                    cur.execute(_INSERT)
            consumer.commit(asynchronous=False)
    consumer.close()


def main() -> None:
    """Parse arguments and run."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--brokers", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--dsn", required=True)
    parser.add_argument("--group", default="bench-raw")
    parser.add_argument("--batch", type=int, default=5000)
    parser.add_argument("--fetch-wait-ms", type=int, default=500)
    args = parser.parse_args()
    run(args.brokers, args.topic, args.dsn, args.group, args.batch, args.fetch_wait_ms)


if __name__ == "__main__":
    main()
