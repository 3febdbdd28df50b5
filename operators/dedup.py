"""De-duplication by eventId within an event-time horizon, with bounded memory."""

from __future__ import annotations

from array import array
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Self

from operators.records import EVENT_TS, Event
from operators.snapshots import DedupSnapshot, Segment
from operators.state import ShardClock, minus
from operators.stateful import StatefulLogic

SEGMENT_IDS = 512
"""Ids per segment of the id log: a snapshot re-joins only the segments that changed."""


class _Segment:
    """Up to ``SEGMENT_IDS`` remembered ids in arrival order, and their cached snapshot form."""

    __slots__ = ("frozen", "ids", "times")

    def __init__(self) -> None:
        self.times = array("d")  # event time, epoch seconds (parallel to ids)
        self.ids: list[str] = []
        self.frozen: Segment | None = None

    def snapshot(self) -> Segment:
        """The segment as (bytes, str), computed once until it changes again."""
        if self.frozen is None:
            self.frozen = (self.times.tobytes(), "\n".join(self.ids))
        return self.frozen


class _IdLog:
    """Remembered ids in arrival order: appended at the tail, forgotten from the head.

    Kept in segments so that a snapshot, taken at every Bytewax snapshot interval while the whole
    flow waits, pickles cached strings: joining 1M ids at each snapshot took 0.23-0.39 s.
    Only the head and the tail segment change between two snapshots.
    """

    __slots__ = ("_segments", "_size")

    def __init__(self) -> None:
        self._segments: deque[_Segment] = deque()
        self._size = 0

    def __len__(self) -> int:
        return self._size

    def append(self, ts: float, event_id: str) -> None:
        """Remember one more id (the newest)."""
        segments = self._segments
        if not segments or len(segments[-1].ids) >= SEGMENT_IDS:
            segments.append(_Segment())
        tail = segments[-1]
        tail.times.append(ts)
        tail.ids.append(event_id)
        tail.frozen = None
        self._size += 1

    def oldest_time(self) -> float | None:
        """Event time of the oldest remembered id."""
        return self._segments[0].times[0] if self._segments else None

    def pop_oldest(self, count: int, before: float | None = None) -> list[str]:
        """Forget up to ``count`` oldest ids (only those with a time below ``before``, if given,
        stopping at the first that is not); return them."""
        gone: list[str] = []
        segments = self._segments
        while segments and len(gone) < count:
            head = segments[0]
            n = min(len(head.ids), count - len(gone))
            if before is not None:
                times, k = head.times, 0
                while k < n and times[k] < before:
                    k += 1
                n = k
            gone.extend(head.ids[:n])
            if n == len(head.ids):
                segments.popleft()
                continue
            if n:
                del head.ids[:n]
                del head.times[:n]
                head.frozen = None
            break
        self._size -= len(gone)
        return gone

    def snapshot(self) -> tuple[Segment, ...]:
        """Every segment, oldest first."""
        return tuple(segment.snapshot() for segment in self._segments)

    def ids(self) -> Iterator[str]:
        """Every remembered id, oldest first."""
        for segment in self._segments:
            yield from segment.ids

    @classmethod
    def restore(cls, segments: tuple[Segment, ...]) -> _IdLog:
        """Inverse of ``snapshot`` (the segments stay as they were, their snapshot cached)."""
        log = cls()
        for frozen in segments:
            segment = _Segment()
            segment.times.frombytes(frozen[0])
            segment.ids = frozen[1].split("\n") if frozen[1] else []
            segment.frozen = frozen
            if segment.ids:
                log._segments.append(segment)
                log._size += len(segment.ids)
        return log


@dataclass(frozen=True, slots=True)
class DedupParams:
    """Remember ids ``horizon`` (event time) past the watermark, at most ``max_ids`` per shard."""

    horizon: timedelta = timedelta(seconds=3600)
    max_ids: int = 100_000
    lateness: timedelta = timedelta(seconds=60)


@dataclass(slots=True)
class DedupStats:
    """What the metrics report (``dataflows.observers.observe_dedup`` takes the count)."""

    duplicates: int = 0  # repeats dropped since the observer last took them


class Deduplicator(StatefulLogic[Event, Event, DedupStats]):
    """Passes the first occurrence of each eventId, drops repeats.

    An id is remembered until the watermark passes its event time + ``horizon`` (ids are expired
    in arrival order, which is close to event-time order), and never more than ``max_ids`` ids: the
    oldest arrivals are evicted first. A repeat arriving after its id was forgotten passes again;
    downstream writes are idempotent on event_id, so that costs a redundant write, not a wrong row.
    """

    def __init__(self, params: DedupParams) -> None:
        super().__init__(params.lateness, DedupStats())
        self.params = params
        self._seen: set[str] = set()
        self._log = _IdLog()

    def on_batch(self, items: list[Event], now: datetime) -> list[Event]:
        """The events of ``items`` whose id was not seen, in order."""
        clock = self.clock
        clock.advance(now)
        seen, log = self._seen, self._log
        out: list[Event] = []
        duplicates = 0
        for event in items:
            eid = event.event_id
            if eid in seen:
                duplicates += 1
                continue
            seen.add(eid)
            log.append(event.ts.timestamp(), eid)
            out.append(event)
        self.stats.duplicates += duplicates
        clock.observe_latest(map(EVENT_TS, out), now)
        if len(log) > self.params.max_ids:
            seen.difference_update(log.pop_oldest(len(log) - self.params.max_ids))
        self._expire_at(now)
        return out

    def is_empty(self) -> bool:
        """No id remembered."""
        return not self._log

    def snapshot(self) -> DedupSnapshot:
        """Picklable immutable copy (compact and mostly cached: see ``_IdLog``)."""
        return DedupSnapshot(1, self.clock.snapshot(), self._log.snapshot())

    @classmethod
    def restore(cls, saved: Any, params: DedupParams) -> Self:
        """Rebuild from a ``DedupSnapshot`` (or 0.2.0's tuple)."""
        snapshot = DedupSnapshot.of(saved)
        self = cls(params)
        self.clock = ShardClock.restore(snapshot.clock)
        self._log = _IdLog.restore(snapshot.segments)
        self._seen.update(self._log.ids())
        return self

    def ids(self) -> int:
        """Ids currently remembered."""
        return len(self._log)

    def _expire(self, watermark: datetime) -> list[Event]:
        """Forget the ids more than ``horizon`` before ``watermark``; never emits."""
        horizon_start = minus(watermark, self.params.horizon).timestamp()
        oldest = self._log.oldest_time()
        if oldest is not None and oldest < horizon_start:
            self._seen.difference_update(self._log.pop_oldest(len(self._log), horizon_start))
        return []

    def _earliest(self) -> datetime | None:
        """When the oldest remembered id falls out of the horizon."""
        oldest = self._log.oldest_time()
        return None if oldest is None else datetime.fromtimestamp(oldest, UTC) + self.params.horizon
