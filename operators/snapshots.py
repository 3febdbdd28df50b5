"""The versioned snapshot records of the stateful steps: what a recovery directory holds.

Bytewax pickles every step's snapshot. A pickle names a class by its module path and restores a
dataclass's fields by position, so the classes here never move, are never renamed and never
reorder their fields: a recovery directory written by one release is resumed by the next. A new
shape of a record gets a new ``version``; each operator's ``restore`` accepts every version it
ever wrote, and the 0.2.0 forms (plain tuples, inside ``StageSnapshot`` version 1 and in the merge
steps), through the ``of`` constructors below. Which operator writes which record:

* ``ClockSnapshot``: ``operators.state.ShardClock`` (every stateful operator's clock);
* ``DedupSnapshot``: ``operators.dedup.Deduplicator``;
* ``SessionsSnapshot``: ``operators.sessions.Sessionizer``;
* ``RollupSnapshot``, ``RollupMergeSnapshot``: ``operators.rollups`` (a partition's, the totals);
* ``OrderedSnapshot``: ``operators.ordering.InEventTimeOrder``;
* ``MergeSnapshot``: ``dataflows.adapters.MergeAdapter`` (the merge steps' marks and logic);
* ``StageSnapshot``: ``dataflows.partition_stage.PartitionStage`` (saved with the Kafka offset).

Payloads stay columnar where that is what makes a snapshot fast (a partition's snapshot is taken
at every Bytewax snapshot interval while the whole flow waits): dedup's cached 512-id segments,
the sessions' tuples. Counters for the metrics are not state and are not saved.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Self

if TYPE_CHECKING:
    from operators.records import Event
    from operators.state import PartitionMark

Segment = tuple[bytes, str]
"""512 remembered event ids: their event times as float64 epoch seconds, the ids joined by
newlines (event ids are UUIDs)."""
SessionTuple = (
    tuple[
        str, str, datetime, datetime, int, int, str | None, datetime | None, str | None,
        datetime | None, str | None, str | None,
    ]
    | tuple[
        str, str, datetime, datetime, int, int, str | None, datetime | None, str | None,
        datetime | None, str | None, str | None, str | None,
    ]
)  # fmt: skip
"""An open session: id, user, started, last event, events, page views, entry page and time,
exit page and time, device, ip, and (since 0.3.0; not in 0.2.0's 12) country."""
ClosedSpan = tuple[str, datetime, datetime]
"""A session closed by an event, kept for its stragglers: id, started, ended."""
Bucket = tuple[datetime, str]
"""A rollup bucket: the minute (UTC, truncated), the event type."""
Partial = tuple[int, int]
"""One partition's (events, unique users) of a bucket."""
Scheduled = tuple[tuple[str, datetime], ...]
"""An ``ExpiryQueue``'s live entries: (key, event time)."""


class _Record:
    """What every record has: ``of``, the one way an operator reads what it saved."""

    __slots__ = ()

    @classmethod
    def of(cls, saved: Any) -> Self:
        """The record ``saved`` is, or the one its 0.2.0 tuple form converts to."""
        return saved if isinstance(saved, cls) else cls._upgrade(saved)

    @classmethod
    def _upgrade(cls, saved: Any) -> Self:
        """From a 0.2.0 tuple of the fields after ``version``, in order (else overridden)."""
        if not isinstance(saved, tuple):
            raise TypeError(f"{cls.__name__}: not a known snapshot form: {type(saved).__name__}")
        return cls(1, *saved)  # type: ignore[call-arg]  # the subclass is a dataclass


@dataclass(frozen=True, slots=True)
class ClockSnapshot(_Record):
    """A ``ShardClock`` (a ``MergedClock`` saves ``lateness`` and ``last_now`` only)."""

    version: int
    lateness: timedelta
    latest: datetime | None
    wall_at_latest: datetime | None
    last_now: datetime | None


@dataclass(frozen=True, slots=True)
class DedupSnapshot(_Record):
    """The ids a ``Deduplicator`` remembers, in arrival order."""

    version: int
    clock: ClockSnapshot
    segments: tuple[Segment, ...]

    @classmethod
    def _upgrade(cls, saved: Any) -> Self:
        """From 0.2.0's (clock, segments, duplicates) tuple."""
        clock, segments, _duplicates = saved
        return cls(1, ClockSnapshot.of(clock), segments)


@dataclass(frozen=True, slots=True)
class SessionsSnapshot(_Record):
    """A ``Sessionizer``'s open sessions, closed spans, expiry queues and pending rows."""

    version: int
    clock: ClockSnapshot
    open: tuple[SessionTuple, ...]
    closed: tuple[tuple[str, ClosedSpan], ...]  # by user
    open_expiry: Scheduled
    closed_expiry: Scheduled
    dirty: tuple[str, ...]  # ids of open sessions changed since their last row
    flush_due: datetime | None

    @classmethod
    def _upgrade(cls, saved: Any) -> Self:
        """From 0.2.0's 8-tuple (its late-event count dropped)."""
        clock, opened, closed, open_q, closed_q, _late, dirty, flush_due = saved
        return cls(1, ClockSnapshot.of(clock), opened, closed, open_q, closed_q, dirty, flush_due)


@dataclass(frozen=True, slots=True)
class RollupSnapshot(_Record):
    """A partition's ``MinuteRollup``: its buckets and the highest watermark seen."""

    version: int
    clock: ClockSnapshot
    buckets: tuple[tuple[Bucket, int, frozenset[str]], ...]  # (bucket, events, users)
    cutoff: datetime | None

    @classmethod
    def _upgrade(cls, saved: Any) -> Self:
        """From 0.2.0's (clock, buckets, cutoff, dropped) tuple."""
        clock, buckets, cutoff, _dropped = saved
        return cls(1, ClockSnapshot.of(clock), buckets, cutoff)


@dataclass(frozen=True, slots=True)
class RollupMergeSnapshot(_Record):
    """The rollup totals step: every bucket's partials by partition."""

    version: int
    buckets: tuple[tuple[Bucket, tuple[tuple[str, Partial], ...]], ...]

    @classmethod
    def _upgrade(cls, saved: Any) -> Self:
        """From 0.2.0's (buckets, dropped) tuple."""
        buckets, _dropped = saved
        return cls(1, buckets)


@dataclass(frozen=True, slots=True)
class OrderedSnapshot(_Record):
    """``InEventTimeOrder``: the events held for event-time order, and its rule's snapshot."""

    version: int
    held: tuple[Event, ...]  # in (time, event id) order
    rule: Any


@dataclass(frozen=True, slots=True)
class MergeSnapshot(_Record):
    """A merge step: the partitions' marks and its logic's own snapshot."""

    version: int
    marks: tuple[PartitionMark, ...]
    logic: Any


@dataclass(frozen=True, slots=True)
class StageSnapshot:
    """A partition's whole state, saved with its Kafka offset.

    Version 1 (0.2.0) holds each operator's tuple, version 2 its record; ``rules`` holds the
    per-user rules' own snapshots. Pickles of version 1 name ``dataflows.partition_stage``, which
    imports this class.
    """

    version: int
    clock: Any
    dedup: Any
    sessions: Any
    rules: tuple[Any, ...]
    rollups: Any
