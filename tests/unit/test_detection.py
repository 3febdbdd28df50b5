"""Detection rules: thresholds exactly at N-1 vs N, one alert id per incident, bounded state."""

from __future__ import annotations

import pickle
from datetime import timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from operators.detections.abnormal_event_rate import AbnormalEventRate
from operators.detections.brute_force_success import BruteForceSuccess
from operators.detections.credential_stuffing import CredentialStuffing
from operators.detections.failed_login_burst import FailedLoginBurst
from operators.detections.new_device_login import NewDeviceLogin
from operators.detections.params import (
    AbnormalEventRateParams,
    BruteForceSuccessParams,
    CredentialStuffingParams,
    FailedLoginBurstParams,
    NewDeviceLoginParams,
)
from operators.records import Alert, Event
from tests.unit.factories import NOW, failed_login, login, make_event

LATER = NOW + timedelta(days=400)
N, W = 5, 60


def alerts_of(logic: object, batches: list[list[Event]]) -> list[Alert]:
    """Run batches at the fixed clock, then expire everything."""
    out: list[Alert] = []
    for batch in batches:
        out.extend(logic.on_batch(batch, NOW))  # type: ignore[attr-defined]
    out.extend(logic.on_tick(LATER))  # type: ignore[attr-defined]
    return out


def burst_rule() -> FailedLoginBurst:
    return FailedLoginBurst(FailedLoginBurstParams(N, timedelta(seconds=W)))


# --- failed_login_burst ----------------------------------------------------------------------------
def test_failed_login_burst_threshold_is_exact() -> None:
    below = [failed_login(t) for t in range(N - 1)]
    assert alerts_of(burst_rule(), [below]) == []
    at = [failed_login(t * W / (N - 1)) for t in range(N)]  # N failures spanning exactly W
    (alert,) = alerts_of(burst_rule(), [at])
    assert (alert.rule, alert.severity, alert.subject_type, alert.subject) == (
        "failed_login_burst", "warning", "user", "u1",
    )  # fmt: skip
    assert alert.event_count == N and alert.window_start == at[0].ts
    assert alert.window_end == at[-1].ts and alert.created_at == NOW
    too_slow = [failed_login(t * (W + 1) / (N - 1)) for t in range(N)]
    assert alerts_of(burst_rule(), [too_slow]) == []


def test_successes_and_other_users_do_not_count() -> None:
    mixed = [failed_login(t, user=f"u{t % 2}") for t in range(2 * N - 2)] + [login(10)]
    assert alerts_of(burst_rule(), [mixed]) == []


def test_ongoing_burst_updates_one_alert_and_counts_incidents_once() -> None:
    logic = burst_rule()
    first = logic.on_batch([failed_login(t) for t in range(N)], NOW)
    more = logic.on_batch([failed_login(N + t) for t in range(3)], NOW)
    assert len(first) == len(more) == 1
    assert first[0].alert_id == more[0].alert_id and more[0].event_count == N + 3
    assert more[0].created_at == first[0].created_at
    assert (logic.RULE, logic.SEVERITY, logic.stats.take()) == ("failed_login_burst", "warning", 1)
    assert logic.stats.take() == 0
    later = logic.on_batch([failed_login(1000 + t) for t in range(N)], NOW)
    assert later[0].alert_id != first[0].alert_id  # a new burst after the window: new incident


@st.composite
def bursts(draw: st.DrawFn) -> list[list[float]]:
    """Bursts of 1..2N failure offsets within W, separated by more than W."""
    out, start = [], 0.0
    for _ in range(draw(st.integers(min_value=1, max_value=5))):
        offsets = draw(st.lists(st.integers(min_value=0, max_value=W), min_size=1, max_size=2 * N))
        times = sorted(start + o for o in offsets)
        out.append(times)
        start = times[-1] + W + 1 + draw(st.integers(min_value=0, max_value=500))
    return out


