"""Security detections: pure rules over events, one alert per incident (see docs/semantics.md, "Detections").

Each rule is a ``ShardLogic[Event, Alert]`` holding the state of many subjects: the users of one
Kafka partition, or the IPs of one shard for ``credential_stuffing`` (fed in event-time order across
partitions by ``operators.ordering``). A threshold rule keeps, per subject, the qualifying events of the
last window; when at least N fall within W an incident opens with a deterministic ``alert_id``
(rule, subject, first event of the incident). Further qualifying events within W of the incident's
last one extend it: the same ``alert_id`` is emitted again with a larger count and later
``window_end``, at most once per ``on_batch`` call. An event more than W after the incident's last
one can only start a new incident. State expires with the watermark.
"""

from __future__ import annotations

import bisect
import hashlib
from array import array
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from operator import attrgetter
from typing import TYPE_CHECKING, Any, ClassVar, Self

from operators.records import EVENT_TS as _TS
from operators.records import Alert, Event
from operators.state import (
    Clock,
    ClockSnapshot,
    ExpiryQueue,
    ShardClock,
    from_micros,
    minus,
    to_micros,
)

if TYPE_CHECKING:
    from rtep.core.settings import Settings

INFO, WARNING, CRITICAL = "info", "warning", "critical"
DEFAULT_LATENESS = timedelta(seconds=60)


def alert_id_for(rule: str, subject: str, first_event_id: str) -> str:
    """Deterministic id of an incident, so replays upsert instead of duplicating."""
    key = f"{rule}|{subject}|{first_event_id}".encode()
    return hashlib.sha1(key, usedforsecurity=False).hexdigest()[:32]


# --- parameters ----------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class ThresholdParams:
    """``threshold`` qualifying events (or distinct users) per subject within ``window``."""

    threshold: int
    window: timedelta
    lateness: timedelta = DEFAULT_LATENESS
    SETTINGS: ClassVar[tuple[str, str]] = ("", "")
    """Names of the Settings fields holding the threshold and the window in seconds."""

    @classmethod
    def from_settings(cls, s: Settings) -> Self:
        """From the rule's two settings (see ``SETTINGS``) and RTEP_ALLOWED_LATENESS_SECONDS."""
        threshold, window = cls.SETTINGS
        return cls(
            getattr(s, threshold),
            timedelta(seconds=getattr(s, window)),
            timedelta(seconds=s.allowed_lateness_seconds),
        )


@dataclass(frozen=True, slots=True)
class FailedLoginBurstParams(ThresholdParams):
    """failed_login_burst: RTEP_FAILED_LOGIN_BURST_COUNT failures within _WINDOW_SECONDS."""

    threshold: int = 5
    window: timedelta = timedelta(seconds=60)
    SETTINGS = ("failed_login_burst_count", "failed_login_burst_window_seconds")


@dataclass(frozen=True, slots=True)
class CredentialStuffingParams(ThresholdParams):
    """credential_stuffing: RTEP_CREDENTIAL_STUFFING_USERS users failing within _WINDOW_SECONDS."""

    threshold: int = 10
    window: timedelta = timedelta(seconds=300)
    SETTINGS = ("credential_stuffing_users", "credential_stuffing_window_seconds")


@dataclass(frozen=True, slots=True)
class AbnormalEventRateParams(ThresholdParams):
    """abnormal_event_rate: RTEP_EVENT_RATE_LIMIT events within RTEP_EVENT_RATE_WINDOW_SECONDS."""

    threshold: int = 120
    window: timedelta = timedelta(seconds=60)
    SETTINGS = ("event_rate_limit", "event_rate_window_seconds")


@dataclass(frozen=True, slots=True)
class BruteForceSuccessParams:
    """brute_force_success: a success within ``window`` after a failed-login burst (same user)."""

    burst_count: int = 5
    burst_window: timedelta = timedelta(seconds=60)
    window: timedelta = timedelta(seconds=300)
    lateness: timedelta = DEFAULT_LATENESS

    @classmethod
    def from_settings(cls, s: Settings) -> Self:
        """From the failed_login_burst settings and RTEP_BRUTE_FORCE_SUCCESS_WINDOW_SECONDS."""
        return cls(
            s.failed_login_burst_count,
            timedelta(seconds=s.failed_login_burst_window_seconds),
            timedelta(seconds=s.brute_force_success_window_seconds),
            timedelta(seconds=s.allowed_lateness_seconds),
        )


