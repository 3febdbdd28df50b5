"""Per-minute, per-type event counts and unique users in event time (overwrite semantics)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Generic, Self, TypeVar

from operators.expiry import ExpiryQueue
from operators.records import EVENT_TS as _TS
from operators.records import Event, RollupRow
from operators.snapshots import Bucket, Partial, RollupMergeSnapshot, RollupSnapshot
from operators.state import MergedClock, ShardClock
from operators.stateful import StatefulLogic

MINUTE = timedelta(minutes=1)
V = TypeVar("V")


@dataclass(frozen=True, slots=True)
class RollupParams:
    """Keep a minute bucket until the watermark is ``retention`` past its end."""

    retention: timedelta = timedelta(minutes=5)
    lateness: timedelta = timedelta(seconds=60)


@dataclass(slots=True)
class RollupStats:
    """What the metrics report (``dataflows.observers.observe_rollups`` takes the count)."""

    late_dropped: int = 0  # events not applied since the observer last took them


class _Buckets(Generic[V]):
    """Minute buckets, each kept until the highest watermark seen is ``retention`` past its end
    (then final: a bucket of that minute is not opened again)."""

    __slots__ = ("_end", "_expiry", "cutoff", "held")

    def __init__(self, retention: timedelta) -> None:
        self.held: dict[Bucket, V] = {}
        self._expiry: ExpiryQueue[Bucket] = ExpiryQueue()
        self._end = MINUTE + retention  # from a bucket's minute to its expiry
        self.cutoff: datetime | None = None  # the highest watermark seen

    def open(self, key: Bucket, value: V) -> V | None:
        """Hold ``value`` for the new bucket ``key``; None (not held) if ``key`` is final."""
        if self.cutoff is not None and key[0] + self._end < self.cutoff:
            return None
        self.held[key] = value
        self._expiry.schedule(key, key[0] + self._end)
        return value

    def advance(self, watermark: datetime | None) -> None:
        """Take ``watermark`` into the cutoff (buckets it makes final are still held)."""
        if watermark is not None and (self.cutoff is None or watermark > self.cutoff):
            self.cutoff = watermark

    def expire(self, watermark: datetime | None) -> None:
        """Forget the buckets final at ``watermark`` (or at the highest one seen before)."""
        self.advance(watermark)
        if self.cutoff is not None:
            for key in self._expiry.due(self.cutoff, self._expiry_of):
                del self.held[key]

    def earliest(self) -> datetime | None:
        """When the oldest bucket becomes final (event time)."""
        return self._expiry.earliest()

    def _expiry_of(self, key: Bucket) -> datetime | None:
        return key[0] + self._end if key in self.held else None


class MinuteRollup(StatefulLogic[Event, RollupRow, RollupStats]):
    """Per-minute counts of the event types of one partition.

    Each call emits the current totals of every bucket it touched, once. Buckets are forgotten when
    the watermark passes their end + ``retention``; an event for a forgotten (or forgettable) bucket
    is not applied, since its row could then only be overwritten with a partial count: it is
    counted in ``stats.late_dropped`` instead.
    """

    def __init__(self, params: RollupParams) -> None:
        super().__init__(params.lateness, RollupStats())
        self.params = params
        self._buckets: _Buckets[list[Any]] = _Buckets(params.retention)

    def on_batch(self, items: list[Event], now: datetime) -> list[RollupRow]:
        """Count ``items`` into their buckets; return the touched buckets' totals."""
        clock = self.clock
        clock.advance(now)
        held, touched = self._buckets, {}
        buckets = held.held
        held.advance(clock.watermark(now))  # the cutoff as the batch starts
        clock.observe_latest(map(_TS, items), now)
        minutes: dict[tuple[Any, ...], datetime] = {}  # (day, hour, minute, zone) -> the minute
        for event in items:
            ts = event.ts
            day_minute = (ts.toordinal(), ts.hour, ts.minute, ts.tzinfo)  # cheaper than a datetime
            minute = minutes.get(day_minute)
            if minute is None:
                minute = minutes[day_minute] = ts.replace(second=0, microsecond=0)
            key = (minute, event.type)
            bucket = buckets.get(key)
            if bucket is None:
                bucket = held.open(key, [0, set()])
                if bucket is None:
                    self.stats.late_dropped += 1
                    continue
            bucket[0] += 1
            bucket[1].add(event.user_id)
            touched[key] = bucket
        self._expire_at(now)
        return [RollupRow(k[0], k[1], b[0], len(b[1])) for k, b in touched.items()]

    def is_empty(self) -> bool:
        """No bucket held."""
        return not self._buckets.held

    def snapshot(self) -> RollupSnapshot:
        """Picklable immutable copy."""
        buckets = tuple((k, b[0], frozenset(b[1])) for k, b in self._buckets.held.items())
        return RollupSnapshot(1, self.clock.snapshot(), buckets, self._buckets.cutoff)

    @classmethod
    def restore(cls, saved: Any, params: RollupParams) -> Self:
        """Rebuild from a ``RollupSnapshot`` (or 0.2.0's tuple)."""
        snapshot = RollupSnapshot.of(saved)
        self = cls(params)
        self.clock = ShardClock.restore(snapshot.clock)
        for key, count, users in snapshot.buckets:
            self._buckets.open(key, [count, set(users)])
        self._buckets.cutoff = snapshot.cutoff
        return self

    def _expire(self, watermark: datetime) -> list[RollupRow]:
        """Forget the buckets that are final; never emits."""
        self._buckets.expire(watermark)
        return []

    def _earliest(self) -> datetime | None:
        return self._buckets.earliest()