@settings(max_examples=150)
@given(bursts(), st.integers(min_value=1, max_value=7))
def test_exactly_one_alert_id_per_incident(groups: list[list[float]], batch: int) -> None:
    events = [failed_login(t) for g in groups for t in g]
    batches = [events[i : i + batch] for i in range(0, len(events), batch)]
    logic = burst_rule()
    alerts = alerts_of(logic, batches)
    expected = [len(g) for g in groups if len(g) >= N]
    ids = list(dict.fromkeys(a.alert_id for a in alerts))
    assert len(ids) == len(expected)
    final = {a.alert_id: a for a in alerts}
    assert [final[i].event_count for i in ids] == expected
    assert logic.is_empty()


@settings(max_examples=60)
@given(bursts(), st.integers(min_value=1, max_value=7), st.integers(min_value=0))
def test_detection_snapshot_restore_equals_uninterrupted(
    groups: list[list[float]], batch: int, at: int
) -> None:
    def batches() -> list[list[Event]]:
        events = [
            failed_login(t, eid=f"00000000-0000-0000-0000-{i:012d}")
            for i, t in enumerate(t for g in groups for t in g)
        ]
        return [events[i : i + batch] for i in range(0, len(events), batch)]

    expected = alerts_of(burst_rule(), batches())
    parts = batches()
    stop = at % (len(parts) + 1)
    logic = burst_rule()
    out: list[Alert] = []
    for part in parts[:stop]:
        out.extend(logic.on_batch(part, NOW))
    params = FailedLoginBurstParams(N, timedelta(seconds=W))
    restored = FailedLoginBurst.restore(pickle.loads(pickle.dumps(logic.snapshot())), params)
    out.extend(alerts_of(restored, parts[stop:]))
    assert out == expected


# --- credential_stuffing ---------------------------------------------------------------------------
def stuffing() -> CredentialStuffing:
    return CredentialStuffing(CredentialStuffingParams(10, timedelta(seconds=300)))


def test_credential_stuffing_counts_distinct_users_per_ip() -> None:
    nine_users = [failed_login(t, user=f"v{t % 9}", ip="1.2.3.4") for t in range(40)]
    assert alerts_of(stuffing(), [nine_users]) == []
    ten = [failed_login(t * 30, user=f"v{t}", ip="1.2.3.4") for t in range(10)]  # span 270 s
    (alert,) = alerts_of(stuffing(), [ten])
    assert (alert.rule, alert.severity, alert.subject_type, alert.subject) == (
        "credential_stuffing", "critical", "ip", "1.2.3.4",
    )  # fmt: skip
    assert alert.details["distinct_users"] == 10 and alert.event_count == 10
    spread = [failed_login(t * 34, user=f"v{t}", ip="1.2.3.4") for t in range(10)]  # 306 s
    assert alerts_of(stuffing(), [spread]) == []


# --- brute_force_success ---------------------------------------------------------------------------
def brute() -> BruteForceSuccess:
    return BruteForceSuccess(BruteForceSuccessParams())


def test_success_after_burst_is_a_takeover_alert() -> None:
    burst = [failed_login(t) for t in range(5)]
    alerts = alerts_of(brute(), [burst, [login(200)], [login(4 + 300)]])
    assert len(alerts) == 2 and alerts[0].alert_id == alerts[1].alert_id
    alert = alerts[-1]
    assert (alert.rule, alert.severity, alert.subject) == ("brute_force_success", "critical", "u1")
    assert alert.details["successful_logins"] == 2 and alert.event_count == 7
    assert alerts_of(brute(), [burst, [login(4 + 301)]]) == []  # too late
    assert alerts_of(brute(), [burst[:4], [login(10)]]) == []  # no burst
    assert alerts_of(brute(), [burst, [login(20, user="other")]]) == []


def test_brute_force_state_is_bounded() -> None:
    logic = brute()
    logic.on_batch([failed_login(t, user=f"x{t}") for t in range(100)], NOW)
    assert not logic.is_empty()
    logic.on_tick(LATER)
    assert logic.is_empty()


