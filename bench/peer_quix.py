"""The peer: the same checks and durable store built the way a Quix Streams user would.

``<quix venv>/bin/python -m bench.peer_quix --brokers B --topic T --dsn D``. A Quix Streams
``Application`` (consumer group) → ``bench.checks`` → Quix's built-in
``quixstreams.sinks.community.postgresql.PostgreSQLSink`` into ``rtep.events`` with
``ON CONFLICT DO NOTHING``. Quix flushes sinks and commits offsets together at each checkpoint
(``commit_interval``, 1 s here rather than the default 5 s, for a fair latency comparison).

Runs in its own virtualenv (``bench.peer_env``): quixstreams pins older confluent-kafka and
pydantic than rtep uses, so it must not share rtep's.
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from quixstreams import Application
from quixstreams.sinks.community.postgresql import PostgreSQLSink

from bench.checks import check


def _checked(value: bytes) -> dict[str, Any] | None:
    return check(value, datetime.now(UTC))


def run(
    brokers: str, topic: str, dsn: str, group: str, commit_interval: float, fetch_wait_ms: int
) -> None:
    """Build the Quix application and run it until SIGINT/SIGTERM."""
    url = urlsplit(dsn)
    app = Application(
        broker_address=brokers,
        consumer_group=group,
        auto_offset_reset="earliest",
        commit_interval=commit_interval,
        loglevel="WARNING",
        auto_create_topics=False,
        consumer_extra_config={"fetch.wait.max.ms": fetch_wait_ms},
    )
    sink = PostgreSQLSink(
        host=url.hostname or "127.0.0.1",
        port=url.port or 5432,
        dbname=url.path.lstrip("/"),
        user=url.username or "postgres",
        password=url.password or "",
        table_name="events",
        schema_name="rtep",
        schema_auto_update=False,
        on_conflict_do_nothing=True,
        include_metadata=False,
    )
    sdf = app.dataframe(app.topic(topic, value_deserializer="bytes"))
    sdf = sdf.apply(_checked).filter(lambda row: row is not None)
    sdf.sink(sink)
    app.run()


def main() -> None:
    """Parse arguments and run."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--brokers", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--dsn", required=True)
    parser.add_argument("--group", default="bench-quix")
    parser.add_argument("--commit-interval", type=float, default=1.0)
    parser.add_argument("--fetch-wait-ms", type=int, default=500)
    args = parser.parse_args()
    run(args.brokers, args.topic, args.dsn, args.group, args.commit_interval, args.fetch_wait_ms)


if __name__ == "__main__":
    main()
