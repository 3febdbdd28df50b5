"""Sinks whose writes run on a thread of their own, flushed at every Bytewax epoch boundary.

Why: a synchronous ``write_batch`` holds the whole dataflow while PostgreSQL or Redis works on the
batch (about a third of the worker's wall time in the benchmark). Here the flow hands its items
to a ``BackgroundWriter`` and goes on; one thread per sink writes them **in order**, each write
taking everything that piled up meanwhile (group commit: big batches under load, small ones, so
low latency, when idle).

Why it keeps the guarantees:

- **No loss on a crash.** The sinks are ``FixedPartitionedSink``: Bytewax calls each partition's
  ``snapshot()`` when an epoch closes, and the epoch's Kafka offsets are committed to the
  recovery store only after every snapshot of that epoch is in. ``snapshot()`` waits until every
  item handed over so far is written, so offsets never run ahead of the data.
- **Back-pressure.** At most ``max_pending`` records (a ``CacheWrites`` counts those it holds)
  wait for the writer; beyond that the flow blocks in ``write_batch`` (a backend outage still
  freezes consumption, memory stays bounded).
  ``rtep_sink_blocked_workers{sink}`` counts the workers waiting there.
- **Errors stop the flow.** A write that fails for good (``BackendUnavailable`` after the retry
  policy gives up, or a bug) is raised by the next ``write_batch`` or ``snapshot`` of any
  partition of that sink, so the flow exits non-zero as before.

All partitions of a sink in one process share its writer (one connection per sink and process),
so the partition count only spreads the work over workers and costs nothing.
"""

from __future__ import annotations

import threading
import time
from abc import abstractmethod
from collections.abc import Callable
from typing import Generic, Protocol, TypeVar
from zlib import adler32

from bytewax.outputs import FixedPartitionedSink, StatefulSinkPartition

from rtep.core.logs import get_logger
from rtep.core.metrics import SINK_BLOCKED_WORKERS

X = TypeVar("X")
C = TypeVar("C")
log = get_logger("rtep.sinks.background")


class BatchWriter(Protocol[X]):
    """A synchronous writer: ``write_batch`` returns once the items are stored."""

    def write_batch(self, items: list[X]) -> None: ...

    def close(self) -> None: ...


class BackgroundWriter(Generic[X]):
    """One thread writing, in order, what the flow submits; ``flush`` waits until it is stored."""

    def __init__(
        self,
        name: str,
        writer: BatchWriter[X],
        max_pending: int,
        close_timeout: float = 10.0,
        linger: float = 0.0,
    ) -> None:
        self.name = name
        self._close_timeout = close_timeout
        self._linger = linger
        self._writer = writer
        self._max_pending = max_pending
        self._cond = threading.Condition()
        self._pending: list[X] = []
        self._queued = 0  # records in _pending: what max_pending bounds
        self._submitted = 0  # items handed over so far
        self._written = 0  # of those, items stored
        self._error: BaseException | None = None
        self._stopping = False
        self._flushing = 0  # callers waiting in flush: the writer stops lingering for them
        self._blocked = SINK_BLOCKED_WORKERS.labels(name)
        self._blocked.set(0)
        self._thread = threading.Thread(target=self._run, name=f"rtep-sink-{name}", daemon=True)
        self._thread.start()

    def submit(self, items: list[X], records: int | None = None) -> None:
        """Queue items for the writer; wait while ``max_pending`` records are queued
        (back-pressure). ``records``: how many the items hold, when not one each."""
        if not items:
            return
        with self._cond:
            if not self._has_room():
                with self._blocked.track_inprogress():  # rtep_sink_blocked_workers while waiting
                    self._cond.wait_for(self._has_room)
            self._raise_failed()
            self._pending.extend(items)
            self._queued += len(items) if records is None else records
            self._submitted += len(items)
            self._cond.notify_all()

    def flush(self) -> None:
        """Return once everything submitted before this call is stored; raise the writer's error."""
        with self._cond:
            target = self._submitted
            self._flushing += 1
            self._cond.notify_all()
            try:
                while self._written < target and self._error is None:
                    self._cond.wait()
            finally:
                self._flushing -= 1
            self._raise_failed()

    def close(self) -> None:
        """Write what is queued, stop the thread and close the synchronous writer.

        Never raises: a failure has already been raised by ``submit``/``flush`` (``snapshot``
        flushes at the end of every epoch, the last one included), and ``close`` runs while
        Bytewax tears the flow down, where an exception would only hide that first error. Waits
        at most ``close_timeout`` (a backend may be down): what is left is replayed on restart,
        from the last snapshot.
        """
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        self._thread.join(self._close_timeout)
        if self._thread.is_alive():
            log.warning("sink writer still busy at shutdown", sink=self.name)
            return
        try:
            self._writer.close()
        except Exception as exc:
            log.warning("closing a sink writer failed", sink=self.name, error=str(exc))

    def _has_room(self) -> bool:
        """A submit may go ahead: fewer than ``max_pending`` queued, or the writer failed."""
        return self._queued < self._max_pending or self._error is not None

    def _raise_failed(self) -> None:
        if self._error is not None:
            raise RuntimeError(
                f"sink {self.name!r} stopped writing: {self._error}"
            ) from self._error

    def _must_write_now(self) -> bool:
        """Stop lingering: the flow waits for the writer (flush, close, or a full queue)."""
        return bool(self._stopping or self._flushing or self._queued >= self._max_pending)

    def _run(self) -> None:
        """The writer thread: take everything queued, write it in one go, repeat.

        With ``linger``, a write starts at least ``linger`` seconds after the previous one
        started (unless the flow is waiting for it), so that each write carries more.
        """
        started = float("-inf")
        while True:
            with self._cond:
                while not self._pending and not self._stopping:
                    self._cond.wait()
                if self._linger:
                    wait = started + self._linger - time.monotonic()
                    self._cond.wait_for(self._must_write_now, timeout=max(wait, 0.0))
                if not self._pending:
                    return
                batch, self._pending, self._queued = self._pending, [], 0
                self._cond.notify_all()  # room again for a blocked submit
            started = time.monotonic()
            try:
                self._writer.write_batch(batch)
            except BaseException as exc:
                log.error("sink write failed: stopping the flow", sink=self.name, error=str(exc))
                with self._cond:
                    self._error = exc
                    self._cond.notify_all()
                return
            with self._cond:
                self._written += len(batch)
                self._cond.notify_all()