# --- new_device_login ------------------------------------------------------------------------------
def test_new_device_login() -> None:
    params = NewDeviceLoginParams(max_devices=2, history_ttl=timedelta(days=30))
    logic = NewDeviceLogin(params)
    assert logic.on_batch([login(0, device="laptop")], NOW) == []  # first login seeds history
    assert logic.on_batch([login(10, device="laptop")], NOW) == []
    assert logic.on_batch([failed_login(15, device="evil")], NOW) == []  # failures are not logins
    (alert,) = logic.on_batch([login(20, device="phone"), login(21, device="phone")], NOW)
    assert (alert.rule, alert.severity, alert.details["device"]) == (
        "new_device_login", "info", "phone",
    )  # fmt: skip
    (evicting,) = logic.on_batch([login(30, device="tablet")], NOW)  # laptop is forgotten
    assert evicting.alert_id != alert.alert_id
    assert len(logic.on_batch([login(40, device="laptop")], NOW)) == 1
    month = 31 * 86400
    assert logic.on_batch([login(month, device="other")], NOW) == []  # history expired first
    logic.on_tick(LATER)
    assert logic.is_empty()


# --- abnormal_event_rate ---------------------------------------------------------------------------
def test_abnormal_event_rate_threshold() -> None:
    params = AbnormalEventRateParams(120, timedelta(seconds=60))
    below = [make_event(t=t * 0.5) for t in range(119)]
    assert alerts_of(AbnormalEventRate(params), [below]) == []
    at = [make_event(t=t * 0.5) for t in range(120)]
    (alert,) = alerts_of(AbnormalEventRate(params), [at])
    assert alert.event_count == 120 and alert.rule == "abnormal_event_rate"


def test_next_tick_schedules_expiry_and_never_busy_loops() -> None:
    logic = burst_rule()
    event = failed_login(0)
    wall = event.ts
    logic.on_batch([event], wall)
    tick = logic.next_tick()
    assert tick is not None and tick >= wall + timedelta(seconds=1)
    logic.on_tick(tick)
    assert logic.is_empty() and logic.next_tick() is None


@settings(max_examples=100)
@given(
    st.lists(
        st.tuples(st.integers(min_value=0, max_value=30), st.integers(min_value=0, max_value=290)),
        max_size=60,
    ),
    st.integers(min_value=2, max_value=12),
)
def test_credential_stuffing_alerts_iff_enough_distinct_users_within_the_window(
    attempts: list[tuple[int, int]], users: int
) -> None:
    """All attempts fit in one window (< 300 s): an alert iff >= `users` distinct accounts."""
    params = CredentialStuffingParams(users, timedelta(seconds=300))
    events = [
        failed_login(t, user=f"v{u}", ip="9.9.9.9") for u, t in sorted(attempts, key=lambda a: a[1])
    ]
    alerts = alerts_of(CredentialStuffing(params), [events])
    distinct = len({u for u, _ in attempts})
    assert len({a.alert_id for a in alerts}) == (1 if distinct >= users else 0)
    if alerts:
        assert alerts[-1].details["distinct_users"] == distinct


@settings(max_examples=100)
@given(
    st.integers(min_value=0, max_value=8),
    st.lists(st.integers(min_value=-30, max_value=400), min_size=1, max_size=5),
)
def test_brute_force_success_needs_a_burst_and_a_success_within_the_window(
    failures: int, successes: list[int]
) -> None:
    burst = [failed_login(t * 5) for t in range(failures)]
    end = (failures - 1) * 5
    logins = [login(end + s) for s in sorted(successes)]
    alerts = alerts_of(brute(), [burst, logins])
    expected = failures >= 5 and any(end + s >= 0 and s <= 300 for s in successes)
    assert len({a.alert_id for a in alerts}) == (1 if expected else 0)
