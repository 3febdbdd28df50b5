"""A Redis that answers but refuses writes (out of memory, read-only replica): a cache outage."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
import redis

from rtep.core.embedded import free_port
from tests.faults.support import (
    assert_conservation,
    assert_redis_caught_up,
    counts,
    metric,
    produce_messages,
    record_figures,
    wait_all_stored,
)
from tests.faults.test_redis_outage import phase
from tests.faults.workload import BASE, Workload
from tests.harness import Stack, stop_process, wait_until
from tests.integration.private_servers import private_redis


def fill_to_maxmemory(client: redis.Redis) -> Callable[[], None]:
    """``maxmemory 2mb`` + ``noeviction`` with more than 2 MB of other data in it: every write
    answers OOM (filled *to* the limit instead, freed client buffers let small writes through
    now and then); returns the repair (the filler deleted, the limit lifted)."""
    filler = [f"filler:{i}" for i in range(300)]
    client.mset(dict.fromkeys(filler, "x" * 10_000))
    client.config_set("maxmemory-policy", "noeviction")
    client.config_set("maxmemory", "2mb")
    assert int(client.info("memory")["used_memory"]) > 2 * 1024 * 1024

    def repair() -> None:
        client.delete(*filler)
        client.config_set("maxmemory", "0")

    return repair


def make_read_only(client: redis.Redis) -> Callable[[], None]:
    """Turn the server into a replica of a master that is not there (``replica-read-only``):
    writes answer READONLY; returns the repair (promoted back, as after a failover)."""
    client.config_set("replica-read-only", "yes")
    client.replicaof("127.0.0.1", str(free_port()))
    return lambda: client.replicaof("NO", "ONE")


@pytest.mark.parametrize("fault", [fill_to_maxmemory, make_read_only], ids=["oom", "readonly"])
def test_a_redis_refusing_writes_never_stops_the_flow_and_is_caught_up(
    stack: Stack, fault: Callable[[redis.Redis], Callable[[], None]]
) -> None:
    """Scenario: a private Redis serves the pipeline; users ``before*`` are written; then Redis
    refuses every write, either full (``maxmemory 2mb``, ``noeviction``: OOM) or switched to a
    read-only replica (READONLY); users ``during*`` are sent; Redis is repaired (memory freed /
    promoted back) and users ``after*`` are sent.

    We expect: PostgreSQL stores every event while Redis refuses (these replies used to kill the
    flow), the failed writes are counted in rtep_sink_errors_total{sink="redis"}, the flow stays
    up, and after the repair every user and open session touched during the fault is in Redis
    with its latest value (caught up). Conservation holds exactly in PostgreSQL.
    """
    with private_redis() as server:
        client = server.client()
        before = phase("before", 20, 3, BASE)
        during = phase("during", 30, 4, BASE + timedelta(minutes=5))
        after = phase("after", 10, 2, BASE + timedelta(minutes=10))
        workload = Workload([*before, *during, *after])
        topic = stack.topics["RTEP_EVENTS_TOPIC"]
        port = free_port()
        prefix = stack.redis_prefix
        proc = stack.start_pipeline(RTEP_REDIS_URL=server.url, RTEP_METRICS_PORT=str(port))
        try:
            produce_messages(stack.brokers, topic, before)
            wait_until(
                lambda: all(client.exists(f"{prefix}user:before{i}") for i in range(20)),
                timeout=60, what="the users sent before the fault in Redis",
            )  # fmt: skip
            repair = fault(client)
            produce_messages(stack.brokers, topic, during)
            wait_until(
                lambda: counts(stack)[0] == len(before) + len(during),
                timeout=60, what="PostgreSQL to store every event sent while Redis refuses",
            )  # fmt: skip
            wait_until(
                lambda: metric(port, "rtep_sink_errors_total", sink="redis") > 0,
                timeout=30, what="the refused Redis writes to be counted",
            )  # fmt: skip
            misses = metric(port, "rtep_sink_errors_total", sink="redis")
            assert not client.exists(f"{prefix}user:during0")
            assert proc.poll() is None, stack.pipeline_log()
            repair()
            produce_messages(stack.brokers, topic, after)
            wait_all_stored(stack, workload, proc)
            wait_until(
                lambda: all(client.exists(f"{prefix}user:after{i}") for i in range(10)),
                timeout=60, what="Redis writes to resume",
            )  # fmt: skip
            assert proc.poll() is None, stack.pipeline_log()
        finally:
            assert stop_process(proc) == 0, stack.pipeline_log()
        caught_up = assert_redis_caught_up(stack, client, "during%", "after%")
    assert caught_up == 40
    result = assert_conservation(stack, workload)
    record_figures(
        f"redis_{fault.__name__}", produced=result.produced, stored=result.stored,
        redis_misses=misses, users_caught_up=caught_up, events_lost=0,
    )  # fmt: skip
