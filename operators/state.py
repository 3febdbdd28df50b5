"""The shape of every stateful operator, and the event-time machinery they share.

A ``ShardLogic`` instance holds the state of many subjects: the users of one Kafka partition
(``dataflows.partition_stage``), or, where partitions meet, the IPs of one shard or every rollup
bucket. Time comes in two kinds:

* event time: ``Event.ts``; windows and sessions are defined on it;
* wall time: the ``now`` the adapter injects; it only advances the watermark of an input that is
  caught up (nothing left to read) and schedules ``on_tick`` calls.

Event time progresses per Kafka partition (see docs/semantics.md): the operators of one partition
observe that partition's events, in its order, and share one ``InputProgress`` that says whether
the partition is caught up. The watermark is ``max event ts - lateness``, plus the wall time spent
caught up: a partition with a backlog never advances by wall time (a paused or slow partition is
not idle), one at its end does, as bytewax's ``EventClock`` would. The max is clamped to the wall
clock, so an event stamped in the future (validation allows some skew) cannot push the watermark
ahead of real time and make every following event late. Where partitions meet, ``MergedClock``
takes the minimum over them, leaving out those that have been quiet at their end for a while.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Generic, NamedTuple, Protocol, TypeVar

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


@dataclass(slots=True)
class InputProgress:
    """How far one input partition has been read, shared by the clocks of its operators.

    ``caught_up_since``: wall time since which the partition has had nothing left to read (None
    while it has a backlog). ``follow``: the latest event time of the other partitions read by
    this process; a caught-up partition's clock may move up to it, so that a quiet partition's
    sessions close with the stream's time, not only after wall time has passed.
    """

    caught_up_since: datetime | None = None
    follow: datetime | None = None


class ShardClock:
    """Watermark in event time of one input partition (or of a standalone logic in tests).

    Without ``progress`` (unit tests, a logic used alone) the input counts as always caught up:
    idle wall time advances the watermark, as before partitions were tracked.
    """

    __slots__ = ("_max_ts", "_wall_at_max", "last_now", "lateness", "progress")

    def __init__(self, lateness: timedelta, progress: InputProgress | None = None) -> None:
        self.lateness = lateness
        self._max_ts: datetime | None = None
        self._wall_at_max: datetime | None = None
        self.last_now: datetime | None = None
        self.progress = progress

    def latest(self) -> datetime | None:
        """The latest (clamped) event time observed."""
        return self._max_ts

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

    def _base(self) -> tuple[datetime, datetime] | None:
        """(event time, wall time from which idle time counts); None while time cannot advance
        by itself (no event yet, or a partition with a backlog)."""
        top, wall = self._max_ts, self._wall_at_max
        if top is None or wall is None:
            return None
        progress = self.progress
        if progress is None:
            return top, wall
        since = progress.caught_up_since
        if since is None:
            return None
        follow = progress.follow
        if follow is not None and follow > top:
            top = follow
        return top, (since if since > wall else wall)

    def watermark(self, now: datetime) -> datetime | None:
        """Event time below which data is late, at wall time ``now``; None before any event."""
        if self._max_ts is None:
            return None
        base = self._base()
        if base is None:  # backlog: only the partition's own events move it
            return minus(self._max_ts, self.lateness)
        top, since = base
        idle = now - since
        return minus(top, self.lateness) + (idle if idle > timedelta(0) else timedelta(0))

    def tick_for(self, expiry: datetime | None) -> datetime | None:
        """Wall time at which the watermark passes ``expiry`` if event time follows wall time
        (None when nothing is pending or only new events can move the watermark)."""
        base = None if expiry is None else self._base()
        if expiry is None or base is None:
            return None
        top, since = base
        wall = since + (expiry - minus(top, self.lateness)) + EPSILON
        floor = (self.last_now or since) + MIN_TICK
        return wall if wall > floor else floor

    def snapshot(self) -> ClockSnapshot:
        """Immutable state for recovery."""
        return (self.lateness, self._max_ts, self._wall_at_max, self.last_now)

    @classmethod
    def restore(cls, snap: ClockSnapshot) -> ShardClock:
        """Inverse of ``snapshot`` (progress is not state: the input sets it again)."""
        clock = cls(snap[0])
        clock._max_ts, clock._wall_at_max, clock.last_now = snap[1], snap[2], snap[3]
        return clock


class PartitionMark(NamedTuple):
    """How far one input partition's event time has come, sent to steps where partitions meet."""

    partition: str
    latest: datetime | None  # latest (clamped) event time read; None before any event
    caught_up_since: datetime | None  # wall time since which it has nothing left to read
    parts: int  # partitions of the input: a merged clock waits until it has heard from all


