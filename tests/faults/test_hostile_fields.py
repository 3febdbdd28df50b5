"""Hostile values that used to pass validation and then stop every sink, among normal traffic."""

from __future__ import annotations

import base64
import random
import string
import time

import orjson
import psycopg
import redis

from rtep.core.embedded import free_port
from tests.faults.support import metric, produce_messages, record_figures
from tests.faults.workload import BASE, STEP, VALID, Message, build_workload
from tests.harness import REDIS_URL, Stack, read_topic, stop_process, wait_until

HOSTILE_USERS = ("evil\r\nuser", "*", "user*\r\n*", "a\rb\nc*", "\r\n")
REFUSED_PAGE = "/refused-by-a-constraint"


def body(rng: random.Random, kind: str, user: str, i: int, **payload: object) -> bytes:
    """A valid-looking event of ``kind`` for ``user`` at BASE + i steps."""
    defaults: dict[str, dict[str, object]] = {
        "page_view": {"page": "/home", "device": "Chrome on macOS"},
        "login": {"ip": "10.9.0.1", "device": "Chrome on macOS", "success": False,
                  "failureReason": "bad_password"},
    }  # fmt: skip
    return orjson.dumps({
        "eventId": str(rng.randbytes(16).hex()[:8] + "-0000-4000-8000-" + rng.randbytes(6).hex()),
        "type": kind, "timestamp": (BASE + i * STEP).isoformat(),
        "payload": {"userId": user, **defaults[kind], **payload},
    })  # fmt: skip


def hostile(rng: random.Random, n: int) -> tuple[list[Message], list[Message]]:
    """(messages that must be rejected too_long or stored verbatim, events a constraint refuses)."""
    spread = lambda: rng.randrange(n)  # noqa: E731 - event time among the normal events
    base64_user = base64.b64encode(rng.randbytes(2025)).decode()  # 2,700 characters
    cjk_user = "".join(chr(rng.randrange(0x4E00, 0x9FFF)) for _ in range(1000))
    out = [
        Message(b"b64", body(rng, "page_view", base64_user, spread()), "too_long"),
        Message(b"cjk", body(rng, "page_view", cjk_user, spread()), "too_long"),
    ]
    start = spread()
    out += [Message(b"cjk", body(rng, "login", cjk_user, start + k), "too_long") for k in range(6)]
    printable = string.ascii_letters + string.digits + " ;:/()._-,+"
    for i in range(100):  # distinct 60 KB User-Agents
        agent = "Mozilla/5.0 (" + "".join(rng.choices(printable, k=60_000))
        out.append(Message(b"ua", body(rng, "page_view", f"ua{i}", spread(), device=agent),
                           "too_long"))  # fmt: skip
    for user in HOSTILE_USERS:
        for kind in ("page_view", "login"):
            value = body(rng, kind, user, spread())
            out.append(Message(user.encode(), value, VALID, orjson.loads(value)["eventId"]))
    refused = []
    for i in range(3):
        value = body(rng, "page_view", f"refused{i}", spread(), page=REFUSED_PAGE)
        refused.append(Message(b"r", value, VALID, orjson.loads(value)["eventId"]))
    return out, refused


