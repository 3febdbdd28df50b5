"""Per-minute, per-type event counts and unique users in event time (overwrite semantics)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Self

from operators.records import EVENT_TS as _TS
from operators.records import Event, RollupRow
from operators.state import Clock, ClockSnapshot, ExpiryQueue, MergedClock, ShardClock

MINUTE = timedelta(minutes=1)
_Bucket = tuple[datetime, str]  # minute (UTC, truncated), type
RollupSnapshot = tuple[
    ClockSnapshot, tuple[tuple[_Bucket, int, frozenset[str]], ...], datetime | None, int
]


@dataclass(frozen=True, slots=True)
class RollupParams:
    """Keep a minute bucket until the watermark is ``retention`` past its end."""

    retention: timedelta = timedelta(minutes=5)
    lateness: timedelta = timedelta(seconds=60)


class MinuteRollup:
    """ShardLogic[Event, RollupRow] for the event types of one shard key.

    Each call emits the current totals of every bucket it touched, once. Buckets are forgotten when
    the watermark passes their end + ``retention``; an event for a forgotten (or forgettable) bucket
    is not applied, since its row could then only be overwritten with a partial count: it is
    counted in ``late_dropped`` instead.
    """

    def __init__(self, params: RollupParams) -> None:
        self.params = params
        self.clock: Clock = ShardClock(params.lateness)
        self._buckets: dict[_Bucket, list[Any]] = {}
        self._expiry: ExpiryQueue[_Bucket] = ExpiryQueue()
        self._cutoff: datetime | None = None
        self.late_dropped = 0

    def on_batch(self, items: list[Event], now: datetime) -> list[RollupRow]:
        """Count ``items`` into their buckets; return the touched buckets' totals."""
        clock = self.clock
        clock.advance(now)
        buckets, touched = self._buckets, {}
        retention_end = MINUTE + self.params.retention
        cutoff = self._advance_cutoff(now)
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
                if cutoff is not None and key[0] + retention_end < cutoff:
                    self.late_dropped += 1
                    continue
                bucket = buckets[key] = [0, set()]
                self._expiry.schedule(key, key[0] + retention_end)
            bucket[0] += 1
            bucket[1].add(event.user_id)
            touched[key] = bucket
        self._expire(now)
        return [RollupRow(k[0], k[1], b[0], len(b[1])) for k, b in touched.items()]

    def on_tick(self, now: datetime) -> list[RollupRow]:
        """Forget buckets past retention; never emits."""
        self.clock.advance(now)
        self._expire(now)
        return []

    def next_tick(self) -> datetime | None:
        """When the oldest bucket would be forgotten."""
        return self.clock.tick_for(self._expiry.earliest())

    def is_empty(self) -> bool:
        """No bucket held."""
        return not self._buckets

    def snapshot(self) -> RollupSnapshot:
        """Picklable immutable copy."""
        buckets = tuple((k, b[0], frozenset(b[1])) for k, b in self._buckets.items())
        return (self.clock.snapshot(), buckets, self._cutoff, self.late_dropped)

    @classmethod
    def restore(cls, snapshot: RollupSnapshot, params: RollupParams) -> Self:
        """Rebuild from ``snapshot``."""
        clock, buckets, cutoff, late = snapshot
        self = cls(params)
        self.clock = ShardClock.restore(clock)
        for key, count, users in buckets:
            self._buckets[key] = [count, set(users)]
            self._expiry.schedule(key, key[0] + MINUTE + params.retention)
        self._cutoff, self.late_dropped = cutoff, late
        return self

    def take_late_dropped(self) -> int:
        """Events not applied since the last call (for a metric); resets the counter."""
        n, self.late_dropped = self.late_dropped, 0
        return n

    def _advance_cutoff(self, now: datetime) -> datetime | None:
        """The highest watermark seen: buckets ending before it minus retention are final."""
        watermark = self.clock.watermark(now)
        if watermark is not None and (self._cutoff is None or watermark > self._cutoff):
            self._cutoff = watermark
        return self._cutoff

    def _expire(self, now: datetime) -> None:
        cutoff = self._advance_cutoff(now)
        if cutoff is None:
            return
        for key in self._expiry.due(cutoff, self._expiry_of):
            del self._buckets[key]

    def _expiry_of(self, key: _Bucket) -> datetime | None:
        return key[0] + MINUTE + self.params.retention if key in self._buckets else None


_Partial = tuple[int, int]  # one partition's (events, unique users) of a bucket
RollupMergeSnapshot = tuple[tuple[tuple[_Bucket, tuple[tuple[str, _Partial], ...]], ...], int]


class RollupMerge:
    """Where the partitions meet: a minute's row is the sum of every partition's partial row.

    Each partition's ``MinuteRollup`` counts its own users' events (a user's events are in one
    partition: producers key by userId, so unique users add up across partitions). Partials
    overwrite per partition, so a replayed or repeated partial changes nothing, and the totals do
    not depend on the order in which partitions are read. A bucket is forgotten once the merged
    watermark (the slowest partition's) is ``retention`` past its end; a partial for a forgotten
    bucket is counted in ``late_dropped``.
    """

    def __init__(self, params: RollupParams, clock: MergedClock) -> None:
        self.params = params
        self.clock = clock
        self._buckets: dict[_Bucket, dict[str, _Partial]] = {}
        self._expiry: ExpiryQueue[_Bucket] = ExpiryQueue()
        self._touched: dict[_Bucket, dict[str, _Partial]] = {}
        self._cutoff: datetime | None = None
        self.late_dropped = 0

    def take(self, partition: str, rows: list[RollupRow]) -> None:
        """Record a partition's current partial rows."""
        retention_end = MINUTE + self.params.retention
        cutoff = self._cutoff
        for row in rows:
            key = (row.minute, row.type)
            partials = self._buckets.get(key)
            if partials is None:
                if cutoff is not None and row.minute + retention_end < cutoff:
                    self.late_dropped += row.events
                    continue
                partials = self._buckets[key] = {}
                self._expiry.schedule(key, row.minute + retention_end)
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
        watermark = self.clock.watermark(now)
        if watermark is not None and (self._cutoff is None or watermark > self._cutoff):
            self._cutoff = watermark
        if self._cutoff is not None:
            for key in self._expiry.due(self._cutoff, self._expiry_of):
                del self._buckets[key]
        return rows

    def next_tick(self) -> datetime | None:
        """While buckets are held, re-check as the merged clock advances."""
        return self.clock.tick_for(self._expiry.earliest())

    def snapshot(self) -> RollupMergeSnapshot:
        """Picklable immutable copy (the clock's marks are saved by the adapter)."""
        buckets = tuple((key, tuple(parts.items())) for key, parts in self._buckets.items())
        return (buckets, self.late_dropped)

    @classmethod
    def restore(
        cls, snapshot: RollupMergeSnapshot, params: RollupParams, clock: MergedClock
    ) -> Self:
        """Rebuild from ``snapshot``."""
        buckets, late = snapshot
        self = cls(params, clock)
        for key, parts in buckets:
            self._buckets[key] = dict(parts)
            self._expiry.schedule(key, key[0] + MINUTE + params.retention)
        self.late_dropped = late
        return self

    def take_late_dropped(self) -> int:
        """Events not applied since the last call (for a metric); resets the counter."""
        n, self.late_dropped = self.late_dropped, 0
        return n

    def _expiry_of(self, key: _Bucket) -> datetime | None:
        return key[0] + MINUTE + self.params.retention if key in self._buckets else None