@dataclass(frozen=True, slots=True)
class NewDeviceLoginParams:
    """new_device_login: history of at most ``max_devices`` per user, forgotten after ``history_ttl``.

    A user with no successful login within ``history_ttl`` (event time) has no history again, so
    their next login is not an anomaly; the least recently used device is forgotten beyond
    ``max_devices``. Memory is bounded by users who logged in within ``history_ttl``.
    """

    max_devices: int = 16
    history_ttl: timedelta = timedelta(days=30)
    lateness: timedelta = DEFAULT_LATENESS


# --- the threshold engine ------------------------------------------------------------------------
@dataclass(slots=True)
class _Incident:
    """Mutable state of one open incident."""

    alert_id: str
    window_start: datetime
    window_end: datetime
    event_count: int
    created_at: datetime
    members: set[str] | None

    def to_tuple(self) -> tuple[Any, ...]:
        """Immutable copy for snapshots."""
        members = None if self.members is None else frozenset(self.members)
        return (self.alert_id, self.window_start, self.window_end, self.event_count,
                self.created_at, members)  # fmt: skip

    @classmethod
    def from_tuple(cls, t: tuple[Any, ...]) -> _Incident:
        """Inverse of ``to_tuple``."""
        return cls(t[0], t[1], t[2], t[3], t[4], None if t[5] is None else set(t[5]))


class _Window:
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
        self.incident: _Incident | None = None

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

    def snapshot(self) -> tuple[Any, ...]:
        """(times, ids joined by newlines, members, incident): compact and immutable.

        Event ids are UUIDs (validation), so a newline never occurs in one.
        """
        members = None if self.members is None else tuple(self.members)
        incident = None if self.incident is None else self.incident.to_tuple()
        return (self.times[:], "\n".join(self.ids), members, incident)

    @classmethod
    def restore(cls, snap: tuple[Any, ...], distinct: bool) -> _Window:
        """Inverse of ``snapshot``; also takes the older ((datetime, id, member), ...) form."""
        window = cls(distinct)
        if len(snap) == 2:  # written before the columns: entries as tuples
            entries, incident = snap
            window.times.extend(to_micros(e[0]) for e in entries)
            window.ids.extend(e[1] for e in entries)
            column = [e[2] for e in entries]
        else:
            times, ids, column, incident = snap
            window.times.extend(times)
            window.ids.extend(ids.split("\n") if ids else ())
        if window.members is not None:
            window.members.extend(column)
            assert window.counts is not None
            window.counts.update(column)
        window.incident = None if incident is None else _Incident.from_tuple(incident)
        return window


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
        self.subjects: dict[str, _Window] = {}
        self.expiry: ExpiryQueue[str] = ExpiryQueue()

    def add(
        self, subject: str, ts: datetime, event_id: str, member: str | None, now: datetime
    ) -> tuple[_Incident | None, bool]:
        """Count one qualifying event; return (its incident if any, whether it is new).

        ``member`` is what a distinct tracker counts (None for the others: they count events).
        """
        sub = self.subjects.get(subject)
        window = self.window
        if sub is None:
            sub = self.subjects[subject] = _Window(self.distinct)
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
        if size < self.threshold:
            return None, False
        inc = sub.incident = _Incident(
            alert_id_for(self.rule, subject, sub.ids[0]),
            from_micros(times[0]),
            from_micros(times[-1]),
            len(times),
            now,
            None if counts is None else set(counts),
        )
        return inc, True

    def incident(self, subject: str) -> _Incident | None:
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

    def snapshot(self) -> tuple[Any, ...]:
        """Immutable copy for recovery (compact: see ``_Window``)."""
        return (
            tuple((k, *s.snapshot()) for k, s in self.subjects.items()),
            self.expiry.snapshot(),
        )

    def load(self, snap: tuple[Any, ...]) -> None:
        """Inverse of ``snapshot`` (into an empty tracker)."""
        subjects, expiry = snap
        for key, *window in subjects:
            self.subjects[key] = _Window.restore(tuple(window), self.distinct)
        self.expiry = ExpiryQueue(expiry)

    def __len__(self) -> int:
        return len(self.subjects)


