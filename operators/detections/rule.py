"""What every rule shares: the batch view, alert coalescing, statistics, the threshold rule."""

from __future__ import annotations

from abc import abstractmethod
from collections import Counter
from collections.abc import Callable
from dataclasses import Field, dataclass, field
from datetime import datetime, timedelta
from enum import Enum
from operator import attrgetter
from typing import Any, ClassVar, Generic, Protocol, Self, TypeVar

from operators.detections.incidents import BurstTracker, Incident
from operators.detections.params import ThresholdParams
from operators.detections.snapshots import VERSION, ThresholdRuleSnapshot
from operators.records import Alert, Event
from operators.state import ShardClock
from operators.stateful import StatefulLogic

INFO, WARNING, CRITICAL = "info", "warning", "critical"

_event_order = attrgetter("ts", "event_id")  # (ts, event_id): a deterministic order, in C


class Reads(Enum):
    """Which events of a batch a rule looks at (``Rule.READS``)."""

    EVENTS = "events"
    LOGINS = "logins"


@dataclass(frozen=True, slots=True)
class RuleBatch:
    """One batch as every rule reads it, built once per batch for all the rules of a stage.

    Sorted by (ts, event_id): upstream steps group a batch by user shard, so the arrival order of
    different users' events depends on how the input was cut into batches; rules (the IP-keyed
    one above all) must not, or an incident's alert_id changes with the pace.
    """

    events: list[Event]
    logins: list[Event]  # the logins among ``events``, in the same order
    latest: datetime | None  # the latest event time: every rule's clock observes it

    @classmethod
    def of(cls, events: list[Event]) -> RuleBatch:
        """Sort once, pick the logins once."""
        ordered = sorted(events, key=_event_order)
        logins = [e for e in ordered if e.type == "login"]
        return cls(ordered, logins, ordered[-1].ts if ordered else None)

    def read(self, which: Reads) -> list[Event]:
        """The list a rule declared it reads."""
        return self.logins if which is Reads.LOGINS else self.events


UNKNOWN_COUNTRY = "unknown"
"""The ``country`` label of an alert whose triggering event has no known location."""


@dataclass(slots=True)
class AlertStats:
    """What ``rtep_alerts_total{rule,severity}`` counts: incidents opened, not their updates;
    and ``rtep_alerts_by_country_total{rule,country}``: the same incidents by the country of the
    event that opened them."""

    opened: int = 0
    countries: Counter[str] = field(default_factory=Counter)

    def take(self) -> int:
        """Incidents opened since the last call (the metrics observer reads them once)."""
        opened, self.opened = self.opened, 0
        return opened

    def take_countries(self) -> Counter[str]:
        """Incidents opened by country since the last call (read once, like ``take``)."""
        countries, self.countries = self.countries, Counter()
        return countries


def location_details(event: Event) -> dict[str, Any]:
    """Where a login came from, for an alert's ``details``: its country, and its city and
    coordinates when known (a city database); empty when the event has no location."""
    details: dict[str, Any] = {}
    if event.country is not None:
        details["country"] = event.country
    if event.city is not None:
        details["city"] = event.city
    if event.latitude is not None and event.longitude is not None:
        details["latitude"], details["longitude"] = event.latitude, event.longitude
    return details


class RuleParams(Protocol):
    """What the base needs from a rule's parameters (a frozen dataclass with defaults)."""

    __dataclass_fields__: ClassVar[dict[str, Field[Any]]]  # a dataclass: ``replace`` works

    @property
    def lateness(self) -> timedelta: ...


P_co = TypeVar("P_co", bound=RuleParams, covariant=True)


