"""Redis stopped mid-stream: PostgreSQL still gets everything; Redis catches up as documented."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta

import orjson
import pytest

from rtep.core.embedded import free_port
from tests.faults.support import (
    assert_conservation,
    assert_redis_caught_up,
    counts,
    metric,
    produce_messages,
    record_figures,
    wait_all_stored,
)
from tests.faults.workload import BASE, VALID, Message, Workload
from tests.harness import Stack, event_json, stop_process, wait_until
from tests.integration.private_servers import PrivateRedis, private_redis


@pytest.fixture
def redis_server() -> Iterator[PrivateRedis]:
    """A private redis-server the scenario may stop (no persistence: a stop loses its data)."""
    with private_redis() as server:
        yield server


def phase(name: str, users: int, per_user: int, start: datetime) -> list[Message]:
    """``per_user`` page views for each of ``users`` users named ``{name}{i}``, in time order."""
    out = []
    for k in range(per_user):
        for i in range(users):
            ts = start + timedelta(seconds=10 * k + i / 100)
            value = event_json("page_view", user=f"{name}{i}", ts=ts.isoformat(), page=f"/p{k}")
            event_id = orjson.loads(value)["eventId"]
            out.append(Message(f"{name}{i}".encode(), value, VALID, event_id))
    return out


def test_redis_down_postgres_gets_everything_and_redis_catches_up(
    stack: Stack, redis_server: PrivateRedis
) -> None:
    """Scenario: users ``before*`` are written while Redis is up; Redis is killed (it loses its
    data, like a crash without persistence); users ``during*`` are sent while it is down; Redis
    comes back empty and users ``after*`` are sent.

    We expect what docs/sinks.md ("Redis catch-up semantics") promises: PostgreSQL stores every
    event while Redis is down (the pipeline never blocks on Redis), the misses are counted in
    rtep_sink_errors_total{sink="redis"}, and after Redis returns every key touched during the
    outage is written with its latest value (user hash = the user's latest event in
    PostgreSQL, open sessions in sessions:active with their last activity); keys written only
    before the outage are gone (Redis lost them; only the outage window is replayed).
    Conservation holds exactly in PostgreSQL.
    """
    prefix = stack.redis_prefix
    client = redis_server.client()
    before = phase("before", 20, 3, BASE)
    during = phase("during", 30, 4, BASE + timedelta(minutes=5))
    after = phase("after", 10, 2, BASE + timedelta(minutes=10))
    workload = Workload([*before, *during, *after])
    topic = stack.topics["RTEP_EVENTS_TOPIC"]
    port = free_port()
    proc = stack.start_pipeline(RTEP_REDIS_URL=redis_server.url, RTEP_METRICS_PORT=str(port))
    try:
        produce_messages(stack.brokers, topic, before)
        wait_until(
            lambda: all(client.exists(f"{prefix}user:before{i}") for i in range(20)),
            timeout=60,
            what="the Redis sink to write the users sent before the outage",
        )
        redis_server.stop()
        produce_messages(stack.brokers, topic, during)
        wait_until(
            lambda: counts(stack)[0] == len(before) + len(during),
            timeout=60,
            what="PostgreSQL to store every event sent while Redis is down",
        )
        wait_until(
            lambda: metric(port, "rtep_sink_errors_total", sink="redis") > 0,
            timeout=30,
            what="the Redis misses to be counted",
        )
        misses = metric(port, "rtep_sink_errors_total", sink="redis")
        assert metric(port, "rtep_sink_errors_total", sink="events") == 0
        redis_server.start()
        client = redis_server.client()
        produce_messages(stack.brokers, topic, after)
        wait_all_stored(stack, workload, proc)
        wait_until(
            lambda: all(client.exists(f"{prefix}user:after{i}") for i in range(10)),
            timeout=60,
            what="Redis writes to resume",
        )
    finally:
        assert stop_process(proc) == 0, stack.pipeline_log()

    caught_up = assert_redis_caught_up(stack, client, "during%", "after%")
    assert caught_up == 40
    assert not any(client.exists(f"{prefix}user:before{i}") for i in range(20))
    result = assert_conservation(stack, workload)
    record_figures(
        "redis_outage", produced=result.produced, stored=result.stored, redis_misses=misses,
        users_caught_up=caught_up, events_lost=0,
    )  # fmt: skip
