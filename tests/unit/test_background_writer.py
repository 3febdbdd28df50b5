"""BackgroundWriter: order, group commit, flush, back-pressure, errors (a gated in-memory writer).

The real backends are covered through the flow (tests/e2e, tests/faults); here the writer is a
list behind a gate, so each test decides exactly when a write may finish.
"""

from __future__ import annotations

import threading

import pytest
from prometheus_client import REGISTRY

from sinks.background import BackgroundWriter
from tests.harness import wait_until

WAIT = 10.0  # upper bound for things that must happen; never reached when the code is right


class GatedWriter:
    """Records each write; a write blocks until the gate is open; can be told to fail."""

    def __init__(self, open_gate: bool = True) -> None:
        self.gate = threading.Event()
        if open_gate:
            self.gate.set()
        self.started = threading.Semaphore(0)
        self.writes: list[list[int]] = []
        self.fail: Exception | None = None
        self.closed = False

    def write_batch(self, items: list[int]) -> None:
        self.started.release()
        assert self.gate.wait(WAIT)
        if self.fail is not None:
            raise self.fail
        self.writes.append(list(items))

    def close(self) -> None:
        self.closed = True


def blocked_workers(sink: str) -> float:
    """The back-pressure gauge of one sink, as Prometheus would scrape it."""
    return REGISTRY.get_sample_value("rtep_sink_blocked_workers", {"sink": sink}) or 0.0


def in_thread(fn: object) -> threading.Thread:
    thread = threading.Thread(target=fn, daemon=True)  # type: ignore[arg-type]
    thread.start()
    return thread


def test_everything_submitted_is_written_in_order_and_flush_waits_for_it() -> None:
    sink = GatedWriter()
    writer = BackgroundWriter("t", sink, max_pending=1000)
    for i in range(0, 500, 7):
        writer.submit(list(range(i, min(i + 7, 500))))
    writer.flush()
    assert [x for batch in sink.writes for x in batch] == list(range(500))
    writer.close()
    assert sink.closed


def test_what_piles_up_during_a_write_goes_out_in_one_write() -> None:
    sink = GatedWriter(open_gate=False)
    writer = BackgroundWriter("t", sink, max_pending=1000)
    writer.submit([1])
    assert sink.started.acquire(timeout=WAIT)  # the writer holds [1]
    writer.submit([2])
    writer.submit([3, 4])
    sink.gate.set()
    writer.flush()
    assert sink.writes == [[1], [2, 3, 4]]
    writer.close()


def test_flush_returns_only_once_the_write_is_done() -> None:
    sink = GatedWriter(open_gate=False)
    writer = BackgroundWriter("t", sink, max_pending=1000)
    writer.submit([1, 2])
    assert sink.started.acquire(timeout=WAIT)
    flushed = in_thread(writer.flush)
    flushed.join(0.2)
    assert flushed.is_alive() and sink.writes == []
    sink.gate.set()
    flushed.join(WAIT)
    assert not flushed.is_alive() and sink.writes == [[1, 2]]
    writer.close()


def test_submit_blocks_while_max_pending_items_wait() -> None:
    sink = GatedWriter(open_gate=False)
    writer = BackgroundWriter("bp", sink, max_pending=3)
    writer.submit([1])
    assert sink.started.acquire(timeout=WAIT)  # [1] is being written; nothing queued
    writer.submit([2, 3, 4])  # 3 queued: the limit
    blocked = in_thread(lambda: writer.submit([5]))
    wait_until(lambda: blocked_workers("bp") == 1, timeout=WAIT, what="the submit to block")
    assert blocked.is_alive()
    sink.gate.set()  # the writer takes [2, 3, 4]: room again
    blocked.join(WAIT)
    assert not blocked.is_alive() and blocked_workers("bp") == 0
    writer.flush()
    assert [x for batch in sink.writes for x in batch] == [1, 2, 3, 4, 5]
    writer.close()