# --- rule base -----------------------------------------------------------------------------------
_event_order = attrgetter("ts", "event_id")  # (ts, event_id): a deterministic order, in C


class _Rule:
    """Clock, per-batch alert coalescing and counters shared by every rule."""

    RULE: ClassVar[str]
    SEVERITY: ClassVar[str]
    SUBJECT_TYPE: ClassVar[str] = "user"
    LOGINS_ONLY: ClassVar[bool] = False
    """``_check`` ignores every event but logins: the others skip the sort and the call."""

    def __init__(self, lateness: timedelta) -> None:
        self.clock: Clock = ShardClock(lateness)
        self._touched: dict[str, Alert] = {}
        self.alerts_raised: Counter[tuple[str, str]] = Counter()

    def on_batch(self, items: list[Event], now: datetime) -> list[Alert]:
        """Evaluate ``items`` in event-time order; return one alert per incident opened or extended.

        Sorted by (ts, event_id) first: upstream steps group a batch by user shard, so the arrival
        order of different users' events depends on how the input was cut into batches; rules
        (the IP-keyed one above all) must not, or an incident's alert_id changes with the pace.
        Every event moves the watermark (order does not matter: only the maximum counts, and the
        watermark is read after the loop), relevant to the rule or not.
        """
        clock = self.clock
        clock.advance(now)
        self._touched = {}
        check = self._check
        clock.observe_latest(map(_TS, items), now)
        wanted = [e for e in items if e.type == "login"] if self.LOGINS_ONLY else items
        for event in sorted(wanted, key=_event_order):
            check(event, now)
        self._expire(now)
        touched, self._touched = self._touched, {}
        return list(touched.values())

    def on_tick(self, now: datetime) -> list[Alert]:
        """Expire state the watermark has passed (rules raise nothing on ticks)."""
        self.clock.advance(now)
        self._expire(now)
        return []

    def next_tick(self) -> datetime | None:
        """When the earliest held state would expire."""
        return self.clock.tick_for(self._earliest())

    def take_alert_counts(self) -> dict[tuple[str, str], int]:
        """New incidents per (rule, severity) since the last call, for ``rtep_alerts_total``."""
        counts, self.alerts_raised = dict(self.alerts_raised), Counter()
        return counts

    def _emit(self, subject: str, inc: _Incident, new: bool, details: dict[str, Any]) -> None:
        rule, severity = self.RULE, self.SEVERITY
        if new:
            self.alerts_raised[(rule, severity)] += 1
        self._touched[inc.alert_id] = Alert(
            inc.alert_id, rule, severity, self.SUBJECT_TYPE, subject, inc.window_start,
            inc.window_end, inc.event_count, details, inc.created_at,
        )  # fmt: skip

    def _expire(self, now: datetime) -> None:
        watermark = self.clock.watermark(now)
        if watermark is not None:
            self._forget(watermark)

    def _check(self, event: Event, now: datetime) -> None:
        raise NotImplementedError

    def _forget(self, watermark: datetime) -> None:
        raise NotImplementedError

    def _earliest(self) -> datetime | None:
        raise NotImplementedError


class _ThresholdRule(_Rule):
    """A rule that is exactly one ``BurstTracker`` over a filtered stream."""

    DISTINCT: ClassVar[bool] = False

    def __init__(self, params: ThresholdParams) -> None:
        super().__init__(params.lateness)
        self.params = params
        self._tracker = BurstTracker(
            self.RULE, params.threshold, params.window, self.DISTINCT, params.window
        )

    @classmethod
    def restore(
        cls, snapshot: tuple[ClockSnapshot, tuple[Any, ...]], params: ThresholdParams
    ) -> Self:
        """Rebuild from ``snapshot``."""
        self = cls(params)
        self.clock = ShardClock.restore(snapshot[0])
        self._tracker.load(snapshot[1])
        return self

    def _member(self, event: Event) -> tuple[str, str | None] | None:
        """(subject, member) when ``event`` qualifies, else None; member only when DISTINCT."""
        raise NotImplementedError

    def _check(self, event: Event, now: datetime) -> None:
        key = self._member(event)
        if key is None:
            return
        subject = key[0]
        inc, new = self._tracker.add(subject, event.ts, event.event_id, key[1], now)
        if inc is not None:
            self._emit(subject, inc, new, self._details(inc))

    def _details(self, inc: _Incident) -> dict[str, Any]:
        p = self.params
        return {"threshold": p.threshold, "window_seconds": p.window.total_seconds()}

    def _forget(self, watermark: datetime) -> None:
        self._tracker.expire(watermark)

    def _earliest(self) -> datetime | None:
        return self._tracker.expiry.earliest()

    def forget(self, user_id: str) -> list[str]:
        """Erase the user: drop their window and incident (operators/erasure.py)."""
        self._tracker.subjects.pop(user_id, None)
        return []

    def is_empty(self) -> bool:
        """No subject holds state."""
        return not self._tracker.subjects

    def subjects(self) -> int:
        """Subjects (users or IPs) with state in this shard."""
        return len(self._tracker)

    def snapshot(self) -> tuple[ClockSnapshot, tuple[Any, ...]]:
        """Picklable immutable copy."""
        return (self.clock.snapshot(), self._tracker.snapshot())


