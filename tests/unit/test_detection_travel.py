"""impossible_travel and new_country_login: thresholds at, below and above; batch cutting; snapshots."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from operators.detections.impossible_travel import ImpossibleTravel, distance_km
from operators.detections.new_country_login import NewCountryLogin
from operators.detections.params import ImpossibleTravelParams, NewCountryLoginParams
from operators.records import Alert, Event
from tests.unit.factories import failed_login, login
from tests.unit.rule_runs import run, three_runs

PARIS = (48.8566, 2.3522)
NEW_YORK = (40.7128, -74.0060)
LYON = (45.7640, 4.8357)  # 392 km from Paris
PARIS_NY_KM = distance_km(*PARIS, *NEW_YORK)  # about 5,837 km


def located(
    t: float, country: str | None, where: tuple[float, float] | None = None, *,
    user: str = "u1", asn: int | None = None, success: bool = True,
) -> Event:  # fmt: skip
    """A login from ``country`` (and coordinates ``where``: a city database)."""
    base = login(t, user=user) if success else failed_login(t, user=user)
    lat, lon = where if where is not None else (None, None)
    return replace(base, country=country, latitude=lat, longitude=lon, asn=asn, city=None)


def final(alerts: list[Alert]) -> dict[str, tuple[object, ...]]:
    """Each incident's last emitted state (what rtep.alerts keeps)."""
    latest = {a.alert_id: a for a in alerts}
    return {k: (a.window_start, a.window_end, a.event_count, a.details) for k, a in latest.items()}


# --- impossible_travel: distance and speed -------------------------------------------------------
def travel(**kw: object) -> ImpossibleTravel:
    return ImpossibleTravel(replace(ImpossibleTravelParams(), **kw))  # type: ignore[arg-type]


def test_speed_threshold_is_exact() -> None:
    hop = [located(0, "FR", PARIS), located(3600, "US", NEW_YORK)]  # PARIS_NY_KM km/h
    for max_kmh, fires in ((PARIS_NY_KM, False), (PARIS_NY_KM + 1, False), (PARIS_NY_KM - 1, True)):
        assert bool(run(travel(max_kmh=max_kmh), [hop])) is fires, max_kmh
    slow = [located(0, "FR", PARIS), located(8 * 3600, "US", NEW_YORK)]  # a flight: 730 km/h
    assert run(travel(), [slow]) == []
    (alert,) = run(travel(), [[located(0, "FR", PARIS), located(3600, "US", NEW_YORK)]])
    assert (alert.rule, alert.severity, alert.subject_type, alert.subject) == (
        "impossible_travel", "critical", "user", "u1",
    )  # fmt: skip
    assert alert.details["basis"] == "distance"
    assert alert.details["distance_km"] == pytest.approx(PARIS_NY_KM, abs=0.1)
    assert alert.details["speed_kmh"] == pytest.approx(PARIS_NY_KM, abs=0.1)
    assert (alert.details["country"], alert.details["latitude"]) == ("US", NEW_YORK[0])
    assert alert.details["from"]["country"] == "FR" and alert.details["to"]["country"] == "US"


def test_closer_than_min_km_never_alerts() -> None:
    km = distance_km(*PARIS, *LYON)
    for min_km, fires in ((km + 1, False), (km, True), (km - 1, True)):
        # one second apart: any distance is "too fast"; only the minimum distance holds it back
        alerts = run(travel(min_km=min_km), [[located(0, "FR", PARIS), located(1, "FR", LYON)]])
        assert bool(alerts) is fires, min_km


def test_same_asn_is_one_network_not_travel() -> None:
    pair = [located(0, "FR", PARIS, asn=13335), located(60, "US", NEW_YORK, asn=13335)]
    assert run(travel(), [pair]) == []
    other = [located(0, "FR", PARIS, asn=13335), located(60, "US", NEW_YORK, asn=7922)]
    assert len(run(travel(), [other])) == 1


