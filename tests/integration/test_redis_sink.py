"""RedisSink against real Redis: the contract's keys and values, aggregation, outage catch-up."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from datetime import timedelta

import psycopg
import redis
from prometheus_client import REGISTRY

from operators.records import Alert, Event, RollupRow, Session
from rtep.core.embedded import EmbeddedBroker, free_port
from sinks.cache_writes import CacheWrites
from sinks.codec import alert_document
from sinks.redis_sink import RedisSink, RedisWriter
from sinks.store_rejects import StoreRejects
from tests.harness import REDIS_URL, provision_topics, read_topic
from tests.integration.factories import (
    T0,
    make_alert,
    make_event,
    make_session,
)
from tests.integration.private_servers import private_redis


def cached(
    events: Sequence[Event] = (),
    sessions: Sequence[Session] = (),
    alerts: Sequence[Alert] = (),
    rollups: Sequence[RollupRow] = (),
) -> list[CacheWrites]:
    """A write batch of the sink: one ``CacheWrites`` of these records."""
    return [CacheWrites(list(events), list(sessions), list(alerts), list(rollups))]


def shared_client() -> redis.Redis:
    """A client of the shared test Redis (decoded strings)."""
    return redis.Redis.from_url(REDIS_URL, decode_responses=True)


def errors() -> float:
    """Current rtep_sink_errors_total{sink="redis"}."""
    return REGISTRY.get_sample_value("rtep_sink_errors_total", {"sink": "redis"}) or 0.0


def test_keys_and_values_follow_the_contract(rprefix: str) -> None:
    part = RedisSink(REDIS_URL, prefix=rprefix, counts_ttl_seconds=600).open()
    login = make_event(10, user_id="ann", type="login", page=None, session_id="s-ann")
    view = make_event(5, user_id="ann", page="/home", session_id="s-ann")  # older than the login
    closed = make_session("s-old", ended_at=T0, ended_by="timeout")
    sessions = [make_session("s-old"), make_session("s-ann"), closed]
    part.write_batch(cached(events=[login, view], sessions=sessions))
    part.write_batch(cached(alerts=[make_alert("a1")], rollups=[RollupRow(T0, "login", 3, 2)]))

    r = shared_client()
    # The latest event by event time wins; a field it lacks (page) comes from the earlier one.
    assert r.hgetall(f"{rprefix}user:ann") == {
        "last_seen": "2026-01-05T12:00:10.000000+00:00",
        "last_type": "login",
        "last_page": "/home",
        "device": "Chrome on macOS",
        "session_id": "s-ann",
    }
    assert r.zrange(f"{rprefix}sessions:active", 0, -1, withscores=True) == [
        ("s-ann", (T0 + timedelta(seconds=30)).timestamp())
    ]
    assert [json.loads(a) for a in r.lrange(f"{rprefix}alerts:recent", 0, -1)] == [
        alert_document(make_alert("a1"))
    ]
    key = f"{rprefix}counts:login:202601051200"
    assert r.get(key) == "3"
    assert 0 < r.ttl(key) <= 600


def test_older_events_and_replays_never_move_a_user_back(rprefix: str) -> None:
    part = RedisSink(REDIS_URL, prefix=rprefix).open()
    bob = [make_event(i, user_id="bob", page=f"/p{i}") for i in (3, 9, 4)]
    part.write_batch(cached(events=bob))
    late = make_event(1, user_id="bob", page="/late")
    part.write_batch(cached(events=[late]))  # a late event, in the next batch
    part.write_batch(cached(events=bob))  # replay
    assert shared_client().hget(f"{rprefix}user:bob", "last_page") == "/p9"


def test_alerts_list_has_one_entry_per_incident_newest_first_capped(rprefix: str) -> None:
    part = RedisSink(REDIS_URL, prefix=rprefix, recent_alerts_cap=3).open()
    part.write_batch(cached(alerts=[make_alert(f"a{i}") for i in range(4)]))
    updated = make_alert("a2", event_count=9)
    part.write_batch(cached(alerts=[updated]))
    part.write_batch(cached(alerts=[updated]))  # replay of the same version
    ids = [json.loads(a) for a in shared_client().lrange(f"{rprefix}alerts:recent", 0, -1)]
    assert [a["alert_id"] for a in ids] == ["a2", "a3", "a1"]
    assert ids[0]["event_count"] == 9


def test_counts_are_overwritten_with_the_latest_total(rprefix: str) -> None:
    part = RedisSink(REDIS_URL, prefix=rprefix).open()
    part.write_batch(
        cached(rollups=[RollupRow(T0, "page_view", 4, 2), RollupRow(T0, "page_view", 6, 3)])
    )
    part.write_batch(cached(rollups=[RollupRow(T0, "page_view", 6, 3)]))
    assert shared_client().get(f"{rprefix}counts:page_view:202601051200") == "6"


def test_a_batch_is_one_write_per_key_in_one_pipeline() -> None:
    with private_redis() as server:
        part = RedisSink(server.url, prefix="rtep:").open()
        part.write_batch(cached(events=[make_event(i, user_id=f"u{i % 3}") for i in range(300)]))
        stats = server.client().info("commandstats")
        assert stats["cmdstat_evalsha"]["calls"] == 1  # one script call for all the users
        assert stats["cmdstat_hset"]["calls"] == 3  # one write per user, not per event


def test_many_users_and_sessions_are_packed_into_few_commands() -> None:
    """Scenario: one batch touches 2,500 users and 200 sessions, half of them closed, while one
    user's stored last_seen is newer. We expect: every user written but that one, in 3 script
    calls (1,000 users each at most), one ZADD and one ZREM."""
    with private_redis() as server:
        client = server.client()
        client.hset("rtep:user:u7", mapping={"last_seen": "2027-01-01T00:00:00.000000+00:00"})
        client.config_resetstat()
        part = RedisSink(server.url, prefix="rtep:").open()
        sessions = [make_session(f"s{i}") for i in range(200)]
        sessions += [make_session(f"s{i}", ended_at=T0, ended_by="logout") for i in range(100)]
        part.write_batch(cached(events=[make_event(i, user_id=f"u{i}") for i in range(2500)],
                                sessions=sessions))  # fmt: skip
        stats = client.info("commandstats")
        assert stats["cmdstat_evalsha"]["calls"] == 3
        assert stats["cmdstat_hset"]["calls"] == 2499
        assert (stats["cmdstat_zadd"]["calls"], stats["cmdstat_zrem"]["calls"]) == (1, 1)
        assert client.hget("rtep:user:u2499", "last_seen") == "2026-01-05T12:41:39.000000+00:00"
        assert client.hget("rtep:user:u7", "last_type") is None
        assert client.zcard("rtep:sessions:active") == 100


def test_outage_does_not_block_and_is_caught_up_afterwards() -> None:
    """Scenario: Redis dies between batches and comes back empty.
    We expect: writes during the outage return at once and are counted as errors; the first
    batch after it writes the latest value of every key touched during the outage."""
    with private_redis() as server:
        part: RedisWriter = RedisSink(server.url, prefix="rtep:").open()
        part.write_batch(cached(events=[make_event(0, user_id="before")]))
        server.stop()

        misses = errors()
        started = time.monotonic()
        part.write_batch(
            cached(events=[make_event(1, user_id="ann")], sessions=[make_session("s1")])
        )
        part.write_batch(cached(events=[make_event(2, user_id="ann", page="/two")],
                                alerts=[make_alert("a1")]))  # fmt: skip
        part.write_batch(cached(rollups=[RollupRow(T0, "login", 5, 4)]))
        assert time.monotonic() - started < 2.0, "a Redis outage must not block the pipeline"
        assert errors() - misses == 3
        assert part.dirty == 4

        server.start()
        part.write_batch(cached(events=[make_event(3, user_id="cid")]))
        assert part.dirty == 0
        r = server.client()
        assert r.hget("rtep:user:ann", "last_page") == "/two"
        assert r.zscore("rtep:sessions:active", "s1") is not None
        assert len(r.lrange("rtep:alerts:recent", 0, -1)) == 1
        assert r.get("rtep:counts:login:202601051200") == "5"
        assert r.exists("rtep:user:cid")
        assert not r.exists("rtep:user:before")  # written before the crash: lost with Redis


def test_catch_up_map_is_bounded() -> None:
    """Scenario: a long outage touches more keys than the cap.
    We expect: only the most recently updated ``dirty_cap`` keys are kept and written later."""
    with private_redis() as server:
        part: RedisWriter = RedisSink(
            server.url, prefix="rtep:", dirty_cap=5, retry_interval_seconds=0
        ).open()
        server.stop()
        for i in range(12):
            part.write_batch(cached(events=[make_event(i, user_id=f"u{i}")]))
        assert part.dirty == 5
        server.start()
        part.write_batch([])
        part.write_batch(cached(events=[make_event(99, user_id="u99")]))
        users = sorted(k.split(":")[-1] for k in server.client().keys("rtep:user:*"))
        assert users == ["u10", "u11", "u7", "u8", "u9", "u99"]


def test_close_writes_what_is_pending() -> None:
    """At the end of finite input, keys kept during an outage get one more chance."""
    with private_redis() as server:
        part: RedisWriter = RedisSink(server.url, prefix="rtep:").open()
        server.stop()
        part.write_batch(cached(events=[make_event(1, user_id="ann")]))
        server.start()
        part.close()
        assert server.client().hget("rtep:user:ann", "last_page") == "/p/1"


def test_slow_failures_are_spaced_out() -> None:
    """Scenario: Redis hangs (commands time out) instead of refusing connections.
    We expect: after one timed-out attempt, batches within ``retry_interval_seconds`` are only
    kept for catch-up (no attempt, no wait), so a hung Redis cannot slow the pipeline down."""
    with private_redis() as server:
        part: RedisWriter = RedisSink(
            server.url, prefix="rtep:", socket_timeout=0.2, retry_interval_seconds=60
        ).open()
        part.write_batch(cached(events=[make_event(0)]))
        server.client().client_pause(5000)
        misses = errors()
        part.write_batch(cached(events=[make_event(1)]))  # times out after 0.2 s
        started = time.monotonic()
        for i in range(2, 50):
            part.write_batch(cached(events=[make_event(i, user_id=f"x{i}")]))
        assert time.monotonic() - started < 0.5
        assert errors() - misses == 1
        assert part.dirty > 40


NOWHERE = StoreRejects("postgresql://127.0.0.1:1/none", "127.0.0.1:1", "unused")
"""A dead-letter target for tests that must not produce any (opened only on a refused write)."""


def test_every_key_family_has_a_ttl(rprefix: str) -> None:
    """Redis memory is bounded by TTLs: user hashes, the active-sessions set and the recent-alerts
    list get ``key_ttl_seconds`` (renewed at each write), counts their own."""
    part = RedisSink(
        REDIS_URL, prefix=rprefix, key_ttl_seconds=3600, counts_ttl_seconds=600, rejects=NOWHERE
    ).open()
    part.write_batch(cached([make_event(1, user_id="ann")], [make_session("s1")], [make_alert("a1")],
                            [RollupRow(T0, "login", 5, 4)]))  # fmt: skip
    client = shared_client()
    keys = list(client.scan_iter(match=rprefix + "*"))
    assert len(keys) == 4
    ttls = {k.removeprefix(rprefix).split(":")[0]: client.ttl(k) for k in keys}
    assert 3500 < ttls["user"] <= 3600 and 3500 < ttls["sessions"] <= 3600
    assert 3500 < ttls["alerts"] <= 3600 and 500 < ttls["counts"] <= 600


def test_a_full_or_read_only_redis_is_an_outage_of_the_cache_and_is_caught_up() -> None:
    """Scenario: a private Redis at ``maxmemory`` with ``noeviction`` (every write refused with
    OOM), then raised; then switched to a read-only replica (READONLY), then promoted back.

    We expect: no write_batch raises (these used to kill the flow), each failed write is
    counted, the writes are kept and written once Redis accepts them again."""
    with private_redis() as server:
        admin = server.client()
        part: RedisWriter = RedisSink(server.url, prefix="rtep:", rejects=NOWHERE).open()
        admin.config_set("maxmemory-policy", "noeviction")
        admin.config_set("maxmemory", "2mb")
        filler = 0
        try:
            while True:
                admin.set(f"fill{filler}", "x" * 10_000)
                filler += 1
        except redis.exceptions.OutOfMemoryError:
            pass
        misses = errors()
        part.write_batch(
            cached(events=[make_event(1, user_id="ann")], sessions=[make_session("s1")])
        )
        part.write_batch(cached(events=[make_event(2, user_id="ann", page="/two")],
                                alerts=[make_alert("a1")]))  # fmt: skip
        assert errors() - misses == 2
        assert part.dirty == 3
        admin.config_set("maxmemory", "0")
        part.write_batch(cached(events=[make_event(3, user_id="cid")]))
        assert part.dirty == 0
        assert admin.hget("rtep:user:ann", "last_page") == "/two"
        assert admin.zscore("rtep:sessions:active", "s1") is not None

        admin.replicaof("127.0.0.1", str(free_port()))  # a master that is not there: read-only
        misses = errors()
        part.write_batch(cached(events=[make_event(4, user_id="dan")]))
        assert errors() - misses == 1
        assert part.dirty == 1
        admin.replicaof("NO", "ONE")
        part.write_batch(cached(events=[make_event(5, user_id="eve")]))
        assert part.dirty == 0
        assert admin.exists("rtep:user:dan") and admin.exists("rtep:user:eve")


def test_a_key_of_another_type_is_dead_lettered_and_the_rest_written(
    rprefix: str, database: str, broker: EmbeddedBroker
) -> None:
    """Scenario: someone stored strings at a user's hash key and at the recent-alerts list key.

    We expect (WRONGTYPE is the data, not an outage): the other users and the session are
    written; the refused user and alert writes are in rtep.rejected_events and on the DLQ topic
    with reason store_rejected; nothing is kept pending (it would fail again for ever)."""
    topics = provision_topics(broker.bootstrap)
    rejects = StoreRejects(database, broker.bootstrap, topics["RTEP_DLQ_TOPIC"])
    client = shared_client()
    client.set(f"{rprefix}user:bad", "not a hash")
    client.set(f"{rprefix}alerts:recent", "not a list")
    part = RedisSink(REDIS_URL, prefix=rprefix, rejects=rejects).open()
    part.write_batch(cached(events=[make_event(1, user_id="bad"), make_event(2, user_id="good")],
                            sessions=[make_session("s1")], alerts=[make_alert("a1")]))  # fmt: skip
    assert part.dirty == 0
    assert client.hget(f"{rprefix}user:good", "last_page") == "/p/2"
    assert client.zscore(f"{rprefix}sessions:active", "s1") is not None
    with psycopg.connect(database) as conn:
        rows = conn.execute(
            "SELECT reason, source_topic, detail, raw FROM rtep.rejected_events ORDER BY detail"
        ).fetchall()
    assert [(r[0], r[1]) for r in rows] == [("store_rejected", "redis")] * 2
    assert "alert write" in rows[0][2] and "user write of 'bad'" in rows[1][2]
    assert all("WRONGTYPE" in r[2] for r in rows)
    assert json.loads(bytes(rows[1][3]))["key"] == "bad"
    letters = read_topic(broker.bootstrap, topics["RTEP_DLQ_TOPIC"])
    assert sorted(r.value for r in letters) == sorted(bytes(r[3]) for r in rows)
