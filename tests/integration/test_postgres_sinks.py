"""PostgreSQL sinks against the real server: idempotence, overwrite rules, byte-exact raw bytes."""

from __future__ import annotations

import json
import random
import time
from dataclasses import replace
from datetime import timedelta
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client import REGISTRY

from operators.records import Reason, RollupRow
from rtep.core.embedded import EmbeddedBroker
from sinks.codec import safe_inet
from sinks.pg_writer import Timeouts
from sinks.postgres import AlertsSink, EventsSink, RejectedSink, RollupSink, SessionsSink
from sinks.retry import BackendUnavailable, RetryPolicy
from sinks.store_rejects import StoreRejects
from tests.harness import provision_topics, read_topic
from tests.integration.factories import (
    T0,
    make_alert,
    make_event,
    make_rejection,
    make_session,
)

EVENTS_SQL = "SELECT * FROM rtep.events ORDER BY event_id"


def query(dsn: str, sql: str) -> list[tuple[Any, ...]]:
    """All rows of ``sql``."""
    with psycopg.connect(dsn) as conn:
        return conn.execute(sql).fetchall()  # type: ignore[arg-type]


def stored(sink: str) -> float:
    """Current value of rtep_events_stored_total{sink}."""
    return REGISTRY.get_sample_value("rtep_events_stored_total", {"sink": sink}) or 0.0


def latencies() -> float:
    """Observations of rtep_event_latency_seconds so far."""
    return REGISTRY.get_sample_value("rtep_event_latency_seconds_count") or 0.0


def test_events_replayed_batches_change_nothing(database: str) -> None:
    part = EventsSink(database).open()
    batch = [make_event(i) for i in range(50)]
    before, observed = stored("events"), latencies()
    part.write_batch(batch)
    assert stored("events") - before == 50
    first = query(database, EVENTS_SQL)
    assert len(first) == 50

    part.write_batch(batch)  # a replay
    changed = [replace(e, payload={**e.payload, "changed": True}) for e in batch[:10]]
    part.write_batch(changed + batch[5:20] + changed)  # duplicates inside one batch
    part.close()

    assert query(database, EVENTS_SQL) == first
    assert stored("events") - before == 50
    assert latencies() - observed == 50  # one latency per stored event, none for the replays


def test_events_duplicates_in_one_batch_keep_the_last(database: str) -> None:
    part = EventsSink(database).open()
    first, last = make_event(1, page="/first"), make_event(1, page="/last")
    part.write_batch([first, make_event(2), last])
    assert query(database, "SELECT event_id::text, page FROM rtep.events ORDER BY 1") == [
        (first.event_id, "/last"),
        (make_event(2).event_id, "/p/2"),
    ]


def test_events_row_matches_the_event(database: str) -> None:
    event = make_event(3, payload={"userId": "u3", "page": "/x", "extra": {"n": [1, 2.5, None]}})
    EventsSink(database).open().write_batch([event])
    ((row),) = query(
        database,
        "SELECT event_id::text, type, ts, user_id, session_id, host(ip), device, browser, os,"
        " device_class, page, payload, late, received_at, stored_at >= received_at"
        " FROM rtep.events",
    )
    assert row == (
        event.event_id, "page_view", event.ts, event.user_id, event.session_id, "10.0.0.1",
        "Chrome on macOS", "Chrome", "macOS", "desktop", event.page, event.payload, False,
        event.received_at, True,
    )  # fmt: skip


def test_invalid_ip_is_stored_null_and_kept_in_payload(database: str) -> None:
    in_payload = make_event(1, ip="999.1.1.1", payload={"userId": "u1", "ip": "999.1.1.1"})
    not_in_payload = make_event(2, ip="fe80::1%eth0", payload={"userId": "u2"})
    valid = make_event(3, ip="2001:db8::1")
    EventsSink(database).open().write_batch([in_payload, not_in_payload, valid])
    rows = query(database, "SELECT host(ip), payload->>'ip' FROM rtep.events ORDER BY event_id")
    assert rows == [(None, "999.1.1.1"), (None, "fe80::1%eth0"), ("2001:db8::1", None)]


@settings(max_examples=15, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    ids=st.lists(st.integers(0, 40), min_size=1, max_size=120),
    cuts=st.lists(st.integers(1, 30), min_size=1, max_size=8),
    replay=st.integers(0, 3),
)
def test_any_batching_with_replays_stores_each_event_once(
    database: str, ids: list[int], cuts: list[int], replay: int
) -> None:
    """Conservation: whatever the batching and replays, stored ids = distinct ids sent."""
    with psycopg.connect(database, autocommit=True) as conn:
        conn.execute("TRUNCATE rtep.events")
    part = EventsSink(database).open()
    events = [make_event(i) for i in ids]
    batches, start = [], 0
    for cut in cuts * 20:
        if start >= len(events):
            break
        batches.append(events[start : start + cut])
        start += cut
    for batch in batches + batches[:replay]:
        part.write_batch(batch)
    part.close()
    got = {r[0] for r in query(database, "SELECT event_id::text FROM rtep.events")}
    assert got == {e.event_id for e in events}


