"""Any valid event time must pass every stateful operator without raising (an exception there
stops the flow, and the replay after the restart stops it again). An event stamped at the start
of time (valid: far-past timestamps are accepted) used to raise OverflowError in all of them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from operators.dedup import Deduplicator, DedupParams
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
from operators.rollups import MinuteRollup, RollupParams
from operators.sessions import Sessionizer, SessionParams
from operators.state import minus
from tests.integration.factories import make_event

START = datetime.min.replace(tzinfo=UTC)
NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
LOGIC: list[tuple[Any, Any]] = [
    (Sessionizer, SessionParams()),
    (Deduplicator, DedupParams()),
    (FailedLoginBurst, FailedLoginBurstParams()),
    (BruteForceSuccess, BruteForceSuccessParams()),
    (NewDeviceLogin, NewDeviceLoginParams()),
    (AbnormalEventRate, AbnormalEventRateParams()),
    (CredentialStuffing, CredentialStuffingParams()),
    (MinuteRollup, RollupParams()),
]


def events_at_the_start_of_time() -> list[Any]:
    """Failed and successful logins and page views from 0001-01-01T00:00:00Z on."""
    out = []
    for i in range(12):
        ts = START + timedelta(seconds=i)
        failed = {"userId": "u", "ip": "10.0.0.9", "device": "d", "success": False}
        out.append(make_event(i, ts=ts, type="login", user_id=f"u{i % 2}", payload=failed))
        out.append(make_event(100 + i, ts=ts, user_id="u0"))
    ok = {"userId": "u0", "ip": "10.0.0.9", "device": "new"}
    out.append(make_event(200, ts=START + timedelta(seconds=20), type="login", payload=ok))
    return out


@pytest.mark.parametrize(("cls", "params"), LOGIC, ids=lambda x: getattr(x, "__name__", ""))
def test_every_operator_survives_an_event_at_the_start_of_time(cls: Any, params: Any) -> None:
    logic = cls(params)
    logic.on_batch(events_at_the_start_of_time(), NOW)
    logic.on_tick(NOW + timedelta(days=2))
    restored = cls.restore(logic.snapshot(), params)
    restored.on_batch([make_event(300, ts=NOW - timedelta(minutes=1))], NOW)
    restored.on_tick(NOW + timedelta(days=4))


def test_minus_saturates_at_the_start_of_time() -> None:
    assert minus(START + timedelta(seconds=5), timedelta(minutes=1)) == START
    assert minus(NOW, timedelta(minutes=1)) == NOW - timedelta(minutes=1)


_times = st.datetimes(
    min_value=datetime(1, 1, 1), max_value=datetime(2026, 11, 24, 12, 5), timezones=st.just(UTC)
)
_events = st.lists(
    st.tuples(_times, st.sampled_from(["page_view", "login-ok", "login-failed", "logout"]),
              st.integers(0, 4), st.integers(0, 2)),
    max_size=30,
)  # fmt: skip


def _event(i: int, ts: datetime, kind: str, user: int, ip: int) -> Any:
    payload: dict[str, object] = {"userId": f"u{user}", "ip": f"10.0.0.{ip}", "device": f"d{i % 3}"}
    if kind.startswith("login"):
        payload["success"] = kind == "login-ok"
    return make_event(
        i,
        ts=ts,
        type=kind.partition("-")[0],
        user_id=f"u{user}",
        ip=f"10.0.0.{ip}",
        payload=payload,
    )


@settings(max_examples=60)
@given(events=_events, cut=st.integers(1, 30), ticks=st.lists(st.integers(0, 10**6), max_size=3))
def test_no_valid_event_time_makes_an_operator_raise(
    events: list[tuple[datetime, str, int, int]], cut: int, ticks: list[int]
) -> None:
    """Any timestamps from 0001-01-01Z to now + skew, in any order, any batching, any ticks."""
    items = [_event(i, *e) for i, e in enumerate(events)]
    for cls, params in LOGIC:
        logic = cls(params)
        for k in range(0, len(items), cut):
            logic.on_batch(items[k : k + cut], NOW)
        for seconds in ticks:
            logic.on_tick(NOW + timedelta(seconds=seconds))
        cls.restore(logic.snapshot(), params).on_tick(NOW + timedelta(days=30))