class ChunkSink(FixedPartitionedSink[C, None], Generic[C, X]):
    """Base of the sinks written by a ``BackgroundWriter``: subclasses say how to ``open`` one
    and what a partition hands it (``unchunk``).

    Items arrive as chunks, ``(key, C)``: ``(key, [values…])`` for a ``BackgroundSink``. The
    sink's partitions are named like the input's (``parts`` lists them, e.g. the Kafka source's ``list_parts``), and a chunk keyed by
    an input partition's name goes to the sink partition of that name. Bytewax places partitions
    on workers by their sorted names alone (``calc_primaries`` in its ``src/timely.rs``), so a
    sink partition lives on the worker that reads the input partition of the same name: a
    partition's events are written where they were read, never pickled to another process
    (``tests/integration/test_partition_placement.py`` pins this). Other keys are spread by hash.
    Every partition in a process hands its values to the sink's one writer.
    """

    name: str

    def __init__(
        self,
        parts: Callable[[], list[str]] | None = None,
        max_pending: int = 20_000,
        linger: float = 0.0,
    ) -> None:
        self.parts = parts or _one_part
        self.max_pending = max_pending
        self.linger = linger
        self._lock = threading.Lock()
        self._writer: BackgroundWriter[X] | None = None
        self._users = 0
        self._index: dict[str, int] = {}

    @abstractmethod
    def open(self) -> BatchWriter[X]:
        """A new synchronous writer (connection) for this sink."""

    @abstractmethod
    def unchunk(self, values: list[C]) -> tuple[list[X], int]:
        """What a partition hands the writer for these chunks' values, and how many records
        that is (the unit of ``max_pending``)."""

    def list_parts(self) -> list[str]:
        """The input's partition names: every one is available on every worker."""
        names = self.parts()
        self._index = {name: i for i, name in enumerate(sorted(names))}
        return names

    def part_fn(self, item_key: str) -> int:
        """The index (in sorted order) of the partition named ``item_key``; others by hash."""
        index = self._index.get(item_key)
        return index if index is not None else adler32(item_key.encode())

    def build_part(
        self, step_id: str, for_part: str, resume_state: None
    ) -> StatefulSinkPartition[C, None]:
        """A partition handing its values to this process's writer (started on first use)."""
        with self._lock:
            if self._writer is None:
                self._writer = BackgroundWriter(
                    self.name, self.open(), self.max_pending, linger=self.linger
                )
            self._users += 1
            return _Partition(self, self._writer)

    def _release(self) -> None:
        """A partition closed; the last one stops the writer (finite input ends here)."""
        with self._lock:
            self._users -= 1
            writer = self._writer if self._users == 0 else None
            if writer is not None:
                self._writer = None
        if writer is not None:
            writer.close()


class BackgroundSink(ChunkSink[list[X], X]):
    """A ``ChunkSink`` of chunks ``(key, [values…])``: the writer gets the values, one record each."""

    def unchunk(self, values: list[list[X]]) -> tuple[list[X], int]:
        """The chunks' values in order (the one chunk's list itself when alone: no copy)."""
        items = values[0] if len(values) == 1 else [v for c in values for v in c]
        return items, len(items)


def _one_part() -> list[str]:
    """One partition, for a sink used alone (tests, tools)."""
    return ["0"]


class _Partition(StatefulSinkPartition[C, None], Generic[C, X]):
    """One partition: a handle on its sink's writer. Its only state is "all written"."""

    def __init__(self, sink: ChunkSink[C, X], writer: BackgroundWriter[X]) -> None:
        self._sink = sink
        self._writer = writer
        self._closed = False

    def write_batch(self, values: list[C]) -> None:
        """Hand the chunks' values to the writer (blocks only when it is ``max_pending`` behind)."""
        self._writer.submit(*self._sink.unchunk(values))

    def snapshot(self) -> None:
        """The epoch ends: wait until everything handed over is stored, so offsets may commit."""
        self._writer.flush()

    def close(self) -> None:
        """Release the writer (Bytewax may call this more than once)."""
        if not self._closed:
            self._closed = True
            self._sink._release()
