"""Event-time order where partitions meet: a rule over several partitions sees the in-order stream.

Kafka orders events only within a partition, and partitions are read at different speeds (after
every restart or outage one can be hours ahead of another). A rule keyed by something other than
the user (``credential_stuffing``, by IP) gathers events from every partition; evaluated in
arrival order, its incidents (their ids, windows, counts) would depend on how fast each
partition was read. ``InEventTimeOrder`` holds events until every partition has been read past
their time (the merged frontier), then hands them to the rule in (time, event id) order, so the
rule sees one ordered stream whatever the interleaving.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any, Protocol, Self

from operators.records import Alert, Event
from operators.snapshots import OrderedSnapshot
from operators.state import Clock, MergedClock

RELEASE_TICK = timedelta(milliseconds=100)
"""How often held events are re-checked while the frontier moves by wall time alone."""


class OrderedRule(Protocol):
    """What ``InEventTimeOrder`` drives: a rule over events (see ``operators.detections``)."""

    clock: Clock

    def on_batch(self, items: list[Event], now: datetime) -> Sequence[Alert]: ...

    def on_tick(self, now: datetime) -> Sequence[Alert]: ...

    def next_tick(self) -> datetime | None: ...

    def snapshot(self) -> object: ...


class InEventTimeOrder:
    """Feeds ``rule`` the events of every partition in event-time order (see the module doc)."""

    def __init__(self, rule: OrderedRule, clock: MergedClock) -> None:
        self.rule = rule
        self.clock = clock
        rule.clock = clock  # the rule expires its state with the merged watermark
        self._held: list[tuple[datetime, str, int, Event]] = []
        self._seq = 0  # ties on (time, id) never compare events

    def take(self, partition: str, events: list[Event]) -> None:
        """Hold events until the frontier passes them."""
        for event in events:
            self._seq += 1
            heapq.heappush(self._held, (event.ts, event.event_id, self._seq, event))

    def release(self, now: datetime) -> list[Alert]:
        """Evaluate the held events the frontier has passed, in (time, event id) order."""
        self.clock.advance(now)
        frontier = self.clock.frontier(now)
        held = self._held
        ready: list[Event] = []
        while held and frontier is not None and held[0][0] <= frontier:
            ready.append(heapq.heappop(held)[3])
        return list(self.rule.on_batch(ready, now) if ready else self.rule.on_tick(now))

    def next_tick(self) -> datetime | None:
        """Soon while events are held; else when the rule's state expires."""
        if self._held and self.clock.last_now is not None:
            return self.clock.last_now + RELEASE_TICK
        return self.rule.next_tick()

    def snapshot(self) -> OrderedSnapshot:
        """The held events and the rule's own snapshot."""
        held = tuple(entry[3] for entry in sorted(self._held))
        return OrderedSnapshot(1, held, self.rule.snapshot())

    @classmethod
    def restore(
        cls, saved: Any, restore_rule: Callable[[Any], OrderedRule], clock: MergedClock
    ) -> Self:
        """Rebuild from an ``OrderedSnapshot`` (or 0.2.0's tuple); ``restore_rule`` turns the
        rule's own snapshot back into the rule."""
        snapshot = OrderedSnapshot.of(saved)
        self = cls(restore_rule(snapshot.rule), clock)
        self.take("", list(snapshot.held))
        return self