def test_rejected_raw_bytes_round_trip_exactly_once(database: str) -> None:
    raws = [
        bytes(range(256)),
        b"\xff\xfe not utf-8 \x00 with NUL",
        b"",
        b'{"eventId": "x"}',
        "h\u00e9llo \u2603".encode(),
    ]
    batch = [make_rejection(i, raw) for i, raw in enumerate(raws)]
    batch.append(make_rejection(1, b"same offset: last one wins", Reason.INVALID_UTF8))
    part = RejectedSink(database).open()
    part.write_batch(batch)
    sql = (
        "SELECT source_offset, raw, reason, detail, source_topic, source_partition"
        " FROM rtep.rejected_events ORDER BY source_offset"
    )
    first = query(database, sql)
    assert [bytes(r[1]) for r in first] == [
        raws[0],
        b"same offset: last one wins",
        raws[2],
        raws[3],
        raws[4],
    ]
    assert first[1][2:] == ("invalid_utf8", "bad message at 1", "t.events", 0)
    part.write_batch(batch)  # replay
    part.write_batch([make_rejection(0, b"replayed offset, different bytes")])
    assert query(database, sql) == first


def test_rejected_detail_with_nul_is_stored(database: str) -> None:
    rejection = replace(make_rejection(7, b"\x00"), detail="nul \x00 inside")
    RejectedSink(database).open().write_batch([rejection])
    assert query(database, "SELECT detail FROM rtep.rejected_events") == [("nul \ufffd inside",)]


def test_sessions_are_overwritten_by_the_latest_version(database: str) -> None:
    part = SessionsSink(database).open()
    opened = make_session("s1")
    closed = make_session(
        "s1", ended_at=T0 + timedelta(minutes=5), ended_by="logout", event_count=9,
        exit_page="/bye", duration_seconds=300.0, ip="bad-ip",
    )  # fmt: skip
    part.write_batch([opened, make_session("s2")])
    before = stored("sessions")
    part.write_batch([opened, closed])  # both versions in one batch: the last wins
    part.write_batch([closed])  # a replay: unchanged, not counted
    assert stored("sessions") - before == 1
    rows = query(
        database,
        "SELECT session_id, ended_at, ended_by, event_count, exit_page, duration_seconds, host(ip)"
        " FROM rtep.sessions ORDER BY session_id",
    )
    assert rows == [
        ("s1", T0 + timedelta(minutes=5), "logout", 9, "/bye", 300.0, None),
        ("s2", None, None, 2, "/cart", 30.0, "10.0.0.1"),
    ]


def test_alerts_are_updated_but_keep_their_creation_time(database: str) -> None:
    part = AlertsSink(database).open()
    first = make_alert("a1")
    update = make_alert(
        "a1", event_count=8, window_end=T0 + timedelta(seconds=55),
        details={"ips": ["10.0.0.1", "10.0.0.2"]}, created_at=T0 + timedelta(minutes=9),
    )  # fmt: skip
    part.write_batch([first])
    part.write_batch([update])
    part.write_batch([update])
    rows = query(
        database, "SELECT alert_id, event_count, window_end, details, created_at FROM rtep.alerts"
    )
    assert rows == [("a1", 8, T0 + timedelta(seconds=55), update.details, first.created_at)]
    assert json.loads(json.dumps(rows[0][3])) == {"ips": ["10.0.0.1", "10.0.0.2"]}


def test_rollups_overwrite_totals_and_never_add(database: str) -> None:
    part = RollupSink(database).open()
    minute = T0
    part.write_batch([RollupRow(minute, "login", 3, 2), RollupRow(minute, "page_view", 5, 1)])
    part.write_batch([RollupRow(minute, "login", 4, 3), RollupRow(minute, "login", 7, 4)])
    part.write_batch([RollupRow(minute, "login", 7, 4)])  # replay
    rows = query(
        database, "SELECT type, events, unique_users FROM rtep.event_counts_minute ORDER BY 1"
    )
    assert rows == [("login", 7, 4), ("page_view", 5, 1)]


