"""De-duplication by eventId within an event-time horizon, with bounded memory."""

from __future__ import annotations

from array import array
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Self

from operators.model import EVENT_TS, Event
from operators.state import ClockSnapshot, ShardClock, minus

if TYPE_CHECKING:
    from rtep.settings import Settings

# (clock, arrival-ordered event times as float64 epoch seconds, the ids joined by "\n", dupes).
# Flat bytes and one string: a snapshot of 300k ids pickles in milliseconds instead of ~0.4 s
# for a tuple of (datetime, str) pairs, and it is taken at every Bytewax snapshot interval.
DedupSnapshot = tuple[ClockSnapshot, bytes, str, int]


@dataclass(frozen=True, slots=True)
class DedupParams:
    """Remember ids ``horizon`` (event time) past the watermark, at most ``max_ids`` per shard."""

    horizon: timedelta = timedelta(seconds=3600)
    max_ids: int = 100_000
    lateness: timedelta = timedelta(seconds=60)

    @classmethod
    def from_settings(cls, settings: Settings, max_ids_total: int = 1_000_000) -> Self:
        """From RTEP_DEDUP_HORIZON_SECONDS, RTEP_ALLOWED_LATENESS_SECONDS, RTEP_USER_SHARDS.

        ``max_ids_total`` (about 250 bytes each) is split evenly over the user shards.
        """
        return cls(
            timedelta(seconds=settings.dedup_horizon_seconds),
            max(1, max_ids_total // settings.user_shards),
            timedelta(seconds=settings.allowed_lateness_seconds),
        )


class Deduplicator:
    """ShardLogic[Event, Event]: passes the first occurrence of each eventId, drops repeats.

    An id is remembered until the watermark passes its event time + ``horizon`` (ids are expired
    in arrival order, which is close to event-time order), and never more than ``max_ids`` ids: the
    oldest arrivals are evicted first. A repeat arriving after its id was forgotten passes again;
    downstream writes are idempotent on event_id, so that costs a redundant write, not a wrong row.
    """

    def __init__(self, params: DedupParams) -> None:
        self.params = params
        self._clock = ShardClock(params.lateness)
        self._seen: set[str] = set()
        self._times: deque[float] = deque()  # epoch seconds, arrival order (parallel to _ids)
        self._ids: deque[str] = deque()
        self.duplicates = 0

    def on_batch(self, items: list[Event], now: datetime) -> list[Event]:
        """The events of ``items`` whose id was not seen, in order."""
        clock = self._clock
        clock.advance(now)
        seen, times, ids = self._seen, self._times, self._ids
        out: list[Event] = []
        for event in items:
            eid = event.event_id
            if eid in seen:
                self.duplicates += 1
                continue
            seen.add(eid)
            times.append(event.ts.timestamp())
            ids.append(eid)
            out.append(event)
        clock.observe_latest(map(EVENT_TS, out), now)
        for _ in range(len(ids) - self.params.max_ids):
            times.popleft()
            seen.discard(ids.popleft())
        self._expire(now)
        return out

    def on_tick(self, now: datetime) -> list[Event]:
        """Forget ids the watermark has passed; never emits."""
        self._clock.advance(now)
        self._expire(now)
        return []

    def next_tick(self) -> datetime | None:
        """When the oldest remembered id would be forgotten."""
        if not self._times:
            return None
        oldest = datetime.fromtimestamp(self._times[0], UTC)
        return self._clock.tick_for(oldest + self.params.horizon)

    def is_empty(self) -> bool:
        """No id remembered."""
        return not self._ids

    def snapshot(self) -> DedupSnapshot:
        """Picklable immutable copy (compact: see ``DedupSnapshot``)."""
        times = array("d", self._times).tobytes()
        return (self._clock.snapshot(), times, "\n".join(self._ids), self.duplicates)

    @classmethod
    def restore(cls, snapshot: Any, params: DedupParams) -> Self:
        """Rebuild from ``snapshot`` (also the older (clock, ((ts, id), ...), dupes) form)."""
        self = cls(params)
        self._clock = ShardClock.restore(snapshot[0])
        if len(snapshot) == 3:  # written before the compact form: ((datetime, id), ...)
            self._times.extend(ts.timestamp() for ts, _ in snapshot[1])
            self._ids.extend(eid for _, eid in snapshot[1])
        else:
            self._times.extend(array("d", snapshot[1]))
            self._ids.extend(snapshot[2].split("\n") if snapshot[2] else ())
        self._seen.update(self._ids)
        self.duplicates = snapshot[-1]
        return self

    def take_duplicate_count(self) -> int:
        """Duplicates dropped since the last call (for a metric); resets the counter."""
        n, self.duplicates = self.duplicates, 0
        return n

    def ids(self) -> int:
        """Ids currently remembered."""
        return len(self._ids)

    def _expire(self, now: datetime) -> None:
        watermark = self._clock.watermark(now)
        if watermark is None:
            return
        horizon_start = minus(watermark, self.params.horizon).timestamp()
        times, ids, seen = self._times, self._ids, self._seen
        while times and times[0] < horizon_start:
            times.popleft()
            seen.discard(ids.popleft())