# --- impossible_travel: countries only -----------------------------------------------------------
def test_country_window_is_exact() -> None:
    for seconds, fires in ((1799, True), (1800, True), (1801, False)):
        alerts = run(travel(), [[located(0, "FR"), located(seconds, "DE")]])
        assert bool(alerts) is fires, seconds
    (alert,) = run(travel(), [[located(0, "FR"), located(60, "DE")]])
    assert alert.details["basis"] == "country" and alert.details["country"] == "DE"


def test_same_country_failures_and_unlocated_logins_never_alert() -> None:
    assert run(travel(), [[located(0, "FR"), located(60, "FR")]]) == []
    assert run(travel(), [[located(0, "FR"), located(60, "DE", success=False)]]) == []
    # an unlocated login (a private address) neither alerts nor hides the previous location
    hops = [located(0, "FR"), located(30, None), located(60, "DE")]
    assert len(run(travel(), [hops])) == 1


def test_a_round_trip_is_one_incident() -> None:
    hops = [located(0, "FR"), located(60, "RU"), located(120, "FR")]
    alerts = run(travel(), [hops[:2], hops[2:]])
    assert len({a.alert_id for a in alerts}) == 1
    assert (alerts[-1].event_count, alerts[-1].window_end) == (3, hops[2].ts)
    assert travel().stats.opened == 0
    rule = travel()
    run(rule, [hops])
    assert rule.stats.take() == 1 and rule.stats.take_countries() == {"RU": 1}


def test_state_expires_after_the_horizon() -> None:
    rule = travel()
    run(rule, [[located(0, "FR", PARIS)], [located(30 * 3600, "US", NEW_YORK, user="u2")]])
    assert list(rule._last) == ["u2"]  # u1's login is past any speed's reach


hop_spec = st.lists(
    st.tuples(
        st.sampled_from(["u1", "u2"]), st.integers(0, 4000), st.sampled_from(["FR", "DE", "US"])
    ),
    max_size=25,
)


@pytest.mark.parametrize(
    "make",
    [travel, lambda: NewCountryLogin(NewCountryLoginParams())],
    ids=["impossible_travel", "new_country_login"],
)
@settings(max_examples=80)
@given(hops=hop_spec, size=st.integers(1, 6), cut=st.integers(0, 25))
def test_batch_cutting_and_restore_do_not_change_the_alerts(
    make: Callable[[], ImpossibleTravel | NewCountryLogin],
    hops: list[tuple[str, int, str]],
    size: int,
    cut: int,
) -> None:
    events = sorted((located(t, c, user=u) for u, t, c in hops), key=lambda e: (e.ts, e.event_id))
    whole, cut_up, resumed = three_runs(make, events, size, cut)
    assert final(cut_up) == final(whole) == final(resumed)


# --- new_country_login ---------------------------------------------------------------------------
def test_new_country_login_after_the_first_login_seeds() -> None:
    rule = NewCountryLogin(NewCountryLoginParams())
    assert run(rule, [[located(0, "FR"), located(60, "FR"), located(90, None)]]) == []
    (alert,) = run(rule, [[located(120, "DE"), located(180, "DE", success=False)]])
    assert (alert.rule, alert.severity, alert.subject) == ("new_country_login", "info", "u1")
    assert (alert.details["country"], alert.details["known_countries"]) == ("DE", 1)
    assert run(rule, [[located(240, "DE"), located(300, "FR")]]) == []  # both known now
    assert run(rule, [[located(360, "IT", success=False)]]) == []  # failures do not count


def test_new_country_history_is_bounded_and_forgotten() -> None:
    ttl = timedelta(days=1).total_seconds()
    rule = NewCountryLogin(NewCountryLoginParams(max_countries=2, history_ttl=timedelta(days=1)))
    run(rule, [[located(0, "FR"), located(1, "DE"), located(2, "IT")]])  # FR dropped: 2 max
    assert len(run(rule, [[located(3, "FR")]])) == 1
    # exactly the TTL after the last login: still known; just after: a fresh history (no alert)
    assert run(rule, [[located(3 + ttl, "ES")]]) != []
    assert run(rule, [[located(3 + 2 * ttl + 1, "PT")]]) == []
