"""An event stamped at the start of time (valid: far-past timestamps are accepted) must not stop
the flow: every stateful operator used to raise OverflowError subtracting a window from it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from operators.dedup import Deduplicator, DedupParams
from operators.detection import (
    AbnormalEventRate,
    AbnormalEventRateParams,
    BruteForceSuccess,
    BruteForceSuccessParams,
    CredentialStuffing,
    CredentialStuffingParams,
    FailedLoginBurst,
    FailedLoginBurstParams,
    NewDeviceLogin,
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
