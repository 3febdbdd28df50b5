"""GDPR erasure of one user: ``python -m rtep.commands.erase --user USER_ID``.

Two steps. First an **erase request** is produced into the events topic with the user's key
(header ``rtep.erase``), so it sits after every event of the user already sent, in the same
partition: the running dataflow forgets the user in every stateful step when it reaches it (an
open session is dropped, not closed and written later), and each sink deletes the user's rows and
keys in the order of its own queue (a write queued before it cannot land after it). A crash replay
re-reads the request after the events it follows: what a replay writes again is erased again
(operators/erasure.py). Then the rows already stored are deleted now (events, sessions, alerts
about the user, rejected messages carrying the userId) with the Redis keys, and the erasure is
logged with counts and a hash of the user id (the log itself must not keep the identifier).

What stays, and for how long: docs/erasure.md (Kafka retention, recovery snapshots).
"""

from __future__ import annotations

import hashlib
import sys
from typing import Any

import orjson
import psycopg
import redis
from confluent_kafka import Producer

from operators.erasure import ERASE_HEADER
from operators.records import RedisKeys
from rtep.commands.cli import command_parser
from rtep.core.logs import get_logger
from rtep.core.settings import Settings, get_settings, settings_help
from sinks.pg_spec import TableSpec
from sinks.pg_tables import ALERTS, EVENTS, REJECTED, SESSIONS

log = get_logger("rtep.commands.erase")


def request_erasure(settings: Settings, user_id: str) -> None:
    """Produce the erase request, keyed by the user, into the events topic (acknowledged)."""
    producer = Producer(
        {"bootstrap.servers": settings.kafka_brokers, "acks": "all", "enable.idempotence": True}
        | settings.kafka_extra_config
    )
    value = orjson.dumps({"erase": user_id})
    producer.produce(settings.events_topic, value, user_id.encode(),
                     headers=[(ERASE_HEADER, user_id.encode())])  # fmt: skip
    if producer.flush(60):
        raise RuntimeError(
            "the erase request was not acknowledged by the brokers in RTEP_KAFKA_BROKERS: "
            "nothing was erased; run the command again once they are up"
        )


def _delete(
    conn: psycopg.Connection[Any], spec: TableSpec[Any], user_id: str, returning: str = ""
) -> psycopg.Cursor[Any]:
    """Run the statement ``spec``'s sink runs on an erasure (one statement per table, wherever
    the user is erased), with an optional ``RETURNING`` clause."""
    if spec.erase is None:
        raise ValueError(f"rtep.{spec.table} has no erase statement")
    statement, params = spec.erase(user_id)
    return conn.execute(statement + returning, params)


def erase_user(settings: Settings, user_id: str) -> dict[str, int]:
    """Delete everything stored about ``user_id``; return counts per store."""
    with psycopg.connect(settings.database_url.get_secret_value()) as conn, conn.transaction():
        sessions = [r[0] for r in _delete(conn, SESSIONS, user_id, " RETURNING session_id")]
        events = _delete(conn, EVENTS, user_id).rowcount
        alerts = _delete(conn, ALERTS, user_id).rowcount
        rejected = _delete(conn, REJECTED, user_id).rowcount
    client = redis.Redis.from_url(settings.redis_url.get_secret_value())
    layout = RedisKeys(settings.redis_prefix)
    try:
        keys = client.delete(layout.user(user_id))
        if sessions:
            keys += client.zrem(layout.sessions_active, *sessions)
        recent_key = layout.alerts_recent
        removed = 0
        for raw in client.lrange(recent_key, 0, -1):
            try:
                doc = orjson.loads(raw)
            except orjson.JSONDecodeError:
                continue
            if doc.get("subject_type") == "user" and doc.get("subject") == user_id:
                removed += client.lrem(recent_key, 0, raw)  # type: ignore[arg-type]
    finally:
        client.close()
    return {
        "events": events,
        "sessions": len(sessions),
        "alerts": alerts,
        "rejected": rejected,
        "redis_keys": keys,
        "redis_recent_alerts": removed,
    }


def main(argv: list[str] | None = None, prog: str = "python -m rtep.commands.erase") -> int:
    """CLI entry point."""
    parser = command_parser(
        prog,
        __doc__,
        settings_help(
            "database_url", "redis_url", "redis_prefix", "kafka_brokers", "events_topic"
        ),
        f"{prog} --user user-42",
    )
    parser.add_argument("--user", required=True, help="the userId to erase")
    args = parser.parse_args(argv)
    settings = get_settings()
    request_erasure(settings, args.user)
    counts = erase_user(settings, args.user)
    digest = hashlib.sha256(args.user.encode()).hexdigest()[:16]
    log.info("user erased", user_sha256=digest, **counts)
    return 0


if __name__ == "__main__":
    sys.exit(main())
