"""dataflows/params.py: the settings reach every rule's parameters, and agree with their defaults.

A threshold's default lives twice: as the ``RTEP_*`` setting's default (what runs) and as the
parameters' dataclass default (what code without settings gets). This keeps them equal.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from dataflows.params import ip_params, rule_params, stage_params
from dataflows.partition_stage import RULES, UserRule
from operators.detections.brute_force_success import BruteForceSuccess
from operators.detections.credential_stuffing import CredentialStuffing
from operators.detections.failed_login_burst import FailedLoginBurst
from operators.detections.impossible_travel import ImpossibleTravel
from operators.detections.new_country_login import NewCountryLogin
from operators.detections.params import DEFAULT_LATENESS
from operators.detections.password_spraying import PasswordSpraying
from operators.detections.session_device_change import SessionDeviceChange
from rtep.core.settings import Settings

EVERY_RULE: tuple[type[UserRule], ...] = (*RULES, CredentialStuffing, PasswordSpraying)


@pytest.mark.parametrize("rule", EVERY_RULE, ids=lambda rule: rule.RULE)
def test_default_settings_give_the_dataclass_defaults(rule: type[UserRule]) -> None:
    settings = Settings()
    assert timedelta(seconds=settings.allowed_lateness_seconds) == DEFAULT_LATENESS
    assert rule_params(rule, settings) == rule.PARAMS()


def test_settings_reach_the_rules_of_the_stage_and_the_stuffing_step() -> None:
    settings = Settings(
        failed_login_burst_count=7,
        brute_force_success_window_seconds=90,
        credential_stuffing_users=4,
        allowed_lateness_seconds=5,
    )
    stage = stage_params(settings)
    late = timedelta(seconds=5)
    assert stage.rule_params(FailedLoginBurst) == replace(
        FailedLoginBurst.PARAMS(), threshold=7, lateness=late
    )
    brute = stage.rule_params(BruteForceSuccess)
    assert (brute.burst_count, brute.window, brute.lateness) == (7, timedelta(seconds=90), late)
    assert [type(p) for p in stage.rules] == [rule.PARAMS for rule in RULES]
    stuffing = rule_params(CredentialStuffing, settings)
    assert (stuffing.threshold, stuffing.lateness) == (4, late)


def test_the_location_and_spraying_settings_reach_their_rules() -> None:
    settings = Settings(
        travel_max_kmh=900,
        travel_min_km=100,
        travel_country_window_seconds=600,
        new_country_max_countries=4,
        spray_min_users=7,
        spray_min_attempts=20,
        spray_window_seconds=1200,
        spray_min_per_user=2,
        spray_max_per_user=6,
        session_gap_seconds=900,
    )
    stage = stage_params(settings)
    travel = stage.rule_params(ImpossibleTravel)
    assert (travel.max_kmh, travel.min_km, travel.country_window) == (
        900,
        100,
        timedelta(seconds=600),
    )
    assert stage.rule_params(NewCountryLogin).max_countries == 4
    assert stage.rule_params(SessionDeviceChange).idle == timedelta(seconds=900)
    spraying = ip_params(settings).spraying
    assert (spraying.min_users, spraying.min_attempts, spraying.window) == (
        7,
        20,
        timedelta(seconds=1200),
    )
    assert (spraying.min_per_user, spraying.max_per_user) == (2, 6)


def test_geolocation_switched_off_opens_no_data_and_locates_nothing() -> None:
    # a path that would stop the flow at start if it were opened
    settings = Settings(geoip_enabled=False, geoip_country_db="/nonexistent/GeoLite2.mmdb")
    assert stage_params(settings).locate is None
