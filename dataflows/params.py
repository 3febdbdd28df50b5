"""Settings → parameters: the one place where the ``RTEP_*`` settings reach the operators.

Operators take plain frozen dataclasses with defaults (``operators/``: no settings there). This
module builds each from ``rtep.core.settings.Settings``: changing which setting drives a parameter
is an edit here; a setting's default is its field in ``rtep/core/settings.py`` (the documented
contract), and tests/unit/test_params.py checks that it agrees with the dataclass default.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta

from dataflows.partition_stage import RULES, StageParams, UserRule
from operators.breaker import BreakerParams
from operators.dedup import DedupParams
from operators.detections.abnormal_event_rate import AbnormalEventRate
from operators.detections.brute_force_success import BruteForceSuccess
from operators.detections.credential_stuffing import CredentialStuffing
from operators.detections.failed_login_burst import FailedLoginBurst
from operators.detections.impossible_travel import ImpossibleTravel
from operators.detections.ip_rules import IpParams
from operators.detections.new_country_login import NewCountryLogin
from operators.detections.new_device_login import NewDeviceLogin
from operators.detections.params import (
    AbnormalEventRateParams,
    BruteForceSuccessParams,
    CredentialStuffingParams,
    FailedLoginBurstParams,
    ImpossibleTravelParams,
    NewCountryLoginParams,
    NewDeviceLoginParams,
    PasswordSprayingParams,
    SessionDeviceChangeParams,
)
from operators.detections.password_spraying import PasswordSpraying
from operators.detections.rule import RuleParams
from operators.detections.session_device_change import SessionDeviceChange
from operators.rollups import RollupParams
from operators.sessions import SessionParams
from operators.validation import Limits
from rtep.core.settings import Settings
from sources.geoip import locate_from_settings


def _seconds(value: float) -> timedelta:
    return timedelta(seconds=value)


RULE_SETTINGS: dict[type[UserRule], Callable[[Settings, timedelta], RuleParams]] = {
    FailedLoginBurst: lambda s, lateness: FailedLoginBurstParams(
        s.failed_login_burst_count, _seconds(s.failed_login_burst_window_seconds), lateness
    ),
    BruteForceSuccess: lambda s, lateness: BruteForceSuccessParams(
        s.failed_login_burst_count,
        _seconds(s.failed_login_burst_window_seconds),
        _seconds(s.brute_force_success_window_seconds),
        lateness,
    ),
    NewDeviceLogin: lambda s, lateness: NewDeviceLoginParams(
        s.new_device_max_devices, timedelta(days=s.new_device_history_days), lateness
    ),
    AbnormalEventRate: lambda s, lateness: AbnormalEventRateParams(
        s.event_rate_limit, _seconds(s.event_rate_window_seconds), lateness
    ),
    CredentialStuffing: lambda s, lateness: CredentialStuffingParams(
        s.credential_stuffing_users, _seconds(s.credential_stuffing_window_seconds), lateness
    ),
    NewCountryLogin: lambda s, lateness: NewCountryLoginParams(
        s.new_country_max_countries, timedelta(days=s.new_country_history_days), lateness
    ),
    ImpossibleTravel: lambda s, lateness: ImpossibleTravelParams(
        s.travel_max_kmh, s.travel_min_km, _seconds(s.travel_country_window_seconds), lateness
    ),
    PasswordSpraying: lambda s, lateness: PasswordSprayingParams(
        s.spray_min_users,
        s.spray_min_attempts,
        _seconds(s.spray_window_seconds),
        s.spray_min_per_user,
        s.spray_max_per_user,
        lateness,
    ),
    SessionDeviceChange: lambda s, lateness: SessionDeviceChangeParams(
        _seconds(s.session_gap_seconds), lateness
    ),
}
"""The rules whose parameters have settings, given the settings and the allowed lateness."""


def rule_params(rule: type[UserRule], settings: Settings) -> RuleParams:
    """A rule's parameters: from its settings if ``RULE_SETTINGS`` maps it, else its dataclass's
    defaults; the lateness is always RTEP_ALLOWED_LATENESS_SECONDS (one watermark per partition)."""
    lateness = _seconds(settings.allowed_lateness_seconds)
    build = RULE_SETTINGS.get(rule)
    return replace(rule.PARAMS(), lateness=lateness) if build is None else build(settings, lateness)


def ip_params(settings: Settings) -> IpParams:
    """The IP-keyed rules' parameters (their steps run where partitions meet, not in ``RULES``)."""
    stuffing = rule_params(CredentialStuffing, settings)
    assert isinstance(stuffing, CredentialStuffingParams), "RULE_SETTINGS maps it"
    spraying = rule_params(PasswordSpraying, settings)
    assert isinstance(spraying, PasswordSprayingParams), "RULE_SETTINGS maps it"
    return IpParams(stuffing, spraying)


def rollup_params(settings: Settings) -> RollupParams:
    """A partition's partial rollups and the totals step share these (retention, lateness)."""
    return RollupParams(
        _seconds(settings.rollup_retention_seconds), _seconds(settings.allowed_lateness_seconds)
    )


def stage_params(settings: Settings) -> StageParams:
    """Every step of a partition's stage, the per-user rules of ``RULES`` included."""
    s = settings
    lateness = _seconds(s.allowed_lateness_seconds)
    return StageParams(
        Limits(s.max_event_bytes, _seconds(s.max_future_skew_seconds), s.field_limits()),
        BreakerParams(s.breaker_window, s.breaker_reject_share),
        # max_ids (about 250 bytes each) is for the whole input: each partition keeps its share
        DedupParams(_seconds(s.dedup_horizon_seconds), s.dedup_max_ids, lateness),
        SessionParams(
            gap=_seconds(s.session_gap_seconds),
            max_length=_seconds(s.session_max_seconds),
            lateness=lateness,
            update_interval=_seconds(s.session_update_interval_seconds),
        ),
        rollup_params(s),
        tuple(rule_params(rule, s) for rule in RULES),
        locate_from_settings(s) if s.geoip_enabled else None,
    )
