"""The base of every stateful operator: one clock, expiry by watermark, timers, statistics.

A stateful operator (de-duplication, sessions, a detection rule, rollups) holds the state of many
subjects, sees batches of events on its clock and forgets what the watermark has passed. What is
common lives here once: advancing the clock on a tick, expiring, scheduling the next tick from the
earliest held expiry, and handing its statistics to the metrics observer. A subclass says what it
keeps (``_expire``, ``_earliest``), what a batch does (``on_batch``) and how it is saved
(``snapshot``/``restore`` with a versioned snapshot record).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Generic, TypeVar

from operators.state import Clock, ShardClock

In = TypeVar("In")
Out = TypeVar("Out")
S = TypeVar("S")


class StatefulLogic(ABC, Generic[In, Out, S]):
    """A batch in, results out, ticks for timeouts. ``stats`` (a small dataclass of type ``S``)
    counts what the metrics report; ``dataflows/observers.py`` reads it after each batch."""

    def __init__(self, lateness: timedelta, stats: S) -> None:
        self.clock: Clock = ShardClock(lateness)
        self.stats = stats

    @abstractmethod
    def on_batch(self, items: list[In], now: datetime) -> Sequence[Out]:
        """Process ``items`` at wall time ``now``; return what they produce."""

    def on_tick(self, now: datetime) -> Sequence[Out]:
        """Close or expire whatever the watermark at wall time ``now`` has passed."""
        self.clock.advance(now)
        return self._expire_at(now)

    def next_tick(self) -> datetime | None:
        """Wall time of the next needed ``on_tick``; None when nothing is held."""
        return self.clock.tick_for(self._earliest())

    def _expire_at(self, now: datetime) -> Sequence[Out]:
        """``_expire`` at the watermark of wall time ``now`` (the end of every call)."""
        watermark = self.clock.watermark(now)
        return [] if watermark is None else self._expire(watermark)

    @abstractmethod
    def _expire(self, watermark: datetime) -> Sequence[Out]:
        """Forget (or close and return) what lies before ``watermark``."""

    @abstractmethod
    def _earliest(self) -> datetime | None:
        """Event time of the earliest held expiry (None: nothing held)."""

    @abstractmethod
    def is_empty(self) -> bool:
        """True when nothing is held."""

    @abstractmethod
    def snapshot(self) -> object:
        """A versioned, picklable record that ``restore`` turns back into an equal instance."""