MarksSnapshot = tuple[PartitionMark, ...]


class MergedClock:
    """The clock of a step fed by several partitions: the minimum of their event times.

    A partition's *frontier* is its latest event time, plus the wall time it has been caught up
    for; the merged frontier is the minimum over the partitions, leaving out those caught up for
    ``idle_timeout`` or more (a quiet partition does not hold the others back; one with a backlog
    always counts). Nothing advances until every partition has reported. The watermark is the
    frontier minus ``lateness``. It has ``ShardClock``'s interface, so a rule or rollup written
    for one partition runs unchanged where partitions meet; ``observe`` is a no-op there.
    """

    __slots__ = ("_marks", "idle_timeout", "last_now", "lateness")

    def __init__(self, lateness: timedelta, idle_timeout: timedelta) -> None:
        self.lateness = lateness
        self.idle_timeout = idle_timeout
        self._marks: dict[str, PartitionMark] = {}
        self.last_now: datetime | None = None

    def update(self, mark: PartitionMark) -> None:
        """Take a partition's latest mark (event time never goes back)."""
        old = self._marks.get(mark.partition)
        if old is not None and old.latest is not None and (
            mark.latest is None or mark.latest < old.latest
        ):
            mark = mark._replace(latest=old.latest)
        self._marks[mark.partition] = mark

    def advance(self, now: datetime) -> None:
        """Record the wall time of the current call."""
        self.last_now = now

    def observe(self, ts: datetime, now: datetime) -> None:
        """Events do not move a merged clock: the partitions' marks do."""

    def observe_latest(self, timestamps: Iterable[datetime], now: datetime) -> None:
        """See ``observe``."""

    def frontier(self, now: datetime) -> datetime | None:
        """Event time up to which every counted partition has been read; None while unknown."""
        marks = self._marks
        if not marks or len(marks) < next(iter(marks.values())).parts:
            return None
        counted: list[datetime] = []
        idle: list[datetime] = []
        waiting = False
        for mark in marks.values():
            since = mark.caught_up_since
            if mark.latest is None:
                if since is None or now - since < self.idle_timeout:
                    waiting = True
                continue
            front = mark.latest if since is None or now <= since else mark.latest + (now - since)
            if since is not None and now - since >= self.idle_timeout:
                idle.append(front)
            else:
                counted.append(front)
        if waiting:
            return None
        if counted:
            return min(counted)
        return min(idle) if idle else None

    def watermark(self, now: datetime) -> datetime | None:
        """Event time below which data is late where the partitions meet."""
        front = self.frontier(now)
        return None if front is None else minus(front, self.lateness)

    def tick_for(self, expiry: datetime | None) -> datetime | None:
        """Re-check every ``MIN_TICK`` while something is pending (wall time and idleness move
        the frontier between marks)."""
        if expiry is None or self.last_now is None:
            return None
        return self.last_now + MIN_TICK

    def snapshot(self) -> ClockSnapshot:
        """A ``ShardClock``-shaped stand-in: the marks are saved by the step that owns them."""
        return (self.lateness, None, None, self.last_now)

    def marks(self) -> MarksSnapshot:
        """The partitions' marks, for the owning step's snapshot."""
        return tuple(self._marks.values())

    def load(self, marks: MarksSnapshot) -> None:
        """Inverse of ``marks``, except that no partition is caught up any more: after a restart
        each may have a backlog, and must not be left out as idle until it says otherwise."""
        self._marks = {mark.partition: mark._replace(caught_up_since=None) for mark in marks}


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


Clock = ShardClock | MergedClock
"""What a stateful logic reads event time from: its partition's clock, or a merged one."""
