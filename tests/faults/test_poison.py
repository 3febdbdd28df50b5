"""A poison-message barrage interleaved with normal traffic."""

from __future__ import annotations

import hashlib
import json

from rtep.core.embedded import free_port
from tests.faults.poison import TEN_MB, Poison, corpus
from tests.faults.support import (
    assert_conservation,
    metric,
    produce_messages,
    record_figures,
    wait_all_stored,
)
from tests.faults.workload import VALID, Message, Workload, build_workload
from tests.harness import Stack, read_topic, stop_process

ENVELOPE = {"eventId", "type", "timestamp", "payload"}
BIG_MESSAGES = {"message.max.bytes": "20000000"}
"""The 10 MB message needs the producers' limit raised (librdkafka's default is 1 MB); the
pipeline gets the same through RTEP_KAFKA_EXTRA_CONFIG so that its dead letter can be written."""


def as_message(poison: Poison) -> Message:
    """A corpus entry as a workload message with its ground truth."""
    return Message(poison.key, poison.value, poison.reason or VALID, poison.event_id)


def expected_payload(poison: Poison) -> dict:
    """What rtep.events.payload must hold: the original payload, unknown top-level fields under
    ``_envelope`` (parsed with the stdlib, which keeps integers of any size exactly)."""
    body = json.loads(poison.value or b"")
    payload = dict(body["payload"])
    extra = {k: v for k, v in body.items() if k not in ENVELOPE}
    if extra:
        payload["_envelope"] = extra
    return payload


def test_poison_barrage_is_dead_lettered_and_the_pipeline_keeps_running(stack: Stack) -> None:
    """Scenario: 130 hostile messages (invalid UTF-8, raw and escaped NULs, 30,000-deep JSON, a
    10 MB value, NaN and 1e400, duplicate keys, a wrong type in every field of every event type,
    unknown types, non-UUID ids, far-future, out-of-range and far-past timestamps, empty
    messages and tombstones, SQL/script injection strings) each followed by 5 normal events.

    We expect: every invalid message is in rtep.rejected_events and in the DLQ with its expected
    reason and its original bytes; every valid one (injection strings, far past, huge integers,
    unknown fields...) is stored once with its payload intact (the stdlib's parse of the original
    equals the jsonb read back) and its user_id verbatim; the pipeline is still running at the
    end; conservation holds exactly.
    """
    poisons = corpus()
    normal = iter(build_workload(5 * len(poisons), seed=6).messages)
    messages = []
    for poison in poisons:
        messages.append(as_message(poison))
        messages.extend(next(normal) for _ in range(5))
    workload = Workload(messages)
    produce_messages(stack.brokers, stack.topics["RTEP_EVENTS_TOPIC"], messages, **BIG_MESSAGES)
    port = free_port()
    proc = stack.start_pipeline(
        RTEP_KAFKA_EXTRA_CONFIG=json.dumps(BIG_MESSAGES), RTEP_METRICS_PORT=str(port)
    )
    try:
        wait_all_stored(stack, workload, proc)
        rejected_metric = metric(port, "rtep_events_rejected_total")
        assert proc.poll() is None, stack.pipeline_log()
    finally:
        assert stop_process(proc) == 0, stack.pipeline_log()

    invalid = [p for p in poisons if p.reason is not None]
    assert rejected_metric == len(invalid)
    valid = {p.event_id: p for p in poisons if p.reason is None}
    rows = stack.query(
        "SELECT event_id::text, user_id, payload::text FROM rtep.events "
        "WHERE event_id = ANY(%s::uuid[])",
        list(valid),
    )
    assert len(rows) == len(valid)
    for event_id, user_id, payload in rows:
        poison = valid[str(event_id)]
        want = expected_payload(poison)
        assert json.loads(str(payload)) == want, poison.name
        assert user_id == want["userId"], poison.name
    biggest = stack.scalar("SELECT max(length(raw)) FROM rtep.rejected_events")
    assert isinstance(biggest, int) and biggest > TEN_MB
    result = assert_conservation(stack, workload)
    record_figures(
        "poison", poison_tried=len(poisons), poison_rejected=len(invalid),
        poison_valid_stored=len(valid), normal_events=5 * len(poisons),
        dead_letters=result.dead_letters, pipeline_stopped=False,
    )  # fmt: skip


def test_a_dead_letter_too_big_for_the_producer_does_not_stop_the_pipeline(stack: Stack) -> None:
    """Scenario: with the default producer limit (1 MB), a 3 MB message that the broker accepted
    on the events topic arrives between two valid events.

    We expect: the pipeline keeps running and stores both events; rtep.rejected_events holds the
    3 MB original (too_large); the DLQ holds its dead letter with an empty value and the headers
    rtep.truncated (original size) and rtep.sha256 (it used to stop the flow with
    MSG_SIZE_TOO_LARGE, again after every restart). Conservation holds, the DLQ value aside.
    """
    big = b'{"pad":"' + b"z" * 3_000_000 + b'"}'
    workload = Workload(
        [
            *build_workload(2, seed=8).messages[:1],
            Message(b"big", big, "too_large"),
            *build_workload(2, seed=9).messages[:1],
        ]
    )
    produce_messages(stack.brokers, stack.topics["RTEP_EVENTS_TOPIC"], workload.messages,
                     **BIG_MESSAGES)  # fmt: skip
    proc = stack.start_pipeline()
    try:
        wait_all_stored(stack, workload, proc)
    finally:
        assert stop_process(proc) == 0, stack.pipeline_log()
    raw = stack.scalar("SELECT raw FROM rtep.rejected_events")
    assert isinstance(raw, bytes) and raw == big
    (letter,) = read_topic(stack.brokers, stack.topics["RTEP_DLQ_TOPIC"])
    assert not letter.value
    assert letter.headers["rtep.truncated"] == str(len(big)).encode()
    assert letter.headers["rtep.sha256"] == hashlib.sha256(big).hexdigest().encode()
    stored = {str(r[0]) for r in stack.query("SELECT event_id FROM rtep.events")}
    assert stored == workload.expected_ids and len(stored) == 2
    dead = stack.scalar("SELECT count(*) FROM rtep.rejected_events")
    assert len(workload.messages) == len(stored) + workload.duplicates + dead  # type: ignore[operator]