class Rule(StatefulLogic[Event, Alert, AlertStats], Generic[P_co]):
    """A detection rule: evaluates a batch, emits one alert per incident opened or extended."""

    RULE: ClassVar[str]
    SEVERITY: ClassVar[str]
    SUBJECT_TYPE: ClassVar[str] = "user"
    READS: ClassVar[Reads] = Reads.EVENTS
    PARAMS: ClassVar[Callable[[], RuleParams]]
    """Its parameters' dataclass (defaults: for a rule ``dataflows/params.py`` does not map)."""

    def __init__(self, params: P_co) -> None:
        super().__init__(params.lateness, AlertStats())
        self.params = params
        self._touched: dict[str, Alert] = {}

    @classmethod
    def restore(cls, saved: object, params: P_co) -> Self:  # type: ignore[misc]  # as __init__
        """Rebuild from ``snapshot()``'s record or its 0.2.0 tuple form."""
        self = cls(params)
        self._load(saved)
        return self

    def on_batch(self, items: list[Event], now: datetime) -> list[Alert]:
        """Evaluate ``items`` on their own (a partition stage shares one ``RuleBatch``)."""
        return self.evaluate(RuleBatch.of(items), now)

    def evaluate(self, batch: RuleBatch, now: datetime) -> list[Alert]:
        """Check the events the rule reads in (ts, event_id) order; return one alert per
        incident opened or extended. Every event of the batch moves the watermark, read or not."""
        self.begin(batch, now)
        check = self._check
        for event in batch.read(self.READS):
            check(event, now)
        return self.finish(now)

    def begin(self, batch: RuleBatch, now: datetime) -> None:
        """Start a batch: the clock takes its wall time and latest event time. Then ``check``
        each event, then ``finish`` (what ``evaluate`` does; rules run in lockstep call them)."""
        clock = self.clock
        clock.advance(now)
        if batch.latest is not None:
            clock.observe(batch.latest, now)

    def check(self, event: Event, now: datetime) -> None:
        """Take one event of the batch into account (one the rule reads)."""
        self._check(event, now)

    def finish(self, now: datetime) -> list[Alert]:
        """End a batch: expire state at the watermark (only now: a backlog's watermark is far
        ahead of its events), return the incidents opened or extended."""
        self._expire_at(now)
        touched, self._touched = self._touched, {}
        return list(touched.values())

    def _emit(self, subject: str, inc: Incident, new: bool, details: dict[str, Any]) -> None:
        """Record the incident's alert, once per batch (the latest state wins)."""
        if new:
            self.stats.opened += 1
            self.stats.countries[details.get("country") or UNKNOWN_COUNTRY] += 1
        self._touched[inc.alert_id] = Alert(
            inc.alert_id, self.RULE, self.SEVERITY, self.SUBJECT_TYPE, subject, inc.window_start,
            inc.window_end, inc.event_count, details, inc.created_at,
        )  # fmt: skip

    @abstractmethod
    def _check(self, event: Event, now: datetime) -> None:
        """Take one event into account (maybe calling ``_emit``)."""

    @abstractmethod
    def _load(self, saved: object) -> None:
        """Set the state of a fresh instance from a snapshot (see ``restore``)."""

    @abstractmethod
    def forget(self, user_id: str) -> None:
        """Erase the user's state (operators/erasure.py)."""


TP = TypeVar("TP", bound=ThresholdParams)


class ThresholdRule(Rule[TP]):
    """A rule that is exactly one ``BurstTracker``: ``_member`` says which events qualify."""

    DISTINCT: ClassVar[bool] = False
    """Count distinct members (``_member``'s second item), not events."""

    def __init__(self, params: TP) -> None:
        super().__init__(params)
        self._tracker = BurstTracker(
            self.RULE, params.threshold, params.window, self.DISTINCT, params.window
        )
        # asked per qualifying event only when a subclass may say no (credential_stuffing)
        self._asks = type(self)._may_open is not ThresholdRule._may_open

    @abstractmethod
    def _member(self, event: Event) -> tuple[str, str | None] | None:
        """(subject, member) when ``event`` qualifies, else None; member only when DISTINCT."""

    def _check(self, event: Event, now: datetime) -> None:
        key = self._member(event)
        if key is None:
            return
        subject = key[0]
        may_open = self._may_open(subject, event.ts) if self._asks else True
        inc, new = self._tracker.add(
            subject, event.ts, event.event_id, key[1], now, may_open=may_open
        )
        if inc is not None:
            details = self._details(inc)
            if self.READS is Reads.LOGINS:  # an alert about logins says where the latest was
                details.update(location_details(event))
            self._emit(subject, inc, new, details)

    def _may_open(self, subject: str, ts: datetime) -> bool:
        """Whether a crossing at ``ts`` may open an incident (credential_stuffing yields an IP
        to password_spraying)."""
        return True

    def _details(self, inc: Incident) -> dict[str, Any]:
        p = self.params
        return {"threshold": p.threshold, "window_seconds": p.window.total_seconds()}

    def _expire(self, watermark: datetime) -> list[Alert]:
        self._tracker.expire(watermark)
        return []

    def _earliest(self) -> datetime | None:
        return self._tracker.expiry.earliest()

    def forget(self, user_id: str) -> None:
        """Drop the user's window and incident."""
        self._tracker.subjects.pop(user_id, None)

    def is_empty(self) -> bool:
        """No subject holds state."""
        return not self._tracker.subjects

    def snapshot(self) -> ThresholdRuleSnapshot:
        """The versioned record (columnar windows)."""
        record = self._tracker.snapshot()
        return ThresholdRuleSnapshot(VERSION, self.RULE, self.clock.snapshot(), record)

    def _load(self, saved: object) -> None:
        record = ThresholdRuleSnapshot.of(saved, self.RULE)
        self.clock = ShardClock.restore(record.clock)
        self._tracker.load(record.bursts)
