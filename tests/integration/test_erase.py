"""GDPR erase removes one user's rows and Redis keys, and nobody else's."""

from __future__ import annotations

import orjson
import psycopg
import pytest
import redis

from operators.records import RedisKeys
from rtep.commands.erase import erase_user
from rtep.core.settings import Settings
from tests.harness import REDIS_URL

ROWS = """
INSERT INTO rtep.events (event_id, type, ts, user_id, session_id, payload, received_at)
VALUES (gen_random_uuid(), 'login', now(), %(u)s, %(s)s, '{}', now());
INSERT INTO rtep.sessions (session_id, user_id, started_at, last_event_at, event_count, page_views,
                           duration_seconds)
VALUES (%(s)s, %(u)s, now(), now(), 1, 0, 0);
INSERT INTO rtep.alerts (alert_id, rule, severity, subject_type, subject, window_start, window_end,
                         event_count, created_at)
VALUES (%(s)s, 'failed_login_burst', 'warning', 'user', %(u)s, now(), now(), 5, now());
INSERT INTO rtep.rejected_events (received_at, reason, detail, raw, source_topic, source_partition,
                                  source_offset)
VALUES (now(), 'missing_field', 'd', %(raw)s, 't', 0, length(%(s)s))
"""


@pytest.mark.parametrize("victim", ["alice", "o'brien; DROP TABLE rtep.events; --"])
def test_erase_user(database: str, rprefix: str, victim: str) -> None:
    settings = Settings(database_url=database, redis_url=REDIS_URL, redis_prefix=rprefix)  # type: ignore[arg-type]
    with psycopg.connect(database) as conn:
        for user, session in ((victim, "s-victim"), ("bob", "s-bob")):
            for statement in ROWS.strip().split(";\n"):
                raw = orjson.dumps({"type": "login", "payload": {"userId": user}})
                conn.execute(statement, {"u": user, "s": session, "raw": raw})  # type: ignore[call-overload]
    client = redis.Redis.from_url(REDIS_URL)
    for user, session in ((victim, "s-victim"), ("bob", "s-bob")):
        client.hset(RedisKeys(settings.redis_prefix).user(user), mapping={"last_type": "login"})
        client.zadd(RedisKeys(settings.redis_prefix).sessions_active, {session: 1.0})
        client.lpush(
            RedisKeys(settings.redis_prefix).alerts_recent,
            orjson.dumps({"subject_type": "user", "subject": user, "rule": "failed_login_burst"}),
        )

    counts = erase_user(settings, victim)

    assert counts == {
        "events": 1,
        "sessions": 1,
        "alerts": 1,
        "rejected": 1,
        "redis_keys": 2,
        "redis_recent_alerts": 1,
    }
    with psycopg.connect(database) as conn:
        for table, column in (
            ("events", "user_id"),
            ("sessions", "user_id"),
            ("alerts", "subject"),
            ("rejected_events", "convert_from(raw, 'UTF8')::jsonb->'payload'->>'userId'"),
        ):
            users = {r[0] for r in conn.execute(f"SELECT {column} FROM rtep.{table}")}  # type: ignore[call-overload]
            assert users == {"bob"}, table
    assert not client.exists(RedisKeys(settings.redis_prefix).user(victim))
    assert client.exists(RedisKeys(settings.redis_prefix).user("bob"))
    assert client.zrange(RedisKeys(settings.redis_prefix).sessions_active, 0, -1) == [b"s-bob"]
    recent = [
        orjson.loads(x)["subject"]
        for x in client.lrange(RedisKeys(settings.redis_prefix).alerts_recent, 0, -1)
    ]
    assert recent == ["bob"]
