"""DLQ replay: dead letters re-ingested after a fix land once; a second replay changes nothing."""

from __future__ import annotations

from rtep.dlq_replay import main as replay_main
from tests.harness import Stack, event_json, produce, stop_process, wait_until


def test_replay_after_raising_the_size_limit(stack: Stack, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Scenario: 3 events over the size limit are rejected; the limit is raised; they are replayed twice.

    We expect: after the first replay the 3 events are stored and their rejected rows are marked
    replayed; the second replay sends nothing; rtep.events ends with every eventId exactly once.
    """
    big = [event_json("page_view", user=f"big{i}", page="/" + "x" * 70_000) for i in range(3)]
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
    from rtep.settings import get_settings

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
