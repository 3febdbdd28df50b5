"""PostgreSQL outages under a running pipeline: back-pressure and resume, or a loud failure."""

from __future__ import annotations

import time

import pytest

from rtep.core.embedded import free_port
from tests.faults.support import (
    assert_conservation,
    counts,
    full_log,
    heavy_variant,
    metric,
    produce_messages,
    record_figures,
    wait_all_stored,
)
from tests.faults.workload import build_workload
from tests.harness import Stack, stop_process, wait_until
from tests.integration.private_servers import PrivatePostgres

OUTAGE_SECONDS = 20.0
"""How long PostgreSQL stays down once the pipeline has noticed the outage (scenario parameter)."""


@pytest.mark.parametrize("n", heavy_variant(4000, 20_000))
def test_postgres_down_20s_back_pressure_then_nothing_lost(
    pg_stack: Stack, private_pg: PrivatePostgres, n: int
) -> None:
    """Scenario: the first half of the stream is stored; PostgreSQL is stopped (immediate, like a
    crash); the second half is produced while it is down; after OUTAGE_SECONDS it comes back.

    We expect: the sinks retry (rtep_sink_errors_total rises) and the flow applies back-pressure:
    once RTEP_SINK_MAX_PENDING items wait for a sink's writer (small here, so that it fills), the
    worker blocks (rtep_sink_blocked_workers) and from then on rtep_events_consumed_total does not
    move while PostgreSQL is down although input is waiting;
    after the restart the flow resumes by itself and conservation holds exactly (no DLQ repeat:
    the process never crashed).
    """
    stack = pg_stack
    topic = stack.topics["RTEP_EVENTS_TOPIC"]
    workload = build_workload(n, seed=2, malformed_share=0.02, duplicate_share=0.02)
    first, second = workload.messages[: n // 2], workload.messages[n // 2 :]
    produce_messages(stack.brokers, topic, first)
    port = free_port()
    proc = stack.start_pipeline(
        RTEP_METRICS_PORT=str(port), RTEP_SINK_MAX_PENDING="200", RTEP_KAFKA_BATCH_SIZE="100"
    )
    try:
        wait_until(
            lambda: (
                metric(port, "rtep_events_consumed_total") >= len(first) and sum(counts(stack)) > 0
            ),
            timeout=60,
            what="the first half consumed",
        )
        private_pg.stop()
        errors_before = metric(port, "rtep_sink_errors_total")
        produce_messages(stack.brokers, topic, second)
        wait_until(
            lambda: metric(port, "rtep_sink_errors_total") > errors_before,
            timeout=60,
            what="the sinks to notice the outage",
        )
        wait_until(
            lambda: metric(port, "rtep_sink_blocked_workers") >= 1,
            timeout=60,
            what="the flow to block on a full sink queue (rtep_sink_blocked_workers)",
        )
        consumed_while_down = metric(port, "rtep_events_consumed_total")
        time.sleep(OUTAGE_SECONDS)  # the outage itself: a scenario parameter, not a wait
        assert proc.poll() is None, stack.pipeline_log()
        assert metric(port, "rtep_events_consumed_total") == consumed_while_down < n, (
            "the flow kept consuming while PostgreSQL was down: no back-pressure"
        )
        errors_during = metric(port, "rtep_sink_errors_total") - errors_before
        private_pg.start()
        wait_all_stored(stack, workload, proc)
        assert metric(port, "rtep_events_consumed_total") >= n
    finally:
        assert stop_process(proc) == 0, stack.pipeline_log()
    result = assert_conservation(stack, workload)
    record_figures(
        "postgres_outage", outage_seconds=OUTAGE_SECONDS, produced=result.produced,
        stored=result.stored, dead_letters=result.dead_letters, sink_errors=errors_during,
        consumed_while_down=consumed_while_down, events_lost=0, duplicates_stored=0,
    )  # fmt: skip


def test_postgres_down_for_good_fails_loudly_then_recovers(
    pg_stack: Stack, private_pg: PrivatePostgres
) -> None:
    """Scenario: PostgreSQL goes down mid-stream and stays down, with
    RTEP_SINK_MAX_RETRY_SECONDS=5; later it is repaired and the pipeline started again.

    We expect: the pipeline exits non-zero within the limit (plus one backoff) and its log names
    the backend ("PostgreSQL unavailable"), the setting to check (RTEP_DATABASE_URL) and the limit
    (RTEP_SINK_MAX_RETRY_SECONDS); restarted after the repair, it replays from its last snapshot
    and conservation holds exactly: the loud failure lost nothing.
    """
    stack = pg_stack
    topic = stack.topics["RTEP_EVENTS_TOPIC"]
    workload = build_workload(2000, seed=3, malformed_share=0.02, duplicate_share=0.02)
    first, second = workload.messages[:1000], workload.messages[1000:]
    produce_messages(stack.brokers, topic, first)
    limit = {"RTEP_SINK_MAX_RETRY_SECONDS": "5"}
    proc = stack.start_pipeline(**limit)
    wait_until(lambda: sum(counts(stack)) > 0, timeout=60, what="a first write")
    private_pg.stop()
    stopped_at = time.monotonic()
    produce_messages(stack.brokers, topic, second)
    try:
        code = proc.wait(timeout=60)
    finally:
        stop_process(proc)
    took = time.monotonic() - stopped_at
    log = full_log(stack)
    assert code != 0, log
    assert "PostgreSQL unavailable" in log and "RTEP_DATABASE_URL" in log, log
    assert "RTEP_SINK_MAX_RETRY_SECONDS" in log, log
    assert 5 <= took < 5 + 15, f"took {took:.1f}s to give up with a 5 s limit"

    private_pg.start()
    proc = stack.start_pipeline(**limit)
    try:
        wait_all_stored(stack, workload, proc)
    finally:
        assert stop_process(proc) == 0, stack.pipeline_log()
    result = assert_conservation(stack, workload, dlq="repeats")
    record_figures(
        "postgres_down_for_good", exit_code=code, seconds_to_fail=round(took, 1),
        produced=result.produced, stored=result.stored, events_lost=0,
    )  # fmt: skip
