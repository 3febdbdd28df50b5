"""kill -9 of the dataflow process at seeded random points, five times in one run, with restarts."""

from __future__ import annotations

import random
import subprocess
import threading
import time

import pytest

from rtep.core.embedded import free_port
from tests.faults.support import (
    assert_conservation,
    counts,
    heavy_variant,
    kill9,
    metric,
    produce_messages,
    record_figures,
    wait_all_stored,
)
from tests.faults.workload import Message, Workload, build_workload
from tests.harness import Stack, stop_process, wait_until

KILLS = 5
PRODUCE_SECONDS = 20.0
"""The workload is produced over this long, so the kills land while input is still arriving."""
SNAPSHOT = {"RTEP_SNAPSHOT_INTERVAL_SECONDS": "1"}


def produce_paced(stack: Stack, messages: list[Message], seconds: float) -> threading.Thread:
    """Produce ``messages`` in 20 slices spread over ``seconds`` (pacing, not synchronisation)."""
    topic = stack.topics["RTEP_EVENTS_TOPIC"]
    step = max(1, len(messages) // 20)

    def run() -> None:
        for start in range(0, len(messages), step):
            produce_messages(stack.brokers, topic, messages[start : start + step])
            time.sleep(seconds / 20)  # the input rate of the scenario

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def run_until_progress(stack: Stack, port: int) -> subprocess.Popen[bytes]:
    """Start the pipeline and wait until it has consumed something (it is really running)."""
    proc = stack.start_pipeline(RTEP_METRICS_PORT=str(port), **SNAPSHOT)
    wait_until(
        lambda: proc.poll() is None and metric(port, "rtep_events_consumed_total") > 0,
        timeout=60,
        what="the restarted pipeline to consume",
    )
    return proc


@pytest.mark.parametrize("n", heavy_variant(6000, 20_000))
def test_five_kill9_lose_nothing_and_store_nothing_twice(stack: Stack, n: int) -> None:
    """Scenario: a stream of ``n`` messages (2% malformed, 2% re-sent duplicates) is produced
    over 20 s while the dataflow process is SIGKILLed five times, each at a seeded random delay
    after it started consuming, and restarted on the same recovery directory (snapshots every
    1 s). Every restart replays the input since the last snapshot.

    We expect: after the last restart drains the topic, rtep.events holds every valid eventId
    exactly once, rtep.rejected_events holds exactly the malformed messages by (partition, offset)
    with their reason, the DLQ holds the same dead letters (repeats allowed: at-least-once), and
    produced = distinct stored + duplicates + dead letters.
    """
    workload: Workload = build_workload(n, seed=20261124, malformed_share=0.02,
                                        duplicate_share=0.02)  # fmt: skip
    rng = random.Random(n)
    producer = produce_paced(stack, workload.messages, PRODUCE_SECONDS)
    consumed = 0.0
    for _ in range(KILLS):
        port = free_port()
        proc = run_until_progress(stack, port)
        time.sleep(rng.uniform(0.1, 2.5))  # the seeded kill point: a scenario parameter
        consumed += metric(port, "rtep_events_consumed_total")
        kill9(proc)
    producer.join(timeout=120)
    assert not producer.is_alive()

    port = free_port()
    proc = stack.start_pipeline(RTEP_METRICS_PORT=str(port), **SNAPSHOT)
    try:
        wait_all_stored(stack, workload, proc)
        consumed += metric(port, "rtep_events_consumed_total")
    finally:
        assert stop_process(proc) == 0, stack.pipeline_log()
    result = assert_conservation(stack, workload, dlq="repeats")
    assert counts(stack) == (len(workload.expected_ids), workload.rejections)
    record_figures(
        "kill9", crashes=KILLS, produced=result.produced, stored=result.stored,
        duplicates_sent=result.duplicates, dead_letters=result.dead_letters,
        consumed_including_replays=int(consumed), dlq_repeats=result.dlq_repeats,
        events_lost=0, duplicates_stored=0,
    )  # fmt: skip
