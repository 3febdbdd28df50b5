"""session_device_change: a session used from two devices or IPs; a new login is a new session."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from operators.detections.params import SessionDeviceChangeParams
from operators.detections.session_device_change import SessionDeviceChange
from operators.records import Alert, Event
from operators.sessions import Sessionizer, SessionParams
from tests.unit.factories import NOW, failed_login, login, make_event
from tests.unit.rule_runs import run, three_runs


def seen(t: float, session: str, device: str | None = "d1", ip: str | None = "8.8.8.8") -> Event:
    """A page view of ``session`` from ``device`` and ``ip``."""
    return replace(make_event("page_view", t=t, device=device, ip=ip), session_id=session)


def rule() -> SessionDeviceChange:
    return SessionDeviceChange(SessionDeviceChangeParams())


def test_one_device_and_ip_is_no_alert_two_devices_or_two_ips_is_one() -> None:
    assert run(rule(), [[seen(t, "s1") for t in range(5)]]) == []
    (alert,) = run(rule(), [[seen(0, "s1"), seen(1, "s1", device="d2")]])
    assert (alert.rule, alert.severity, alert.subject_type, alert.subject) == (
        "session_device_change", "warning", "user", "u1",
    )  # fmt: skip
    assert (alert.details["devices"], alert.details["ips"]) == (["d1", "d2"], ["8.8.8.8"])
    (by_ip,) = run(rule(), [[seen(0, "s1"), seen(1, "s1", ip="1.1.1.1")]])
    assert by_ip.details["ips"] == ["1.1.1.1", "8.8.8.8"]


def test_missing_device_or_ip_and_other_sessions_are_no_change() -> None:
    events = [seen(0, "s1"), seen(1, "s1", device=None, ip=None), seen(2, "s2", device="d2")]
    assert run(rule(), [events]) == []


def test_an_ongoing_change_updates_one_alert_and_counts_once() -> None:
    r = rule()
    alerts = run(r, [[seen(0, "s1"), seen(1, "s1", device="d2")], [seen(2, "s1", device="d3")]])
    assert len({a.alert_id for a in alerts}) == 1
    assert (alerts[-1].event_count, alerts[-1].details["devices"]) == (3, ["d1", "d2", "d3"])
    assert r.stats.take() == 1


def test_a_new_login_from_another_device_is_a_new_session_not_a_change() -> None:
    """Through the sessionizer: a successful login starts a new session; a failed login by
    someone else within the user's session is not the session's."""
    sessions = Sessionizer(SessionParams())
    events = [
        login(0, device="laptop"), seen(10, "", device="laptop", ip="10.0.0.1"),
        failed_login(20, ip="6.6.6.6", device="bot"),
        login(30, ip="9.9.9.9", device="phone"), seen(40, "", device="phone", ip="9.9.9.9"),
    ]  # fmt: skip
    events = [replace(e, session_id=None) for e in events]
    sessions.sessionize(events, NOW)
    assert len({e.session_id for e in events}) == 2
    assert run(rule(), [events]) == []
    hijack = replace(make_event("page_view", t=50, device="curl", ip="6.6.6.6"), session_id=None)
    sessions.sessionize([hijack], NOW)
    (alert,) = run(rule(), [[*events, hijack]])
    assert alert.details["devices"] == ["curl", "phone"]


def test_state_is_kept_for_the_session_gap_only() -> None:
    r = rule()
    run(r, [[seen(0, "s1")], [seen(7200, "s2")]])
    assert list(r._sessions) == ["s2"]


spec = st.lists(
    st.tuples(st.sampled_from(["s1", "s2"]), st.integers(0, 600), st.sampled_from(["d1", "d2"]),
              st.sampled_from(["8.8.8.8", "1.1.1.1", None])),
    max_size=25,
)  # fmt: skip


@settings(max_examples=80)
@given(spec=spec, size=st.integers(1, 6), cut=st.integers(0, 25))
def test_cutting_order_and_restore_do_not_change_the_alerts(
    spec: list[tuple[str, int, str, str | None]], size: int, cut: int
) -> None:
    events = [seen(t, s, device=d, ip=ip) for s, t, d, ip in spec]

    def final(alerts: list[Alert]) -> dict[str, tuple[object, ...]]:
        latest = {a.alert_id: a for a in alerts}
        return {k: (a.window_start, a.window_end, a.event_count, a.details["devices"],
                    a.details["ips"]) for k, a in latest.items()}  # fmt: skip

    whole, cut_up, resumed = three_runs(rule, events, size, cut)
    assert final(run(rule(), [events[::-1]])) == final(whole)  # any order within the session
    assert final(cut_up) == final(whole) == final(resumed)
