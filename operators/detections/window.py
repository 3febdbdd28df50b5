"""One subject's qualifying events within the window, kept as columns (see ``Window``)."""

from __future__ import annotations

import bisect
from array import array
from collections import Counter
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from operators.detections.incidents import Incident

Columns = tuple["array[int]", str, tuple[str, ...] | None]
"""A window's snapshot: (times, event ids joined by newlines, members or None)."""


class Window:
    """Qualifying events of one subject within the window, and its incident.

    Entries are ordered by (time, event id, member) and kept as parallel columns, not as tuples:
    every subject is snapshotted at each Bytewax snapshot interval, and an int64 column plus one
    joined string pickle about 30 times faster than a (datetime, id, member) tuple per entry
    (0.3 s for 150k entries on the benchmark machine, all of it a stall of the whole flow).
    """

    __slots__ = ("counts", "ids", "incident", "members", "times")

    def __init__(self, distinct: bool) -> None:
        self.times = array("q")  # event time, microseconds since the Unix epoch (to_micros)
        self.ids: list[str] = []
        self.members: list[str] | None = [] if distinct else None
        self.counts: Counter[str] | None = Counter() if distinct else None
        self.incident: Incident | None = None

    def insert(self, micros: int, event_id: str, member: str | None) -> None:
        """Add one entry at its place in (time, event id, member) order."""
        times, ids, members = self.times, self.ids, self.members
        pos = len(times)
        if pos and micros <= times[-1]:  # not simply the newest entry
            pos = bisect.bisect_right(times, micros)
            # ties on time: full-key order, so it never depends on arrival
            while (
                pos
                and times[pos - 1] == micros
                and (ids[pos - 1], None if members is None else members[pos - 1])
                > (event_id, member)
            ):
                pos -= 1
        times.insert(pos, micros)
        ids.insert(pos, event_id)
        if members is not None:
            assert member is not None and self.counts is not None, "distinct: counts members"
            members.insert(pos, member)
            self.counts[member] += 1

    def drop_oldest(self, n: int) -> None:
        """Forget the ``n`` earliest entries."""
        if self.members is not None:
            counts = self.counts
            assert counts is not None
            for member in self.members[:n]:
                counts[member] -= 1
                if not counts[member]:
                    del counts[member]
            del self.members[:n]
        del self.times[:n]
        del self.ids[:n]

    def columns(self) -> Columns:
        """Compact immutable copy of the entries (event ids are UUIDs: never a newline)."""
        members = None if self.members is None else tuple(self.members)
        return self.times[:], "\n".join(self.ids), members

    @classmethod
    def from_columns(cls, columns: Columns, distinct: bool) -> Window:
        """Inverse of ``columns`` (the incident is the tracker's to set)."""
        times, ids, members = columns
        window = cls(distinct)
        window.times.extend(times)
        window.ids.extend(ids.split("\n") if ids else ())
        if window.members is not None and window.counts is not None:
            window.members.extend(members or ())
            window.counts.update(members or ())
        return window
