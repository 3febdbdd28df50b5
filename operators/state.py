"""The shape of every stateful operator, and the event-time machinery they share.

A ``ShardLogic`` instance holds the state of one shard key (many users, IPs or types), so the
dataflow keeps a bounded number of Bytewax keys. Time comes in two kinds:

* event time: ``Event.ts``; windows and sessions are defined on it;
* wall time: the ``now`` the adapter injects; it only advances the watermark of an idle shard and
  schedules ``on_tick`` calls.

The watermark of a shard follows bytewax's ``EventClock``: ``max event ts - lateness + (now - wall
time when that max was seen)``. The max is clamped to the wall clock, so an event stamped in the
future (validation allows some skew) cannot push the watermark ahead of real time and make every
following event late.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Hashable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Generic, Protocol, TypeVar

In = TypeVar("In")
Out = TypeVar("Out")
K = TypeVar("K", bound=Hashable)

MIN_TICK = timedelta(seconds=1)
"""``next_tick`` is never closer than this to the last ``now``: no busy loop (bytewax #578)."""

EPSILON = timedelta(microseconds=1)
_MIN = datetime.min.replace(tzinfo=UTC)
_UNIX_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def to_micros(ts: datetime) -> int:
    """``ts`` as whole microseconds since the Unix epoch: exact for every aware datetime.

    State that is snapshotted often keeps times this way (in ``array("q")`` columns): an int64
    column pickles as one block, a datetime object per entry pickles one call at a time.
    """
    return (ts - _UNIX_EPOCH) // EPSILON


def from_micros(micros: int) -> datetime:
    """Inverse of ``to_micros`` (a UTC datetime)."""
    return _UNIX_EPOCH + timedelta(microseconds=micros)


def minus(ts: datetime, delta: timedelta) -> datetime:
    """``ts - delta``, saturating at the first representable instant instead of raising.

    A valid event may carry any past timestamp (0001-01-01T00:00:00Z included): subtracting a
    window or a lateness from it must not raise OverflowError and stop the flow.
    """
    return ts - delta if ts - _MIN > delta else _MIN


class ShardLogic(Protocol[In, Out]):
    """What the generic Bytewax adapter drives: a batch in, results out, ticks for timeouts."""

    def on_batch(self, items: list[In], now: datetime) -> list[Out]:
        """Process ``items`` (arrival order) at wall time ``now``; return what they produce."""
        ...

    def on_tick(self, now: datetime) -> list[Out]:
        """Close or expire whatever the watermark at wall time ``now`` has passed."""
        ...

    def next_tick(self) -> datetime | None:
        """Wall time of the next needed ``on_tick``; None when nothing is pending."""
        ...

    def is_empty(self) -> bool:
        """True when the shard holds nothing, so the adapter can discard it."""
        ...

    def snapshot(self) -> object:
        """A picklable copy that ``restore`` turns back into an equal instance."""
        ...


ClockSnapshot = tuple[timedelta, datetime | None, datetime | None, datetime | None]


class ShardClock:
    """Watermark of one shard in event time, plus the wall time needed to schedule ticks."""

    __slots__ = ("_max_ts", "_wall_at_max", "last_now", "lateness")

    def __init__(self, lateness: timedelta) -> None:
        self.lateness = lateness
        self._max_ts: datetime | None = None
        self._wall_at_max: datetime | None = None
        self.last_now: datetime | None = None

    def advance(self, now: datetime) -> None:
        """Record the wall time of the current call (the floor of ``next_tick``)."""
        self.last_now = now

    def observe(self, ts: datetime, now: datetime) -> None:
        """Take an event's time into account (clamped to ``now``)."""
        ts = min(ts, now)
        if self._max_ts is None or ts > self._max_ts:
            self._max_ts = ts
            self._wall_at_max = now

    def observe_latest(self, timestamps: Iterable[datetime], now: datetime) -> None:
        """``observe`` the latest of ``timestamps`` only: the same watermark, one call a batch."""
        latest = max(timestamps, default=None)
        if latest is not None:
            self.observe(latest, now)

    def watermark(self, now: datetime) -> datetime | None:
        """Event time below which data is late, at wall time ``now``; None before any event."""
        if self._max_ts is None or self._wall_at_max is None:
            return None
        idle = now - self._wall_at_max
        idle = max(idle, timedelta(0))
        return minus(self._max_ts, self.lateness) + idle

    def tick_for(self, expiry: datetime | None) -> datetime | None:
        """Wall time at which the watermark passes ``expiry`` if event time follows wall time."""
        if expiry is None or self._max_ts is None or self._wall_at_max is None:
            return None
        wall = self._wall_at_max + (expiry - minus(self._max_ts, self.lateness)) + EPSILON
        floor = (self.last_now or self._wall_at_max) + MIN_TICK
        return wall if wall > floor else floor

    def snapshot(self) -> ClockSnapshot:
        """Immutable state for recovery."""
        return (self.lateness, self._max_ts, self._wall_at_max, self.last_now)

    @classmethod
    def restore(cls, snap: ClockSnapshot) -> ShardClock:
        """Inverse of ``snapshot``."""
        clock = cls(snap[0])
        clock._max_ts, clock._wall_at_max, clock.last_now = snap[1], snap[2], snap[3]
        return clock


class ExpiryQueue(Generic[K]):
    """Lazy min-heap of event-time expiries per key.

    Each key has one live heap entry whose time is a lower bound of the key's real expiry, so an
    event that pushes an expiry later costs nothing (no heap operation): the entry is re-pushed
    with the real time when it surfaces. Stale entries are skipped.
    """

    __slots__ = ("_at", "_heap")

    def __init__(self, scheduled: tuple[tuple[K, datetime], ...] = ()) -> None:
        self._at: dict[K, datetime] = dict(scheduled)
        self._heap: list[tuple[datetime, K]] = [(at, key) for key, at in scheduled]
        heapq.heapify(self._heap)

    def schedule(self, key: K, at: datetime) -> None:
        """Make sure ``key`` surfaces no later than ``at``."""
        current = self._at.get(key)
        if current is None or at < current:
            self._at[key] = at
            heapq.heappush(self._heap, (at, key))

    def earliest(self) -> datetime | None:
        """The lower bound of the earliest expiry (None when nothing is scheduled)."""
        heap, at = self._heap, self._at
        while heap and at.get(heap[0][1]) != heap[0][0]:
            heapq.heappop(heap)
        return heap[0][0] if heap else None

    def due(self, watermark: datetime, expiry_of: Callable[[K], datetime | None]) -> list[K]:
        """Keys whose real expiry (``expiry_of``) is before ``watermark``, in expiry order.

        Returned keys are unscheduled; ``expiry_of`` returning None means the key is gone.
        """
        heap, at = self._heap, self._at
        due: list[K] = []
        while heap and heap[0][0] < watermark:
            when, key = heapq.heappop(heap)
            if at.get(key) != when:
                continue
            actual = expiry_of(key)
            if actual is None or actual <= when:
                del at[key]
                if actual is not None:
                    due.append(key)
            else:  # surfaces again at its real time (maybe in this same call)
                at[key] = actual
                heapq.heappush(heap, (actual, key))
        return due

    def __len__(self) -> int:
        return len(self._at)

    def snapshot(self) -> tuple[tuple[K, datetime], ...]:
        """Immutable state for recovery (the live entries only)."""
        return tuple(self._at.items())