def test_rows_refused_for_their_data_are_isolated_and_dead_lettered(
    database: str, broker: EmbeddedBroker
) -> None:
    """Scenario: a batch of 60 events where 2 have a random 1,000-character CJK user_id (3,000 bytes:
    their events_user_ts_idx entry exceeds PostgreSQL's 2,704-byte btree limit, SQLSTATE 54000,
    which psycopg raises as an OperationalError like a lost connection) and a rollup batch
    with a total beyond bigint.

    We expect: nothing retried (no rtep_sink_errors_total), the 58 good events and the good
    rollup stored, each refused row in rtep.rejected_events and on the DLQ topic once with
    reason store_rejected and the database's message; the refused event's dead letter is its
    wire JSON (replayable); writing the same batches again adds no row and no dead letter.
    """
    topics = provision_topics(broker.bootstrap)
    rejects = StoreRejects(database, broker.bootstrap, topics["RTEP_DLQ_TOPIC"])
    events = EventsSink(database, rejects=rejects).open()
    rollups = RollupSink(database, rejects=rejects).open()
    cjk = random.Random(16)
    bad_user = "".join(chr(cjk.randrange(0x4E00, 0x9FFF)) for _ in range(1000))  # incompressible
    batch = [make_event(i) for i in range(60)]
    batch[7] = make_event(7, user_id=bad_user)
    batch[41] = make_event(41, user_id=bad_user + "2")
    errors = REGISTRY.get_sample_value("rtep_sink_errors_total", {"sink": "events"}) or 0.0
    for _ in range(2):  # the second time: a replay after a crash
        events.write_batch(batch)
        rollups.write_batch([RollupRow(T0, "logout", 1, 1), RollupRow(T0, "login", 2**63, 1)])
    assert (REGISTRY.get_sample_value("rtep_sink_errors_total", {"sink": "events"}) or 0) == errors
    stored_ids = {str(r[0]) for r in query(database, "SELECT event_id FROM rtep.events")}
    assert stored_ids == {e.event_id for e in batch} - {batch[7].event_id, batch[41].event_id}
    assert query(database, "SELECT type FROM rtep.event_counts_minute") == [("logout",)]
    rows = query(
        database,
        "SELECT reason, detail, raw, source_topic, source_partition FROM rtep.rejected_events "
        "ORDER BY source_topic, detail",
    )
    assert [(r[0], r[3], r[4]) for r in rows] == [
        ("store_rejected", "rtep.event_counts_minute", -1),
        ("store_rejected", "rtep.events", -1),
        ("store_rejected", "rtep.events", -1),
    ]
    assert "SQLSTATE 22" in rows[0][1] or "int" in rows[0][1]
    assert all("index row size" in r[1] and "SQLSTATE 54000" in r[1] for r in rows[1:])
    letters = {json.loads(bytes(r[2]))["eventId"]: json.loads(bytes(r[2])) for r in rows[1:]}
    assert set(letters) == {batch[7].event_id, batch[41].event_id}
    assert letters[batch[7].event_id]["payload"]["userId"] == bad_user
    assert letters[batch[7].event_id]["type"] == "page_view"
    dlq = read_topic(broker.bootstrap, topics["RTEP_DLQ_TOPIC"])
    assert {r.headers["rtep.reason"] for r in dlq} == {b"store_rejected"}
    assert {bytes(r[2]) for r in rows} == {r.value for r in dlq}  # twice each: at-least-once
    events.write_batch([make_event(100)])  # the connection is still usable
    assert len(query(database, "SELECT 1 FROM rtep.events")) == 59


def test_a_data_error_in_rejected_events_still_stops_the_flow(database: str) -> None:
    """rtep.rejected_events is where dead letters end: a data error there is a bug, raised."""
    part = RejectedSink(database).open()
    bad = replace(make_rejection(1, b"x"), raw=None)  # NOT NULL: a bug upstream
    with pytest.raises(psycopg.IntegrityError):
        part.write_batch([bad])


def test_a_held_lock_times_out_and_is_retried_as_an_outage(database: str) -> None:
    """Scenario: another session holds an exclusive lock on rtep.events.

    We expect: the writer does not wait for ever: each attempt ends at the lock timeout
    (SQLSTATE 55P03), is counted and retried, and the policy gives up at its limit naming the
    settings to look at; once the lock is released the same writer stores the batch.
    """
    part = EventsSink(
        database, RetryPolicy(max_retry_seconds=1.0, initial_backoff=0.05, max_backoff=0.1),
        timeouts=Timeouts(statement_ms=2000, lock_ms=100),
        rejects=StoreRejects(database, "127.0.0.1:1", "unused"),
    ).open()  # fmt: skip
    errors = REGISTRY.get_sample_value("rtep_sink_errors_total", {"sink": "events"}) or 0.0
    with psycopg.connect(database) as holder:
        holder.execute("LOCK TABLE rtep.events IN ACCESS EXCLUSIVE MODE")
        started = time.monotonic()
        with pytest.raises(BackendUnavailable, match="RTEP_PG_LOCK_TIMEOUT_MS"):
            part.write_batch([make_event(1)])
        assert time.monotonic() - started < 5
    assert (REGISTRY.get_sample_value("rtep_sink_errors_total", {"sink": "events"}) or 0) > errors
    part.write_batch([make_event(1)])
    assert query(database, "SELECT count(*) FROM rtep.events") == [(1,)]


_ip_like = st.one_of(
    st.ip_addresses().map(str),
    st.text(alphabet="0123456789abcdefABCDEF.:%/ x-", max_size=45),
)


@settings(max_examples=10, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ips=st.lists(_ip_like, min_size=1, max_size=200, unique=True))
def test_no_ip_string_can_fail_a_batch(database: str, ips: list[str]) -> None:
    """Whatever the ip strings, the batch is stored; the column is NULL exactly when unsafe."""
    with psycopg.connect(database, autocommit=True) as conn:
        conn.execute("TRUNCATE rtep.events")
    events = [make_event(i, ip=ip) for i, ip in enumerate(ips)]
    EventsSink(database).open().write_batch(events)
    rows = dict(query(database, "SELECT event_id::text, ip IS NULL FROM rtep.events"))
    assert rows == {e.event_id: safe_inet(e.ip) is None for e in events}
