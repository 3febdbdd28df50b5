"""The new rules through the running flow: their alerts reach every alert sink and the metrics."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import orjson
import redis

from rtep.core.embedded import free_port
from rtep.core.kafka_admin import ensure_topics
from tests.harness import (
    REDIS_URL,
    Stack,
    event_json,
    produce,
    read_topic,
    scrape_metric,
    stop_process,
    wait_until,
)


def test_spraying_and_a_session_change_reach_postgres_kafka_redis_and_the_metrics(
    stack: Stack,
) -> None:
    """Scenario: one IP tries 3 passwords on 6 accounts over 18 minutes (spraying's shape, never
    10 users in 5 minutes); a user logs in and their session is then used from another device.
    We expect: one password_spraying alert (subject the IP) and one session_device_change alert
    (the user) in rtep.alerts, on the alerts topic and in Redis' recent alerts; no
    credential_stuffing; rtep_alerts_by_country_total counts them (private IPs: unknown)."""
    t0 = datetime.now(UTC) - timedelta(hours=1)

    def at(seconds: float) -> str:
        return (t0 + timedelta(seconds=seconds)).isoformat()

    sprayer = "10.9.9.9"
    spray = [
        event_json("login", user=f"victim{u}", ts=at((r * 6 + u) * 60), ip=sprayer, success=False)
        for r in range(3)
        for u in range(6)
    ]
    session = [
        event_json("login", user="ann", ts=at(1100), ip="10.1.1.1", device="Firefox on Linux"),
        event_json("page_view", user="ann", ts=at(1110), device="Firefox on Linux"),
        event_json("page_view", user="ann", ts=at(1120), device="curl/8.0"),  # the stolen cookie
    ]
    topic = stack.topics["RTEP_EVENTS_TOPIC"] + ".single"  # one partition: all in time order
    ensure_topics(stack.brokers, {topic: 1})
    produce(stack.brokers, topic, spray + session)
    port = free_port()
    pipeline = stack.start_pipeline(RTEP_EVENTS_TOPIC=topic, RTEP_METRICS_PORT=str(port))
    rules = ("password_spraying", "session_device_change")
    try:
        wait_until(
            lambda: stack.scalar("SELECT count(DISTINCT rule) FROM rtep.alerts") == 2,
            timeout=90,
            what="both alerts stored",
        )
        stored = stack.query("SELECT rule, subject, event_count FROM rtep.alerts ORDER BY rule")
        assert stored == [("password_spraying", sprayer, 18), ("session_device_change", "ann", 3)]
        wait_until(
            lambda: scrape_metric(port, "rtep_alerts_by_country_total") == 2,
            timeout=30,
            what="the by-country counter",
        )
        topic = read_topic(stack.brokers, stack.topics["RTEP_ALERTS_TOPIC"])
        assert sorted({orjson.loads(r.value)["rule"] for r in topic}) == list(rules)
        client = redis.Redis.from_url(REDIS_URL, decode_responses=True)
        recent = client.lrange(f"{stack.redis_prefix}alerts:recent", 0, -1)
        assert sorted({orjson.loads(a)["rule"] for a in recent}) == list(rules)
    finally:
        stop_process(pipeline)
