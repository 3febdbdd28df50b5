"""The rejection breaker: a stream that turns mostly bad stops the pipeline, loudly, losing nothing."""

from __future__ import annotations

from tests.faults.support import (
    assert_conservation,
    counts,
    full_log,
    produce_messages,
    record_figures,
    wait_all_stored,
)
from tests.faults.workload import DUPLICATE, VALID, Workload, build_workload
from tests.harness import Stack, read_topic, stop_process

BREAKER = {
    "RTEP_BREAKER_WINDOW": "100",
    "RTEP_BREAKER_REJECT_SHARE": "0.5",
    "RTEP_KAFKA_BATCH_SIZE": "20",
}


def test_mostly_bad_input_trips_the_breaker_and_nothing_is_lost(stack: Stack) -> None:
    """Scenario: 300 good messages, then 600 of which 90% are malformed (a broken upstream
    deploy), with a breaker window of 100 messages and a limit of 50% rejected; then the
    operator "fixes" it (RTEP_BREAKER_REJECT_SHARE=1) and restarts.

    We expect: the pipeline exits non-zero with a log line saying the breaker tripped and why
    (share, window, the setting to change); what was written before the trip is exactly right
    (stored events are valid ones, rejected rows and dead letters are malformed ones with their
    reason, and every rejected row is also a dead letter); after the restart every message is
    accounted for: conservation holds exactly, nothing was lost to the trip.
    """
    good = build_workload(300, seed=70).messages
    bad = build_workload(600, seed=71, malformed_share=0.9).messages
    workload = Workload([*good, *bad])
    produce_messages(stack.brokers, stack.topics["RTEP_EVENTS_TOPIC"], workload.messages)
    proc = stack.start_pipeline(**BREAKER)
    try:
        code = proc.wait(timeout=90)
    finally:
        stop_process(proc)
    log = full_log(stack)
    assert code != 0, log
    assert "rejection breaker tripped" in log and "RTEP_BREAKER_REJECT_SHARE" in log, log
    assert "of the last" in log and "were rejected" in log, log

    stored, rejected = counts(stack)
    assert stored + rejected < len(workload.messages), "the breaker tripped after the end"
    ids = {str(r[0]) for r in stack.query("SELECT event_id FROM rtep.events")}
    assert ids <= workload.expected_ids
    reasons = workload.reasons
    rows = {
        (int(p), int(o), str(why), bytes(raw))  # type: ignore[call-overload]
        for p, o, why, raw in stack.query(
            "SELECT source_partition, source_offset, reason, raw FROM rtep.rejected_events"
        )
    }
    assert all(reasons[raw] == why for _, _, why, raw in rows)
    letters = {
        (int(r.headers["rtep.source.partition"]), int(r.headers["rtep.source.offset"]),
         r.headers["rtep.reason"].decode(), r.value or b"")
        for r in read_topic(stack.brokers, stack.topics["RTEP_DLQ_TOPIC"])
    }  # fmt: skip
    assert rows and rows <= letters
    assert all(reasons[raw] == why for _, _, why, raw in letters)

    proc = stack.start_pipeline(**{**BREAKER, "RTEP_BREAKER_REJECT_SHARE": "1"})
    try:
        wait_all_stored(stack, workload, proc)
    finally:
        assert stop_process(proc) == 0, stack.pipeline_log()
    result = assert_conservation(stack, workload, dlq="repeats")
    assert sum(m.truth not in (VALID, DUPLICATE) for m in bad) > 0.8 * len(bad)
    record_figures(
        "breaker", exit_code=code, stored_before_trip=stored, rejected_before_trip=rejected,
        produced=result.produced, dead_letters=result.dead_letters, events_lost=0,
    )  # fmt: skip