def test_max_pending_counts_the_records_items_hold() -> None:
    """An item holding many records (a ``CacheWrites``) counts them all for the back-pressure."""
    sink = GatedWriter(open_gate=False)
    writer = BackgroundWriter("bp-records", sink, max_pending=3)
    writer.submit([1])
    assert sink.started.acquire(timeout=WAIT)  # [1] is being written; nothing queued
    writer.submit([2], records=3)  # one item, 3 records: the limit
    blocked = in_thread(lambda: writer.submit([3]))
    wait_until(lambda: blocked_workers("bp-records") == 1, timeout=WAIT, what="the submit to block")
    sink.gate.set()
    blocked.join(WAIT)
    assert not blocked.is_alive()
    writer.flush()
    assert [x for batch in sink.writes for x in batch] == [1, 2, 3]
    writer.close()


def test_a_failed_write_is_raised_by_the_next_flush_and_submit() -> None:
    sink = GatedWriter()
    sink.fail = ConnectionError("backend gone")
    writer = BackgroundWriter("events", sink, max_pending=10)
    writer.submit([1])
    with pytest.raises(RuntimeError, match="sink 'events' stopped writing: backend gone"):
        writer.flush()
    with pytest.raises(RuntimeError, match="backend gone"):
        writer.submit([2])
    writer.close()  # never raises: the error was reported already


def test_a_submit_blocked_by_back_pressure_wakes_up_when_the_writer_fails() -> None:
    sink = GatedWriter(open_gate=False)
    sink.fail = ConnectionError("backend gone")
    writer = BackgroundWriter("t", sink, max_pending=1)
    writer.submit([1])
    assert sink.started.acquire(timeout=WAIT)
    writer.submit([2])
    errors: list[BaseException] = []

    def submit() -> None:
        try:
            writer.submit([3])
        except RuntimeError as exc:
            errors.append(exc)

    blocked = in_thread(submit)
    sink.gate.set()
    blocked.join(WAIT)
    assert not blocked.is_alive() and len(errors) == 1
    writer.close()


def test_close_writes_what_is_queued_first() -> None:
    sink = GatedWriter(open_gate=False)
    writer = BackgroundWriter("t", sink, max_pending=100)
    writer.submit([1])
    assert sink.started.acquire(timeout=WAIT)
    writer.submit([2])
    sink.gate.set()
    writer.close()
    assert sink.writes == [[1], [2]] and sink.closed


LONG = 60.0  # a linger no test waits out: only the flow's waiting can cut it short


def test_with_linger_the_next_write_waits_and_carries_what_piled_up() -> None:
    sink = GatedWriter()
    writer = BackgroundWriter("t", sink, max_pending=100, linger=LONG)
    writer.submit([1])
    assert sink.started.acquire(timeout=WAIT)  # the first write goes at once
    wait_until(lambda: sink.writes == [[1]], timeout=WAIT, what="the first write")
    writer.submit([2])
    writer.submit([3])
    assert not sink.started.acquire(timeout=0.2)  # lingering: no second write yet
    flushed = in_thread(writer.flush)  # the flow waits: the writer stops lingering
    flushed.join(WAIT)
    assert not flushed.is_alive() and sink.writes == [[1], [2, 3]]
    writer.close()


def test_with_linger_a_full_queue_or_close_writes_at_once() -> None:
    sink = GatedWriter()
    writer = BackgroundWriter("t", sink, max_pending=3, linger=LONG)
    writer.submit([1])
    wait_until(lambda: sink.writes == [[1]], timeout=WAIT, what="the first write")
    writer.submit([2, 3, 4])  # max_pending queued: a submit would block, so no lingering
    wait_until(lambda: len(sink.writes) == 2, timeout=WAIT, what="the full queue's write")
    writer.submit([5])
    closed = in_thread(writer.close)
    closed.join(WAIT)
    assert not closed.is_alive() and sink.writes == [[1], [2, 3, 4], [5]] and sink.closed
