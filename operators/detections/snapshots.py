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
    """new_device_login: each user's devices with their last login time, least recent first."""

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


RuleSnapshot = ThresholdRuleSnapshot | BruteForceSuccessSnapshot | NewDeviceLoginSnapshot
"""Any rule's record (each names its rule: a partition's snapshot matches them by name)."""
