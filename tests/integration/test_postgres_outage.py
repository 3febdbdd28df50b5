"""PostgreSQL outages against a private server: back-pressure while down, nothing lost, loud failure."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import psycopg
import pytest
from prometheus_client import REGISTRY

from rtep.commands.migrate import migrate
from sinks.postgres import EventsSink
from sinks.retry import BackendUnavailable, RetryPolicy
from tests.harness import wait_until
from tests.integration.factories import make_event
from tests.integration.private_servers import PrivatePostgres, private_postgres


@pytest.fixture
def server() -> Iterator[PrivatePostgres]:
    """A private, migrated PostgreSQL that the test may stop."""
    with private_postgres() as running:
        migrate(running.dsn)
        yield running


def errors() -> float:
    """Current rtep_sink_errors_total{sink="events"}."""
    return REGISTRY.get_sample_value("rtep_sink_errors_total", {"sink": "events"}) or 0.0


def test_write_blocks_while_down_and_completes_after(server: PrivatePostgres) -> None:
    """Scenario: PostgreSQL stops between two batches and restarts later.
    We expect: the second write_batch blocks (retrying, counted) while the server is down, which
    stops the flow consuming, and completes after the restart with every event stored once."""
    part = EventsSink(server.dsn, retry=RetryPolicy(max_retry_seconds=120, max_backoff=0.5)).open()
    first, second = [make_event(i) for i in range(100)], [make_event(i) for i in range(80, 300)]
    part.write_batch(first)
    server.stop()

    before = errors()
    failure: list[BaseException] = []

    def write() -> None:
        try:
            part.write_batch(second)
        except BaseException as exc:  # reported to the test thread
            failure.append(exc)

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    wait_until(lambda: errors() - before >= 3, timeout=30, what="three failed attempts")
    assert writer.is_alive(), "write_batch must block while PostgreSQL is down"

    server.start()
    writer.join(timeout=60)
    assert not writer.is_alive() and not failure, failure
    with psycopg.connect(server.dsn) as conn:
        ids = {r[0] for r in conn.execute("SELECT event_id::text FROM rtep.events")}
    assert ids == {e.event_id for e in first + second}


def test_a_server_that_stays_down_fails_loudly(server: PrivatePostgres) -> None:
    """Scenario: PostgreSQL goes away for longer than the retry limit.
    We expect: BackendUnavailable naming PostgreSQL and the setting to check, not a silent spin."""
    part = EventsSink(server.dsn, retry=RetryPolicy(max_retry_seconds=2, max_backoff=0.3)).open()
    part.write_batch([make_event(1)])
    server.stop()
    with pytest.raises(BackendUnavailable, match=r"PostgreSQL unavailable.*RTEP_DATABASE_URL"):
        part.write_batch([make_event(2)])


def stored() -> float:
    """Current rtep_events_stored_total{sink="events"}."""
    return REGISTRY.get_sample_value("rtep_events_stored_total", {"sink": "events"}) or 0.0


def test_crash_in_the_middle_of_a_stream_loses_nothing(server: PrivatePostgres) -> None:
    """Scenario: PostgreSQL is killed (immediate stop) while batches are being written.
    We expect: the interrupted batch is retried after the restart and the table holds exactly
    the events sent, whatever the batch the crash hit (in COPY, INSERT or COMMIT)."""
    part = EventsSink(server.dsn, retry=RetryPolicy(max_retry_seconds=120, max_backoff=0.5)).open()
    events = [make_event(i) for i in range(100_000)]
    before_stored, before_errors = stored(), errors()
    writer = threading.Thread(
        target=lambda: [part.write_batch(events[k : k + 2000]) for k in range(0, 100_000, 2000)],
        daemon=True,
    )
    writer.start()
    wait_until(lambda: stored() - before_stored > 0, timeout=30, what="a first batch stored")
    server.stop()
    wait_until(lambda: errors() - before_errors >= 1, timeout=30, what="a failed attempt")
    server.start()
    writer.join(timeout=120)
    assert not writer.is_alive()
    with psycopg.connect(server.dsn) as conn:
        ids = [r[0] for r in conn.execute("SELECT event_id::text FROM rtep.events")]
    assert len(ids) == len(set(ids)) and set(ids) == {e.event_id for e in events}
