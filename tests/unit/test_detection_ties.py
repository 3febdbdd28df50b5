"""Detection must not depend on the arrival order of events within a batch or with equal times.

Upstream steps group a batch by user shard, so events stamped alike reach the IP-keyed rules in
an order that depends on how the input was cut into batches. The alert_id (derived from the
incident's first event) used to follow that order: the same incident got another id in a run
that read the same input at another pace (tests/faults/test_crash_equivalence.py).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from operators.detections.credential_stuffing import CredentialStuffing
from operators.detections.failed_login_burst import FailedLoginBurst
from operators.detections.params import CredentialStuffingParams, FailedLoginBurstParams
from tests.integration.factories import make_event

T = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)
NOW = T + timedelta(hours=1)


def failed_login(i: int, user: str, ts: datetime) -> Any:
    payload = {"userId": user, "ip": "10.0.0.9", "device": "d", "success": False}
    return make_event(i, ts=ts, type="login", user_id=user, ip="10.0.0.9", payload=payload)


RULES: list[tuple[Any, Any, Any]] = [
    (CredentialStuffing, CredentialStuffingParams(), lambda i: f"u{i}"),
    (FailedLoginBurst, FailedLoginBurstParams(), lambda i: "victim"),
]


@pytest.mark.parametrize(("cls", "params", "user"), RULES, ids=["stuffing", "burst"])
@settings(max_examples=40)
@given(order=st.randoms(use_true_random=False), cut=st.integers(1, 12))
def test_alerts_do_not_depend_on_the_order_of_equal_timestamps(
    cls: Any, params: Any, user: Any, order: Any, cut: int
) -> None:
    events = [failed_login(i, user(i), T + timedelta(seconds=i // 4)) for i in range(12)]

    def alerts(items: list[Any]) -> dict[str, tuple[object, ...]]:
        logic = cls(params)
        out: dict[str, tuple[object, ...]] = {}
        for k in range(0, len(items), cut):
            for a in logic.on_batch(items[k : k + cut], NOW):
                out[a.alert_id] = (a.window_start, a.window_end, a.event_count)
        return out

    by_ts: dict[datetime, list[Any]] = {}
    for e in events:
        by_ts.setdefault(e.ts, []).append(e)
    for group in by_ts.values():
        order.shuffle(group)
    shuffled = [e for ts in sorted(by_ts) for e in by_ts[ts]]
    assert alerts(shuffled) == alerts(events)


@pytest.mark.parametrize(("cls", "params", "user"), RULES, ids=["stuffing", "burst"])
@settings(max_examples=40)
@given(order=st.randoms(use_true_random=False))
def test_alerts_do_not_depend_on_the_order_within_a_batch(
    cls: Any, params: Any, user: Any, order: Any
) -> None:
    """A batch arrives grouped by user shard upstream: any permutation gives the same alerts."""
    events = [failed_login(i, user(i), T + timedelta(seconds=3 * i)) for i in range(14)]
    shuffled = order.sample(events, k=len(events))
    first = {a.alert_id: a.event_count for a in cls(params).on_batch(events, NOW)}
    assert {a.alert_id: a.event_count for a in cls(params).on_batch(shuffled, NOW)} == first
