"""Event time: the clocks every stateful operator (``operators.stateful``) reads.

A stateful operator holds the state of many subjects: the users of one Kafka partition
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

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

from operators.snapshots import ClockSnapshot

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
        return ClockSnapshot(1, self.lateness, self._max_ts, self._wall_at_max, self.last_now)

    @classmethod
    def restore(cls, saved: Any) -> ShardClock:
        """Inverse of ``snapshot``, also from 0.2.0's tuple (progress is not state: the input
        sets it again)."""
        snap = ClockSnapshot.of(saved)
        clock = cls(snap.lateness)
        clock._max_ts, clock._wall_at_max = snap.latest, snap.wall_at_latest
        clock.last_now = snap.last_now
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
        return ClockSnapshot(1, self.lateness, None, None, self.last_now)

    def marks(self) -> MarksSnapshot:
        """The partitions' marks, for the owning step's snapshot."""
        return tuple(self._marks.values())

    def load(self, marks: MarksSnapshot) -> None:
        """Inverse of ``marks``, except that no partition is caught up any more: after a restart
        each may have a backlog, and must not be left out as idle until it says otherwise."""
        self._marks = {mark.partition: mark._replace(caught_up_since=None) for mark in marks}


Clock = ShardClock | MergedClock
"""What a stateful logic reads event time from: its partition's clock, or a merged one."""