def test_hostile_identifiers_and_agents_are_rejected_and_nothing_stops(stack: Stack) -> None:
    """Scenario: among 2,000 normal events, a 2,700-character random base64 userId, a
    1,000-character random CJK userId (also as a burst of 6 failed logins), 100 distinct 60 KB
    User-Agent strings, userIds with CR, LF and ``*``, and 3 events a DBA constraint on
    rtep.events refuses (CHECK on page). Before issue 16 the first of these stopped all ingestion
    (btree index entry too large, retried as an outage for ever).

    We expect: every normal event stored; the long userIds and agents rejected too_long with
    the field and limit named, in rtep.rejected_events and on the DLQ with their bytes; the CR/LF/*
    userIds stored verbatim (and their Redis hashes written); the 3 refused events isolated
    as store_rejected with the database's message while the rest of their batches is stored; the
    flow never stops; everything drained in under 60 s.
    """
    rng = random.Random(16)
    normal = build_workload(2000, seed=16).messages
    bad, refused = hostile(rng, 2000)
    messages = list(normal)
    for message in [*bad, *refused]:
        messages.insert(rng.randrange(len(messages) + 1), message)
    with psycopg.connect(stack.dsn, autocommit=True) as conn:  # a DBA's constraint
        conn.execute(
            f"ALTER TABLE rtep.events ADD CONSTRAINT no_refused_page CHECK (page <> '{REFUSED_PAGE}')"
        )
    topic = stack.topics["RTEP_EVENTS_TOPIC"]
    produce_messages(stack.brokers, topic, messages)
    too_long = [m for m in bad if m.truth == "too_long"]
    expected = {m.event_id for m in messages if m.truth == VALID} - {m.event_id for m in refused}
    port = free_port()
    started = time.monotonic()
    proc = stack.start_pipeline(RTEP_METRICS_PORT=str(port))
    try:
        def drained() -> bool:
            assert proc.poll() is None, f"pipeline exited:\n{stack.pipeline_log()}"
            row = stack.query(
                "SELECT (SELECT count(*) FROM rtep.events),"
                " (SELECT count(*) FROM rtep.rejected_events)"
            )[0]
            return row == (len(expected), len(too_long) + len(refused))

        wait_until(drained, timeout=120, interval=0.2, what="every event stored or rejected")
        drain_seconds = time.monotonic() - started
        too_long_metric = metric(port, "rtep_events_rejected_total", reason="too_long")
        wait_until(  # counted once the letter is also on the DLQ topic, just after the table
            lambda: metric(port, "rtep_events_rejected_total", reason="store_rejected") == 3,
            timeout=30, what="the store_rejected dead letters to be counted",
        )  # fmt: skip
        client_prefix = stack.redis_prefix
        client = redis.Redis.from_url(REDIS_URL)
        wait_until(
            lambda: all(client.exists(f"{client_prefix}user:{u}") for u in HOSTILE_USERS),
            timeout=30, what="the CR/LF/* users' Redis hashes",
        )  # fmt: skip
        assert proc.poll() is None, stack.pipeline_log()
    finally:
        assert stop_process(proc) == 0, stack.pipeline_log()

    stored = stack.query("SELECT event_id::text, user_id FROM rtep.events")
    assert {r[0] for r in stored} == expected and len(stored) == len(expected)
    assert set(HOSTILE_USERS) <= {r[1] for r in stored}  # verbatim
    rows = stack.query(
        "SELECT reason, detail, raw FROM rtep.rejected_events WHERE source_topic = %s", topic
    )
    assert sorted(bytes(r[2]) for r in rows) == sorted(m.value or b"" for m in too_long)
    assert {r[0] for r in rows} == {"too_long"}
    details = [str(r[1]) for r in rows]
    assert sum("payload.userId is 2700 characters" in d for d in details) == 1
    assert sum("payload.userId is 1000 characters" in d for d in details) == 7
    assert sum("RTEP_MAX_DEVICE_CHARS" in d for d in details) == 100
    store = stack.query(
        "SELECT reason, detail, raw FROM rtep.rejected_events WHERE source_topic = 'rtep.events'"
    )
    assert {orjson.loads(bytes(r[2]))["eventId"] for r in store} == {m.event_id for m in refused}
    assert all(r[0] == "store_rejected" and "no_refused_page" in str(r[1]) for r in store)
    letters = read_topic(stack.brokers, stack.topics["RTEP_DLQ_TOPIC"])
    reasons = sorted(r.headers["rtep.reason"].decode() for r in letters)
    assert reasons == ["store_rejected"] * 3 + ["too_long"] * len(too_long)
    assert too_long_metric == len(too_long)
    assert drain_seconds < 60, f"drained in {drain_seconds:.1f}s"
    record_figures(
        "hostile_fields", normal_events=len(normal), hostile_rejected=len(too_long),
        hostile_stored=2 * len(HOSTILE_USERS), store_rejected=len(refused),
        drain_seconds=round(drain_seconds, 1), pipeline_stopped=False,
    )  # fmt: skip