class RollupMerge:
    """Where the partitions meet: a minute's row is the sum of every partition's partial row.

    Each partition's ``MinuteRollup`` counts its own users' events (a user's events are in one
    partition: producers key by userId, so unique users add up across partitions). Partials
    overwrite per partition, so a replayed or repeated partial changes nothing, and the totals do
    not depend on the order in which partitions are read. A bucket is forgotten once the merged
    watermark (the slowest partition's) is ``retention`` past its end; a partial for a forgotten
    bucket is counted in ``stats.late_dropped``. A ``MergeLogic`` (``dataflows.adapters``): not a
    ``StatefulLogic``, its input comes in per partition and leaves on release.
    """

    def __init__(self, params: RollupParams, clock: MergedClock) -> None:
        self.params = params
        self.clock = clock
        self.stats = RollupStats()
        self._buckets: _Buckets[dict[str, Partial]] = _Buckets(params.retention)
        self._touched: dict[Bucket, dict[str, Partial]] = {}

    def take(self, partition: str, rows: list[RollupRow]) -> None:
        """Record a partition's current partial rows."""
        buckets = self._buckets
        for row in rows:
            key = (row.minute, row.type)
            partials = buckets.held.get(key)
            if partials is None:
                partials = buckets.open(key, {})
                if partials is None:
                    self.stats.late_dropped += row.events
                    continue
            partials[partition] = (row.events, row.unique_users)
            self._touched[key] = partials

    def release(self, now: datetime) -> list[RollupRow]:
        """The totals of the buckets touched since the last call; forget what the watermark passed."""
        self.clock.advance(now)
        rows = [
            RollupRow(key[0], key[1], sum(p[0] for p in parts.values()),
                      sum(p[1] for p in parts.values()))
            for key, parts in self._touched.items()
        ]  # fmt: skip
        self._touched = {}
        self._buckets.expire(self.clock.watermark(now))
        return rows

    def next_tick(self) -> datetime | None:
        """While buckets are held, re-check as the merged clock advances."""
        return self.clock.tick_for(self._buckets.earliest())

    def snapshot(self) -> RollupMergeSnapshot:
        """Picklable immutable copy (the clock's marks are saved by the adapter)."""
        held = self._buckets.held.items()
        return RollupMergeSnapshot(1, tuple((key, tuple(parts.items())) for key, parts in held))

    @classmethod
    def restore(cls, saved: Any, params: RollupParams, clock: MergedClock) -> Self:
        """Rebuild from a ``RollupMergeSnapshot`` (or 0.2.0's tuple)."""
        self = cls(params, clock)
        for key, parts in RollupMergeSnapshot.of(saved).buckets:
            self._buckets.open(key, dict(parts))
        return self
