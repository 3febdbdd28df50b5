"""Metric observers: the per-process session gauges are the sum over the partitions' sessionizers;
alerts by country."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from prometheus_client import REGISTRY

from dataflows.observers import observe_alerts, observe_sessions
from operators.detections.new_country_login import NewCountryLogin
from operators.detections.params import NewCountryLoginParams
from operators.sessions import Sessionizer, SessionParams
from rtep.core import metrics
from tests.unit.factories import NOW, login, make_event

PARAMS = SessionParams(gap=timedelta(seconds=100), lateness=timedelta(seconds=30))


def _gauges() -> tuple[float, float]:
    return metrics.ACTIVE_SESSIONS._value.get(), metrics.SESSION_STATE_USERS._value.get()


def test_session_gauges_sum_the_partitions_and_drop_a_partitions_share_when_it_empties() -> None:
    """Scenario: two partitions' sessionizers, 2 and 3 users; then the first closes its sessions
    (one by logout, so its user stays held for stragglers), then forgets everything.
    We expect: the gauges move by each one's change, so they stay the sum of both."""
    start_open, start_users = _gauges()
    a, b = Sessionizer(PARAMS), Sessionizer(PARAMS)
    a.on_batch([make_event(t=0, user="u1"), make_event(t=1, user="u2")], NOW)
    observe_sessions(a)
    b.on_batch([make_event(t=0, user=f"v{i}") for i in range(3)], NOW)
    observe_sessions(b)
    observe_sessions(b)  # nothing changed: nothing added again
    assert _gauges() == (start_open + 5, start_users + 5)
    a.on_batch([make_event("logout", t=2, user="u1")], NOW)
    observe_sessions(a)
    assert _gauges() == (start_open + 4, start_users + 5)
    a.on_tick(NOW + timedelta(days=400))
    observe_sessions(a)
    assert a.is_empty() and _gauges() == (start_open + 3, start_users + 3)


def test_alerts_are_counted_by_the_country_of_the_login_that_opened_them() -> None:
    def count(country: str) -> float:
        value = REGISTRY.get_sample_value(
            "rtep_alerts_by_country_total", {"rule": "new_country_login", "country": country}
        )
        return value or 0.0

    rule = NewCountryLogin(NewCountryLoginParams())
    before = count("DE"), count("JP")
    logins = [replace(login(t), country=c) for t, c in ((0, "FR"), (1, "DE"), (2, "JP"), (3, "DE"))]
    rule.on_batch(logins, NOW)
    observe_alerts(rule)
    assert (count("DE") - before[0], count("JP") - before[1]) == (1.0, 1.0)
    assert rule.stats.take_countries() == {}
