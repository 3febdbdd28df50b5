"""Scale-out: two dataflow processes (``-i/-a``) sharing one host's recovery directory."""

from __future__ import annotations

import hashlib
from pathlib import Path

import orjson

from rtep.core.embedded import free_port
from tests.harness import Stack, read_topic, scrape_metric, stop_processes, wait_until

N = 8_000


def test_two_processes_share_the_partitions_and_store_everything_once(
    stack: Stack, tmp_path: Path
) -> None:
    """Scenario: two processes of one cluster start together on a fresh recovery directory.

    We expect: neither crashes (only process 0 creates the recovery partitions); the four Kafka
    partitions are split between them (each consumes some, together exactly N); every valid
    event is stored and every malformed one rejected.
    """
    labels = stack.run_labelled_sim(
        tmp_path / "labels.jsonl", "--count", str(N), "--rate", "0", "--users", "300", "--seed", "5"
    )
    bad = {label["sha256"] for label in labels if label["kind"] == "malformed"}
    valid, malformed = set(), 0
    for record in read_topic(stack.brokers, stack.topics["RTEP_EVENTS_TOPIC"]):
        if hashlib.sha256(record.value or b"").hexdigest() in bad:
            malformed += 1
        else:
            valid.add(orjson.loads(record.value or b"")["eventId"])

    port = free_port()
    addresses = f"127.0.0.1:{free_port()};127.0.0.1:{free_port()}"
    processes = [
        stack.start_pipeline("-i", str(i), "-a", addresses, RTEP_METRICS_PORT=str(port))
        for i in range(2)
    ]  # process i serves /metrics on port + i
    try:
        wait_until(
            lambda: (
                all(p.poll() is None for p in processes)
                and stack.scalar("SELECT count(*) FROM rtep.events") == len(valid)
                and stack.scalar("SELECT count(*) FROM rtep.rejected_events") == malformed
            ),
            timeout=240,
            what="two processes to store every valid event",
        )
        consumed = [scrape_metric(port + i, "rtep_events_consumed_total") for i in range(2)]
        assert all(c > 0 for c in consumed), consumed
        assert sum(consumed) == N
        stored = {str(row[0]) for row in stack.query("SELECT event_id FROM rtep.events")}
        assert stored == valid
    finally:
        codes = stop_processes(processes)
        assert all(code in (0, -2, 130) for code in codes), stack.pipeline_log()