class FailedLoginBurst(_ThresholdRule):
    """ShardLogic[Event, Alert]: repeated failed logins on one account (password guessing).

    Takes ``FailedLoginBurstParams``.
    """

    LOGINS_ONLY = True
    RULE, SEVERITY = "failed_login_burst", WARNING

    def _member(self, event: Event) -> tuple[str, str | None] | None:
        return (event.user_id, None) if event.failed_login else None


class CredentialStuffing(_ThresholdRule):
    """ShardLogic[Event, Alert] keyed by IP: one source failing logins across many accounts.

    Takes ``CredentialStuffingParams``; the threshold counts distinct users.
    """

    LOGINS_ONLY = True
    RULE, SEVERITY, SUBJECT_TYPE = "credential_stuffing", CRITICAL, "ip"
    DISTINCT = True

    def _member(self, event: Event) -> tuple[str, str | None] | None:
        if event.ip is None or not event.failed_login:
            return None
        return event.ip, event.user_id

    def _details(self, inc: _Incident) -> dict[str, Any]:
        details = super()._details(inc)
        details["distinct_users"] = len(inc.members or ())
        return details


class AbnormalEventRate(_ThresholdRule):
    """ShardLogic[Event, Alert]: a user producing events faster than a human could (bot, scraper).

    Takes ``AbnormalEventRateParams``.
    """

    RULE, SEVERITY = "abnormal_event_rate", WARNING

    def _member(self, event: Event) -> tuple[str, str | None] | None:
        return event.user_id, None


class BruteForceSuccess(_Rule):
    """ShardLogic[Event, Alert]: a successful login soon after a failed-login burst (takeover).

    Tracks failed-login bursts itself (same thresholds as ``failed_login_burst``) and keeps each
    burst ``window`` after its last failure. One incident per burst: later successes within the
    window update the same alert. Its id derives from the burst's, so a replay gives the same id.
    """

    LOGINS_ONLY = True
    RULE, SEVERITY = "brute_force_success", CRITICAL

    def __init__(self, params: BruteForceSuccessParams) -> None:
        super().__init__(params.lateness)
        self.params = params
        self._bursts = BurstTracker(
            FailedLoginBurst.RULE, params.burst_count, params.burst_window, False, params.window
        )
        self._hits: dict[str, _Incident] = {}

    @classmethod
    def restore(cls, snapshot: tuple[Any, ...], params: BruteForceSuccessParams) -> Self:
        """Rebuild from ``snapshot``."""
        clock, bursts, hits = snapshot
        self = cls(params)
        self.clock = ShardClock.restore(clock)
        self._bursts.load(bursts)
        self._hits = {user: _Incident.from_tuple(t) for user, t in hits}
        return self

    def snapshot(self) -> tuple[Any, ...]:
        """Picklable immutable copy."""
        hits = tuple((user, inc.to_tuple()) for user, inc in self._hits.items())
        return (self.clock.snapshot(), self._bursts.snapshot(), hits)

    def forget(self, user_id: str) -> list[str]:
        """Erase the user: drop their bursts and success incident (operators/erasure.py)."""
        self._bursts.subjects.pop(user_id, None)
        self._hits.pop(user_id, None)
        return []

    def is_empty(self) -> bool:
        """No burst remembered (hits only exist alongside their burst)."""
        return not self._bursts.subjects

    def _check(self, event: Event, now: datetime) -> None:
        if event.type != "login":
            return
        user, ts = event.user_id, event.ts
        if event.failed_login:
            self._bursts.add(user, ts, event.event_id, None, now)
            return
        burst = self._bursts.incident(user)
        if burst is None or ts < burst.window_start or ts - burst.window_end > self.params.window:
            return
        hit = self._hits.get(user)
        alert_id = alert_id_for(self.RULE, user, burst.alert_id)
        new = hit is None or hit.alert_id != alert_id
        if hit is None or new:
            hit = self._hits[user] = _Incident(alert_id, burst.window_start, ts, 0, now, set())
        assert hit.members is not None
        hit.members.add(event.event_id)
        hit.window_end = max(hit.window_end, ts)
        hit.event_count = burst.event_count + len(hit.members)
        details = {
            "failed_logins": burst.event_count,
            "successful_logins": len(hit.members),
            "burst_alert_id": burst.alert_id,
            "window_seconds": self.params.window.total_seconds(),
        }
        self._emit(user, hit, new, details)

    def _forget(self, watermark: datetime) -> None:
        for user in self._bursts.expire(watermark):
            self._hits.pop(user, None)

    def _earliest(self) -> datetime | None:
        return self._bursts.expiry.earliest()


