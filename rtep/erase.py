"""GDPR erasure of one user: ``python -m rtep.erase --user USER_ID``.

Deletes the user's rows (events, sessions, alerts whose subject is the user) in one transaction
and their Redis keys (user hash, active sessions, recent alerts about them), then logs the erasure
with counts and a hash of the user id (the log itself must not keep the identifier).

Not covered, by design (documented in docs/guarantees.md): messages still in Kafka topics until their
retention expires, and ``rtep.rejected_events`` raw bytes (unparseable by definition, so not
attributable to a user reliably); state held in the running dataflow for a user active at that
moment is rewritten to the stores if the user sends more events.
"""

from __future__ import annotations

import hashlib
import sys

import orjson
import psycopg
import redis

from rtep.cli import command_parser
from rtep.logs import get_logger
from rtep.settings import Settings, get_settings, settings_help

log = get_logger("rtep.erase")


def erase_user(settings: Settings, user_id: str) -> dict[str, int]:
    """Delete everything stored about ``user_id``; return counts per store."""
    with psycopg.connect(settings.database_url.get_secret_value()) as conn, conn.transaction():
        sessions = [
            r[0]
            for r in conn.execute(
                "DELETE FROM rtep.sessions WHERE user_id = %s RETURNING session_id", (user_id,)
            ).fetchall()
        ]
        events = conn.execute("DELETE FROM rtep.events WHERE user_id = %s", (user_id,)).rowcount
        alerts = conn.execute(
            "DELETE FROM rtep.alerts WHERE subject_type = 'user' AND subject = %s", (user_id,)
        ).rowcount
    client = redis.Redis.from_url(settings.redis_url.get_secret_value())
    try:
        keys = client.delete(settings.redis_key("user", user_id))
        if sessions:
            keys += client.zrem(settings.redis_key("sessions", "active"), *sessions)
        recent_key = settings.redis_key("alerts", "recent")
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
        "redis_keys": keys,
        "redis_recent_alerts": removed,
    }


def main(argv: list[str] | None = None, prog: str = "python -m rtep.erase") -> int:
    """CLI entry point."""
    parser = command_parser(
        prog,
        __doc__,
        settings_help("database_url", "redis_url", "redis_prefix"),
        f"{prog} --user user-42",
    )
    parser.add_argument("--user", required=True, help="the userId to erase")
    args = parser.parse_args(argv)
    counts = erase_user(get_settings(), args.user)
    digest = hashlib.sha256(args.user.encode()).hexdigest()[:16]
    log.info("user erased", user_sha256=digest, **counts)
    return 0


if __name__ == "__main__":
    sys.exit(main())
