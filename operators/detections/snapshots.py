"""The rules' snapshot records: what Bytewax pickles at each snapshot interval.

Pickle stores a record by its module path and class name: these classes stay here, under these
names, for as long as a recovery directory may hold them. Each record has a ``version`` (1 now)
and one ``of`` that also accepts the 0.2.0 tuple form of the same state, so a 0.2.0 recovery
directory resumes (tests/upgrade). Payloads stay columnar: a window's times are an int64 array and
its ids one newline-joined string (see ``window.Window``); an incident is a plain tuple.
"""

from __future__ import annotations

from array import array
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Self

from operators.state import ClockSnapshot

VERSION = 1
"""The version every record is written with; ``of`` refuses any other."""

IncidentRow = tuple[str, datetime, datetime, int, datetime, frozenset[str] | None]
"""An incident: (alert id, window start, window end, event count, created at, members)."""

SubjectRow = tuple[str, "array[int]", str, tuple[str, ...] | None, IncidentRow | None]
"""A subject of a ``BurstTracker``: (subject, *its window's columns, its incident or None)."""

Expiries = tuple[tuple[str, datetime], ...]
"""An ``ExpiryQueue``'s live entries."""


@dataclass(frozen=True, slots=True)
class BurstsRecord:
    """A ``BurstTracker``: one row per subject, and its expiry queue (the same rows as 0.2.0)."""

    subjects: tuple[SubjectRow, ...]
    expiry: Expiries


class _RuleRecord:
    """``of``: the one way a rule reads what it saved (this version's record, or 0.2.0's tuple)."""

    __slots__ = ()
    version: int

    @classmethod
    def of(cls, saved: object, rule: str) -> Self:
        """``saved`` as a record of this version; a tuple is the 0.2.0 form of rule ``rule``."""
        if isinstance(saved, tuple):
            return cls._from_0_2_0(saved, rule)
        if not isinstance(saved, cls):
            raise TypeError(f"not a {cls.__name__} nor its 0.2.0 tuple: {type(saved).__name__}")
        if saved.version != VERSION:
            name, version = cls.__name__, saved.version
            raise ValueError(f"{name} version {version}: this code reads version {VERSION}")
        return saved

    @classmethod
    def _from_0_2_0(cls, saved: tuple[Any, ...], rule: str) -> Self:
        raise NotImplementedError


@dataclass(frozen=True, slots=True)
class ThresholdRuleSnapshot(_RuleRecord):
    """A rule that is one ``BurstTracker`` (failed_login_burst, credential_stuffing, ...)."""

    version: int
    rule: str
    clock: ClockSnapshot
    bursts: BurstsRecord

    @classmethod
    def _from_0_2_0(cls, saved: tuple[Any, ...], rule: str) -> Self:
        """0.2.0 wrote ``(clock, (subject rows, expiry))``."""
        clock, (subjects, expiry) = saved
        return cls(VERSION, rule, clock, BurstsRecord(subjects, expiry))


@dataclass(frozen=True, slots=True)
class BruteForceSuccessSnapshot(_RuleRecord):
    """brute_force_success: its failed-login bursts and the success incident per user."""

    version: int
    rule: str
    clock: ClockSnapshot
    bursts: BurstsRecord
    hits: tuple[tuple[str, IncidentRow], ...]

    @classmethod
    def _from_0_2_0(cls, saved: tuple[Any, ...], rule: str) -> Self:
        """0.2.0 wrote ``(clock, (subject rows, expiry), hits)``."""
        clock, (subjects, expiry), hits = saved
        return cls(VERSION, rule, clock, BurstsRecord(subjects, expiry), hits)


@dataclass(frozen=True, slots=True)
class NewDeviceLoginSnapshot(_RuleRecord):
    """A login-history rule (new_device_login, new_country_login): each user's items (devices,
    countries) with their last login time, least recent first."""

    version: int
    rule: str
    clock: ClockSnapshot
    history: tuple[tuple[str, tuple[tuple[str, datetime], ...]], ...]
    expiry: Expiries

    @classmethod
    def _from_0_2_0(cls, saved: tuple[Any, ...], rule: str) -> Self:
        """0.2.0 wrote ``(clock, history, expiry)``."""
        clock, history, expiry = saved
        return cls(VERSION, rule, clock, history, expiry)


TravelLogin = tuple[
    datetime, str, str | None, str | None, str | None, float | None, float | None, int | None
]
"""A located successful login: (time, event id, ip, country, city, latitude, longitude, asn)."""


class _NoLegacyForm(_RuleRecord):
    """A rule added after 0.2.0: no tuple form to read."""

    __slots__ = ()

    @classmethod
    def _from_0_2_0(cls, saved: tuple[Any, ...], rule: str) -> Self:
        raise TypeError(f"{rule}: no 0.2.0 form (the rule is newer)")


@dataclass(frozen=True, slots=True)
class ImpossibleTravelSnapshot(_NoLegacyForm):
    """impossible_travel: each user's latest located login and current incident."""

    version: int
    rule: str
    clock: ClockSnapshot
    last: tuple[tuple[str, TravelLogin], ...]
    incidents: tuple[tuple[str, IncidentRow], ...]
    expiry: Expiries


SessionSeen = tuple[
    str, datetime, datetime, int, tuple[str, ...], tuple[str, ...], IncidentRow | None
]
"""A session: (user, first event, latest event, events, devices, IPs, its incident or None)."""


@dataclass(frozen=True, slots=True)
class SessionDeviceChangeSnapshot(_NoLegacyForm):
    """session_device_change: the devices and IPs of each recent session."""

    version: int
    rule: str
    clock: ClockSnapshot
    sessions: tuple[tuple[str, SessionSeen], ...]
    expiry: Expiries


@dataclass(frozen=True, slots=True)
class PasswordSprayingSnapshot(_NoLegacyForm):
    """password_spraying: each IP's failed logins (time, event id, user) and incident."""

    version: int
    rule: str
    clock: ClockSnapshot
    ips: tuple[tuple[str, tuple[tuple[datetime, str, str], ...], IncidentRow | None], ...]
    expiry: Expiries


@dataclass(frozen=True, slots=True)
class IpRulesSnapshot(_NoLegacyForm):
    """The IP-keyed rules of the ordered step (``ip_rules.IpRules``): credential_stuffing's
    record and password_spraying's (a step saved before spraying existed holds the first only)."""

    version: int
    stuffing: ThresholdRuleSnapshot
    spraying: PasswordSprayingSnapshot


RuleSnapshot = (
    ThresholdRuleSnapshot
    | BruteForceSuccessSnapshot
    | NewDeviceLoginSnapshot
    | ImpossibleTravelSnapshot
    | SessionDeviceChangeSnapshot
)
"""Any rule's record (each names its rule: a partition's snapshot matches them by name)."""