class NewDeviceLogin(_Rule):
    """ShardLogic[Event, Alert]: a successful login from a device the user never logged in from.

    History = devices of the user's successful logins (failed attempts do not teach it), at most
    ``max_devices`` (least recently used forgotten), dropped ``history_ttl`` after the user's last
    successful login. A user's first login only seeds the history. Each new device is one incident.
    """

    LOGINS_ONLY = True
    RULE, SEVERITY = "new_device_login", INFO

    def __init__(self, params: NewDeviceLoginParams) -> None:
        super().__init__(params.lateness)
        self.params = params
        self._history: dict[str, dict[str, datetime]] = {}
        self._expiry: ExpiryQueue[str] = ExpiryQueue()

    @classmethod
    def restore(cls, snapshot: tuple[Any, ...], params: NewDeviceLoginParams) -> Self:
        """Rebuild from ``snapshot``."""
        clock, history, expiry = snapshot
        self = cls(params)
        self.clock = ShardClock.restore(clock)
        self._history = {user: dict(devices) for user, devices in history}
        self._expiry = ExpiryQueue(expiry)
        return self

    def snapshot(self) -> tuple[Any, ...]:
        """Picklable immutable copy."""
        history = tuple((user, tuple(d.items())) for user, d in self._history.items())
        return (self.clock.snapshot(), history, self._expiry.snapshot())

    def forget(self, user_id: str) -> list[str]:
        """Erase the user: drop their device history (operators/erasure.py)."""
        self._history.pop(user_id, None)
        return []

    def is_empty(self) -> bool:
        """No user history held."""
        return not self._history

    def users(self) -> int:
        """Users with a device history in this shard."""
        return len(self._history)

    def _check(self, event: Event, now: datetime) -> None:
        device = event.device
        if device is None or not event.successful_login:
            return
        user, ts = event.user_id, event.ts
        devices = self._history.get(user)
        if devices is None or ts - devices[next(reversed(devices))] > self.params.history_ttl:
            self._history[user] = {device: ts}
        elif device in devices:
            if ts > devices[device]:
                del devices[device]
                devices[device] = ts
        else:
            inc = _Incident(alert_id_for(self.RULE, user, event.event_id), ts, ts, 1, now, None)
            details = {"device": device, "ip": event.ip, "known_devices": len(devices)}
            self._emit(user, inc, True, details)
            devices[device] = ts
            if len(devices) > self.params.max_devices:
                del devices[next(iter(devices))]
        self._expiry.schedule(user, ts + self.params.history_ttl)

    def _forget(self, watermark: datetime) -> None:
        for user in self._expiry.due(watermark, self._expiry_of):
            del self._history[user]

    def _expiry_of(self, user: str) -> datetime | None:
        devices = self._history.get(user)
        return (
            None if devices is None else devices[next(reversed(devices))] + self.params.history_ttl
        )

    def _earliest(self) -> datetime | None:
        return self._expiry.earliest()
