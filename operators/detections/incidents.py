"""The incident engine: threshold crossings per subject, one deterministic alert id per incident."""

from __future__ import annotations

import bisect
import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta

from operators.detections.snapshots import BurstsRecord, IncidentRow
from operators.detections.window import Window
from operators.expiry import ExpiryQueue
from operators.state import from_micros, minus, to_micros


def alert_id_for(rule: str, subject: str, first_event_id: str) -> str:
    """Deterministic id of an incident, so replays upsert instead of duplicating."""
    key = f"{rule}|{subject}|{first_event_id}".encode()
    return hashlib.sha1(key, usedforsecurity=False).hexdigest()[:32]


@dataclass(slots=True)
class Incident:
    """Mutable state of one open incident."""

    alert_id: str
    window_start: datetime
    window_end: datetime
    event_count: int
    created_at: datetime
    members: set[str] | None

    def to_row(self) -> IncidentRow:
        """Immutable copy for snapshots."""
        members = None if self.members is None else frozenset(self.members)
        return (self.alert_id, self.window_start, self.window_end, self.event_count,
                self.created_at, members)  # fmt: skip

    @classmethod
    def from_row(cls, t: IncidentRow) -> Incident:
        """Inverse of ``to_row``."""
        return cls(t[0], t[1], t[2], t[3], t[4], None if t[5] is None else set(t[5]))


class BurstTracker:
    """``threshold`` qualifying events (or distinct members) per subject within ``window``.

    ``retain`` keeps an ended incident known that long after its last event (brute_force_success
    looks back at bursts). Bounded: a subject is deleted once the watermark passes both its newest
    event + window and its incident's end + retain.
    """

    def __init__(
        self, rule: str, threshold: int, window: timedelta, distinct: bool, retain: timedelta
    ) -> None:
        self.rule = rule
        self.threshold = threshold
        self.window = window
        self._window_micros = window // timedelta(microseconds=1)
        self.distinct = distinct
        self.retain = retain
        self.subjects: dict[str, Window] = {}
        self.expiry: ExpiryQueue[str] = ExpiryQueue()

    def add(
        self,
        subject: str,
        ts: datetime,
        event_id: str,
        member: str | None,
        now: datetime,
        *,
        may_open: bool = True,
    ) -> tuple[Incident | None, bool]:
        """Count one qualifying event; return (its incident if any, whether it is new).

        ``member`` is what a distinct tracker counts (None for the others: they count events);
        ``may_open`` False: a crossing opens no incident (an ongoing one is still extended).
        """
        sub = self.subjects.get(subject)
        window = self.window
        if sub is None:
            sub = self.subjects[subject] = Window(self.distinct)
            # a lower bound of the subject's expiry, which only grows while it lives
            self.expiry.schedule(subject, ts + window)
        sub.insert(to_micros(ts), event_id, member)
        times, counts = sub.times, sub.counts
        horizon = times[-1] - self._window_micros
        stale = bisect.bisect_left(times, horizon) if times[0] < horizon else 0
        # Only the newest `threshold` events can decide a crossing: a bot's flood stays O(N).
        if counts is None and len(times) - self.threshold > stale:
            stale = len(times) - self.threshold
        if stale:
            sub.drop_oldest(stale)
        inc = sub.incident
        if (
            inc is not None
            and ts <= inc.window_end + window
            and ts >= minus(inc.window_start, window)
        ):
            inc.event_count += 1
            if ts > inc.window_end:
                inc.window_end = ts
            elif ts < inc.window_start:
                inc.window_start = ts
            if inc.members is not None and member is not None:
                inc.members.add(member)
            return inc, False
        size = len(times) if counts is None else len(counts)
        if size < self.threshold or not may_open:
            return None, False
        inc = sub.incident = Incident(
            alert_id_for(self.rule, subject, sub.ids[0]),
            from_micros(times[0]),
            from_micros(times[-1]),
            len(times),
            now,
            None if counts is None else set(counts),
        )
        return inc, True

    def incident(self, subject: str) -> Incident | None:
        """The current (or recently ended, within ``retain``) incident of ``subject``."""
        sub = self.subjects.get(subject)
        return None if sub is None else sub.incident

    def expire(self, watermark: datetime) -> list[str]:
        """Forget subjects the watermark has passed; return them."""
        gone = self.expiry.due(watermark, self._expiry_of)
        for subject in gone:
            del self.subjects[subject]
        return gone

    def _expiry_of(self, subject: str) -> datetime | None:
        sub = self.subjects.get(subject)
        if sub is None:
            return None
        end = from_micros(sub.times[-1]) + self.window if sub.times else None
        if sub.incident is not None:
            held = sub.incident.window_end + self.retain
            end = held if end is None or held > end else end
        return end

    def snapshot(self) -> BurstsRecord:
        """Immutable copy for recovery (compact: see ``Window``)."""
        rows = tuple(
            (key, *sub.columns(), None if sub.incident is None else sub.incident.to_row())
            for key, sub in self.subjects.items()
        )
        return BurstsRecord(rows, self.expiry.snapshot())

    def load(self, record: BurstsRecord) -> None:
        """Inverse of ``snapshot`` (into an empty tracker)."""
        for key, times, ids, members, incident in record.subjects:
            sub = self.subjects[key] = Window.from_columns((times, ids, members), self.distinct)
            sub.incident = None if incident is None else Incident.from_row(incident)
        self.expiry = ExpiryQueue(record.expiry)
