"""An erasure that sticks: ordered with the user's events, through every step and sink, across a
kill -9 and the replay that follows."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta

import orjson
import pytest
import redis

from rtep.commands.erase import main as erase_main
from rtep.core.settings import get_settings
from tests.faults.support import kill9, produce_messages, record_figures
from tests.faults.workload import BASE, VALID, Message
from tests.harness import REDIS_URL, Stack, event_json, stop_process, wait_until

VICTIM = "victim\r\n*"
GAP = 60  # RTEP_SESSION_GAP_SECONDS of the run


def at(seconds: float) -> str:
    """An ISO timestamp ``seconds`` after the workload's base (event time)."""
    return (BASE + timedelta(seconds=seconds)).isoformat()


def message(user: str, seconds: float, kind: str = "page_view", **payload: object) -> Message:
    """A valid event of ``user`` at BASE + ``seconds``, keyed by the user."""
    value = event_json(kind, user=user, ts=at(seconds), **payload)
    return Message(user.encode(), value, VALID, orjson.loads(value)["eventId"])


@pytest.fixture
def settings_env(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The stack's environment for the in-process ``rtep.commands.erase`` command."""
    for key, value in stack.env().items():
        monkeypatch.setenv(key, value)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def behind_the_request(stack: Stack, user: str, seconds: float) -> None:
    """Send an event of ``user`` in the victim's partition (keyed like the victim, so after the
    erase request) and wait until it is stored: everything before it has been processed."""
    sentinel = message(user, seconds)
    produce_messages(stack.brokers, stack.topics["RTEP_EVENTS_TOPIC"],
                     [Message(VICTIM.encode(), sentinel.value, VALID, sentinel.event_id)])  # fmt: skip
    wait_until(
        lambda: stack.scalar("SELECT count(*) FROM rtep.events WHERE user_id = %s", user),
        timeout=90, what=f"{user}'s event, sent after the erase request",
    )  # fmt: skip


def victim_traces(stack: Stack, client: redis.Redis, sessions: list[str]) -> dict[str, int]:
    """Everything stored about the victim, per place (all zero once erased)."""
    user = json.dumps(VICTIM)[1:-1]  # as JSON writes it inside a rejected message
    row = stack.query(
        "SELECT (SELECT count(*) FROM rtep.events WHERE user_id = %s),"
        " (SELECT count(*) FROM rtep.sessions WHERE user_id = %s),"
        " (SELECT count(*) FROM rtep.alerts WHERE subject = %s),"
        " (SELECT count(*) FROM rtep.rejected_events WHERE position(%s::bytea in raw) > 0)",
        VICTIM, VICTIM, VICTIM, f'"userId":"{user}"'.encode(),
    )[0]  # fmt: skip
    prefix = stack.redis_prefix
    recent = [orjson.loads(x) for x in client.lrange(f"{prefix}alerts:recent", 0, -1)]
    return {
        "events": int(row[0]), "sessions": int(row[1]), "alerts": int(row[2]),  # type: ignore[call-overload]
        "rejected": int(row[3]),  # type: ignore[call-overload]
        "redis_user": int(client.exists(f"{prefix}user:{VICTIM}")),
        "redis_sessions": sum(client.zscore(f"{prefix}sessions:active", s) is not None
                              for s in sessions),
        "redis_alerts": sum(a.get("subject") == VICTIM for a in recent),
    }  # fmt: skip


def test_an_erased_user_never_comes_back(stack: Stack, settings_env: None) -> None:
    """Scenario: a user (id with CR, LF and ``*``) has an open session, a failed-login burst
    alert, a rejected message carrying their userId and Redis keys; more of their events are
    sent just before the erase request (queued writes); then ``rtep.commands.erase`` runs, other users'
    events move event time past the session gap (the sessionizer would close and write the
    session), the dataflow is killed with SIGKILL and restarted on its recovery store (snapshots
    every 30 s: the replay re-reads the user's events and the erase request).

    We expect: after the erase, and again after the restart has replayed everything, no row of
    the user in rtep.events, rtep.sessions, rtep.alerts, rtep.rejected_events, and no Redis key,
    session or recent alert of theirs; other users' data intact.
    """
    topic = stack.topics["RTEP_EVENTS_TOPIC"]
    env = {"RTEP_SESSION_GAP_SECONDS": str(GAP), "RTEP_SNAPSHOT_INTERVAL_SECONDS": "30"}
    before = [message(VICTIM, i, "login", success=False) for i in range(6)]
    before += [message(VICTIM, 10 + i, page=f"/v{i}") for i in range(5)]
    before += [message(f"other{i}", i) for i in range(20)]
    bad = orjson.dumps({"type": "page_view", "payload": {"userId": VICTIM}})  # no eventId
    before.append(Message(VICTIM.encode(), bad, "missing_field"))
    client = redis.Redis.from_url(REDIS_URL)
    proc = stack.start_pipeline(**env)
    try:
        produce_messages(stack.brokers, topic, before)
        wait_until(
            lambda: all(victim_traces(stack, client, [])[k] for k in
                        ("events", "sessions", "alerts", "rejected", "redis_user")),
            timeout=90, what="the victim's rows, alert, rejected message and Redis hash",
        )  # fmt: skip
        sessions = [str(r[0]) for r in stack.query(
            "SELECT session_id FROM rtep.sessions WHERE user_id = %s", VICTIM)]  # fmt: skip
        queued = [message(VICTIM, 20 + i, page=f"/q{i}") for i in range(50)]
        produce_messages(stack.brokers, topic, queued)
        assert erase_main(["--user", VICTIM]) == 0
        later = [message(f"other{i}", 3 * GAP + i) for i in range(20)]
        produce_messages(stack.brokers, topic, later)
        wait_until(lambda: stack.scalar("SELECT count(*) FROM rtep.events") == 40,
                   timeout=90, what="the other users' events, past the session gap")  # fmt: skip
        wait_until(lambda: not any(victim_traces(stack, client, sessions).values()),
                   timeout=60, what="the erasure to reach every sink")  # fmt: skip
        kill9(proc)
        proc = stack.start_pipeline(**env)
        behind_the_request(stack, "sentinel", 4 * GAP)  # the replay went past the request
        wait_until(lambda: not any(victim_traces(stack, client, sessions).values()),
                   timeout=60, what=f"the replayed writes to be erased again "
                   f"{victim_traces(stack, client, sessions)}")  # fmt: skip
        behind_the_request(stack, "sentinel2", 4 * GAP + 1)  # and a later epoch
        traces = victim_traces(stack, client, sessions)
        assert proc.poll() is None, stack.pipeline_log()
    finally:
        assert stop_process(proc) == 0, stack.pipeline_log()
    assert not any(traces.values()), traces
    others = stack.scalar("SELECT count(*) FROM rtep.events WHERE user_id LIKE 'other%%'")
    assert others == 40
    record_figures("erase", victim_events=len(before) + len(queued) - 1, others_kept=40,
                   sessions_erased=len(sessions), crashes=1, traces_after_replay=0)  # fmt: skip
