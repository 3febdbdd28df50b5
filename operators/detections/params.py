"""Every built-in rule's parameters: plain frozen dataclasses whose defaults are the rules' defaults.

The running pipeline builds them from its ``RTEP_*`` settings in one place,
``dataflows/params.py``; a rule that is not mapped there runs with these defaults (its lateness
excepted: always ``RTEP_ALLOWED_LATENESS_SECONDS``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

DEFAULT_LATENESS = timedelta(seconds=60)


@dataclass(frozen=True, slots=True)
class ThresholdParams:
    """``threshold`` qualifying events (or distinct users) per subject within ``window``."""

    threshold: int
    window: timedelta
    lateness: timedelta = DEFAULT_LATENESS


@dataclass(frozen=True, slots=True)
class FailedLoginBurstParams(ThresholdParams):
    """failed_login_burst: ``threshold`` failed logins of one user within ``window``."""

    threshold: int = 5
    window: timedelta = timedelta(seconds=60)


@dataclass(frozen=True, slots=True)
class CredentialStuffingParams(ThresholdParams):
    """credential_stuffing: ``threshold`` users failing to log in from one IP within ``window``."""

    threshold: int = 10
    window: timedelta = timedelta(seconds=300)


@dataclass(frozen=True, slots=True)
class AbnormalEventRateParams(ThresholdParams):
    """abnormal_event_rate: ``threshold`` events of one user within ``window``."""

    threshold: int = 120
    window: timedelta = timedelta(seconds=60)


@dataclass(frozen=True, slots=True)
class BruteForceSuccessParams:
    """brute_force_success: a success within ``window`` after a failed-login burst (same user);
    the burst is ``burst_count`` failures within ``burst_window``."""

    burst_count: int = 5
    burst_window: timedelta = timedelta(seconds=60)
    window: timedelta = timedelta(seconds=300)
    lateness: timedelta = DEFAULT_LATENESS


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


@dataclass(frozen=True, slots=True)
class NewCountryLoginParams:
    """new_country_login: history of at most ``max_countries`` per user, forgotten after
    ``history_ttl`` without a successful login from a known country (as new_device_login)."""

    max_countries: int = 32
    history_ttl: timedelta = timedelta(days=90)
    lateness: timedelta = DEFAULT_LATENESS


@dataclass(frozen=True, slots=True)
class ImpossibleTravelParams:
    """impossible_travel: two successive successful logins of one user.

    With coordinates on both: faster than ``max_kmh`` over at least ``min_km`` (closer places are
    never travel: neighbouring cities across a border, IP geolocation's error). With countries
    only: two different countries within ``country_window``. Either way, two logins from the same
    network (ASN) are one network's exits (a VPN, a carrier, a company), never travel.
    """

    max_kmh: float = 805.0
    min_km: float = 500.0
    country_window: timedelta = timedelta(seconds=1800)
    lateness: timedelta = DEFAULT_LATENESS


@dataclass(frozen=True, slots=True)
class SessionDeviceChangeParams:
    """session_device_change: one session seen with two devices or two IPs; a session's state is
    kept ``idle`` after its latest event (the session gap: later events are another session)."""

    idle: timedelta = timedelta(seconds=1800)
    lateness: timedelta = DEFAULT_LATENESS


@dataclass(frozen=True, slots=True)
class PasswordSprayingParams:
    """password_spraying: failed logins from one IP for at least ``min_users`` users and
    ``min_attempts`` attempts within ``window``, most users (more than half) with
    ``min_per_user``..``max_per_user`` attempts each (credential_stuffing is at most
    ``min_per_user - 1`` each: see operators/detections/password_spraying.py)."""

    min_users: int = 5
    min_attempts: int = 15
    window: timedelta = timedelta(seconds=3600)
    min_per_user: int = 3
    max_per_user: int = 8
    lateness: timedelta = DEFAULT_LATENESS
