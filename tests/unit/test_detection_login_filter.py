"""Login-only rules skip other events: same alerts and state as checking every event."""

from __future__ import annotations

import pickle
from datetime import timedelta
from itertools import pairwise
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from operators.detections.brute_force_success import BruteForceSuccess
from operators.detections.credential_stuffing import CredentialStuffing
from operators.detections.failed_login_burst import FailedLoginBurst
from operators.detections.new_device_login import NewDeviceLogin
from operators.detections.params import (
    BruteForceSuccessParams,
    CredentialStuffingParams,
    FailedLoginBurstParams,
    NewDeviceLoginParams,
)
from operators.detections.rule import Reads
from operators.records import Event
from tests.unit.factories import NOW, make_event

LATENESS = timedelta(seconds=5)
RULES: list[tuple[type[Any], object]] = [
    (FailedLoginBurst, FailedLoginBurstParams(3, timedelta(seconds=30), LATENESS)),
    (CredentialStuffing, CredentialStuffingParams(2, timedelta(seconds=30), LATENESS)),
    (BruteForceSuccess, BruteForceSuccessParams(3, timedelta(seconds=30), lateness=LATENESS)),
    (NewDeviceLogin, NewDeviceLoginParams(2, timedelta(seconds=200), LATENESS)),
]
kinds = st.sampled_from(["page_view", "login_ok", "login_failed", "logout"])


def _events(spec: list[tuple[str, int, str, str]]) -> list[Event]:
    out = []
    for i, (kind, t, user, device) in enumerate(spec):
        success = None if not kind.startswith("login") else kind == "login_ok"
        out.append(
            make_event(
                "login" if success is not None else kind,
                t=t,
                user=user,
                ip=f"10.0.0.{t % 3}",
                device=device,
                success=success,
                eid=f"00000000-0000-0000-0000-{i:012d}",
            )
        )
    return out


@settings(max_examples=100)
@given(
    st.lists(
        st.tuples(
            kinds,
            st.integers(0, 300),
            st.sampled_from(["a", "b", "c"]),
            st.sampled_from(["d1", "d2", "d3"]),
        ),
        max_size=50,
    ),
    st.lists(st.integers(0, 50), max_size=4),
    st.integers(0, 3),
)
def test_login_only_rules_equal_checking_every_event(
    spec: list[tuple[str, int, str, str]], cuts: list[int], which: int
) -> None:
    """Scenario: any mix of logins and other events, any batching and wall clock pace.
    We expect: the same alerts and the same snapshot as the rule checking every event."""
    rule, params = RULES[which]
    reference = type("Every" + rule.__name__, (rule,), {"READS": Reads.EVENTS})
    events = _events(spec)
    bounds = sorted({0, len(events), *(c for c in cuts if c < len(events))})
    results = []
    for cls in (rule, reference):
        logic = cls(params)
        out = []
        for step, (a, b) in enumerate(pairwise(bounds)):
            out += logic.on_batch(events[a:b], NOW + timedelta(seconds=10 * step))
        out += logic.on_tick(NOW + timedelta(days=1))
        results.append((out, pickle.dumps(logic.snapshot())))
    assert rule.READS is Reads.LOGINS
    assert results[0] == results[1]
