"""DLQ replay: dead letters re-ingested after a fix land once; a second replay changes nothing."""

from __future__ import annotations

import json
from typing import Any

import psycopg

from rtep.commands.dlq_replay import (
    DeadLetter,
    ReplayFilter,
    _produce,
    _producer,
    ids_from_topic,
    replay,
)
from rtep.commands.dlq_replay import main as replay_main
from rtep.core.settings import Settings
from tests.faults.support import produce_messages
from tests.faults.workload import Message
from tests.harness import Stack, event_json, produce, read_topic, stop_process, wait_until


def test_replay_after_raising_the_size_limit(stack: Stack, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Scenario: 3 events over the size limit are rejected; the limit is raised; they are replayed twice.

    We expect: after the first replay the 3 events are stored and their rejected rows are marked
    replayed; the second replay sends nothing; rtep.events ends with every eventId exactly once.
    """
    big = [event_json("page_view", user=f"big{i}", blob="x" * 70_000) for i in range(3)]
    small = [event_json("page_view", user=f"u{i}") for i in range(20)]
    produce(stack.brokers, stack.topics["RTEP_EVENTS_TOPIC"], [*small, *big], key=b"k")

    pipeline = stack.start_pipeline()
    try:
        wait_until(
            lambda: (
                stack.scalar("SELECT count(*) FROM rtep.rejected_events") == 3
                and stack.scalar("SELECT count(*) FROM rtep.events") == 20
            ),
            what="first pass",
        )
    finally:
        stop_process(pipeline)
    assert {r[0] for r in stack.query("SELECT reason FROM rtep.rejected_events")} == {"too_large"}

    for key, value in stack.env(RTEP_MAX_EVENT_BYTES="200000").items():
        monkeypatch.setenv(key, value)
    from rtep.core.settings import get_settings

    get_settings.cache_clear()
    pipeline = stack.start_pipeline(RTEP_MAX_EVENT_BYTES="200000")
    try:
        assert replay_main(["--reason", "too_large"]) == 0
        wait_until(
            lambda: stack.scalar("SELECT count(*) FROM rtep.events") == 23, what="replayed events"
        )
        assert (
            stack.scalar("SELECT count(*) FROM rtep.rejected_events WHERE replayed_at IS NULL") == 0
        )
        assert replay_main(["--reason", "too_large"]) == 0  # nothing left to replay
        assert (
            replay_main(["--from-topic", "--reason", "too_large"]) == 0
        )  # DLQ copies: already marked
        produce(
            stack.brokers,
            stack.topics["RTEP_EVENTS_TOPIC"],
            [event_json(user="sentinel")],
            key=b"k",
        )
        wait_until(lambda: stack.scalar("SELECT count(*) FROM rtep.events") == 24, what="sentinel")
        assert stack.scalar("SELECT count(DISTINCT event_id) FROM rtep.events") == 24
        assert stack.scalar("SELECT count(*) FROM rtep.rejected_events") == 3
    finally:
        stop_process(pipeline)
        get_settings.cache_clear()


BIG = {"message.max.bytes": "20000000"}


def settings_of(stack: Stack, **changes: Any) -> Settings:
    """The stack's settings as an object (what ``python -m rtep.commands.dlq_replay`` would read)."""
    return Settings(
        kafka_brokers=stack.brokers, database_url=stack.dsn,  # type: ignore[arg-type]
        events_topic=stack.topics["RTEP_EVENTS_TOPIC"], dlq_topic=stack.topics["RTEP_DLQ_TOPIC"],
        **changes,
    )  # fmt: skip


def topic_size(stack: Stack) -> int:
    """Messages on the events topic."""
    return len(read_topic(stack.brokers, stack.topics["RTEP_EVENTS_TOPIC"]))


def test_a_truncated_letter_is_replayed_whole_from_the_table(stack: Stack) -> None:
    """Scenario: a 3 MB event (a big unknown payload field) is rejected too_large; its DLQ
    letter is emptied for size (rtep.truncated) under the producer's default 1 MB limit. The
    limits are raised and the dead letters replayed by the DLQ topic (``--from-topic``), twice.

    We expect: the event is stored with its whole 3 MB payload (the bytes come from
    rtep.rejected_events.raw, not the empty letter: before, an empty message was replayed and the
    row marked, losing the event); the row is marked replayed; the second replay sends nothing.
    """
    blob = "b" * 3_000_000
    big = event_json("page_view", user="big", blob=blob)
    produce_messages(stack.brokers, stack.topics["RTEP_EVENTS_TOPIC"],
                     [Message(b"big", big, "too_large")], **BIG)  # fmt: skip
    pipeline = stack.start_pipeline()
    try:
        wait_until(lambda: stack.scalar("SELECT count(*) FROM rtep.rejected_events") == 1,
                   what="the big event rejected")  # fmt: skip
        wait_until(lambda: read_topic(stack.brokers, stack.topics["RTEP_DLQ_TOPIC"]),
                   what="its dead letter")  # fmt: skip
    finally:
        assert stop_process(pipeline) == 0, stack.pipeline_log()
    (letter,) = read_topic(stack.brokers, stack.topics["RTEP_DLQ_TOPIC"])
    assert not letter.value and letter.headers["rtep.truncated"] == str(len(big)).encode()

    fixed = {"RTEP_MAX_EVENT_BYTES": "4000000", "RTEP_KAFKA_EXTRA_CONFIG": json.dumps(BIG)}
    pipeline = stack.start_pipeline(**fixed)
    try:
        settings = settings_of(stack, kafka_extra_config=BIG)
        flt = ReplayFilter(reasons=("too_large",))
        assert replay(settings, flt, ids=list(ids_from_topic(settings, flt))) == 1
        wait_until(lambda: stack.scalar("SELECT count(*) FROM rtep.events") == 1,
                   what="the replayed event stored")  # fmt: skip
        sent = topic_size(stack)
        assert replay(settings, flt, ids=list(ids_from_topic(settings, flt))) == 0
        assert replay(settings, flt) == 0
        assert topic_size(stack) == sent
    finally:
        assert stop_process(pipeline) == 0, stack.pipeline_log()
    payload = stack.scalar("SELECT payload->>'blob' FROM rtep.events")
    assert payload == blob
    assert stack.scalar("SELECT replay_count FROM rtep.rejected_events") == 1


def test_a_replay_rejected_again_links_to_its_original_and_a_repeat_is_harmless(
    stack: Stack,
) -> None:
    """Scenario: 3 invalid messages (missing page) are replayed without a fix, so the flow
    rejects them again; then a replay is repeated as after a crash between the broker's
    acknowledgement and the marking's commit; then the dead letters are replayed again on
    purpose (``include_replayed``).

    We expect: each re-rejection is a new row linked to its original (replay_of = its id,
    replay_attempt 1) and its DLQ letter carries rtep.replay.of; a second replay sends nothing
    (the linked rows are not dead letters of their own: before, each replay created new unmarked
    rows, so replays never ended); the repeated attempt lands on the same rows (no new row);
    replaying on purpose is attempt 2, linked likewise.
    """
    bad = [event_json("page_view", user=f"u{i}") for i in range(3)]
    bad = [json.dumps({**json.loads(b), "payload": {"userId": f"u{i}", "device": "d"}}).encode()
           for i, b in enumerate(bad)]  # fmt: skip
    produce(stack.brokers, stack.topics["RTEP_EVENTS_TOPIC"], bad, key=b"k")
    pipeline = stack.start_pipeline()
    try:
        rows = lambda: int(stack.scalar("SELECT count(*) FROM rtep.rejected_events"))  # noqa: E731
        wait_until(lambda: rows() == 3, what="3 rejections")
        originals = [int(r[0]) for r in stack.query("SELECT id FROM rtep.rejected_events")]
        settings = settings_of(stack)
        assert replay(settings, ReplayFilter()) == 3
        wait_until(lambda: rows() == 6, what="the replays rejected again")
        linked = stack.query(
            "SELECT replay_of, replay_attempt, reason, raw FROM rtep.rejected_events "
            "WHERE replay_of IS NOT NULL ORDER BY replay_of"
        )
        assert [(r[0], r[1], r[2]) for r in linked] == [(o, 1, "missing_field") for o in originals]
        assert sorted(bytes(r[3]) for r in linked) == sorted(bad)
        sent = topic_size(stack)
        assert replay(settings, ReplayFilter()) == 0  # a second replay sends nothing
        assert topic_size(stack) == sent

        # the same attempt again, as after a crash before the marking committed
        again = [DeadLetter(o, raw, "x", 0, 0, "missing_field", 1)
                 for o, raw in zip(originals, [bytes(r[3]) for r in linked], strict=True)]  # fmt: skip
        _produce(_producer(settings), settings.events_topic, again)
        wait_until(lambda: topic_size(stack) == sent + 3, what="the repeated replay on the topic")
        sentinel = event_json(user="sentinel")
        produce(stack.brokers, stack.topics["RTEP_EVENTS_TOPIC"], [sentinel], key=b"k")
        wait_until(lambda: stack.scalar("SELECT count(*) FROM rtep.events") == 1,
                   what="a later event (so the repeats have been processed)")  # fmt: skip
        assert rows() == 6

        assert replay(settings, ReplayFilter(include_replayed=True)) == 3
        wait_until(lambda: rows() == 9, what="attempt 2 rejected again")
        attempts = stack.query(
            "SELECT replay_attempt, count(*) FROM rtep.rejected_events WHERE replay_of IS NOT NULL "
            "GROUP BY 1 ORDER BY 1"
        )
        assert attempts == [(1, 3), (2, 3)]
    finally:
        assert stop_process(pipeline) == 0, stack.pipeline_log()
    letters = read_topic(stack.brokers, stack.topics["RTEP_DLQ_TOPIC"])
    linked_letters = [r for r in letters if "rtep.replay.of" in r.headers]
    assert {int(r.headers["rtep.replay.of"]) for r in linked_letters} == set(originals)


def test_a_large_replay_streams_in_chunks_through_a_small_producer_queue(stack: Stack) -> None:
    """Scenario: 3,000 dead letters replayed 500 per transaction through a producer whose local
    queue holds 100 messages (``BufferError`` on nearly every chunk).

    We expect: every letter on the events topic exactly once with its replay headers, every row
    marked once (replay_count 1), and nothing left to replay."""
    raws = [b'{"n": %d}' % i for i in range(3000)]
    with psycopg.connect(stack.dsn) as conn:
        conn.cursor().executemany(
            "INSERT INTO rtep.rejected_events (received_at, reason, detail, raw, source_topic,"
            " source_partition, source_offset) VALUES (now(), 'missing_field', 'd', %s, 't', 0, %s)",
            [(raw, i) for i, raw in enumerate(raws)],
        )
    settings = settings_of(stack, kafka_extra_config={"queue.buffering.max.messages": "100"})
    assert replay(settings, ReplayFilter(), chunk=500) == 3000
    sent = read_topic(stack.brokers, stack.topics["RTEP_EVENTS_TOPIC"])
    assert sorted(r.value or b"" for r in sent) == sorted(raws)
    assert {r.headers["rtep.replay.attempt"] for r in sent} == {b"1"}
    assert stack.query("SELECT replay_count, count(*) FROM rtep.rejected_events GROUP BY 1") == [
        (1, 3000)
    ]
    assert replay(settings, ReplayFilter(), chunk=500) == 0
