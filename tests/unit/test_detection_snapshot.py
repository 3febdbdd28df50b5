"""Threshold-rule snapshots: compact, equivalent after a round trip, the 0.2.0 form still restores.

Every subject of every rule is snapshotted at each Bytewax snapshot interval, while the whole flow
waits: the windows are kept as columns (int64 times, joined ids) so that this stays short.
"""

from __future__ import annotations

import pickle
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from operators.detections.abnormal_event_rate import AbnormalEventRate
from operators.detections.brute_force_success import BruteForceSuccess
from operators.detections.credential_stuffing import CredentialStuffing
from operators.detections.failed_login_burst import FailedLoginBurst
from operators.detections.params import (
    AbnormalEventRateParams,
    BruteForceSuccessParams,
    CredentialStuffingParams,
    FailedLoginBurstParams,
)
from operators.detections.snapshots import VERSION, BruteForceSuccessSnapshot
from operators.records import Event
from tests.integration.factories import make_event

T = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)
NOW = T + timedelta(hours=1)
LATER = NOW + timedelta(days=400)
W = timedelta(seconds=60)
RULES: list[tuple[Any, Any]] = [
    (FailedLoginBurst, FailedLoginBurstParams(3, W)),
    (CredentialStuffing, CredentialStuffingParams(3, W)),
    (AbnormalEventRate, AbnormalEventRateParams(4, W)),
    (BruteForceSuccess, BruteForceSuccessParams(3, W, W)),
]
IDS = [rule.__name__ for rule, _ in RULES]


def login(i: int, user: str, seconds: int, success: bool) -> Event:
    ip = f"10.0.0.{len(user) % 2}"
    payload = {"userId": user, "ip": ip, "device": "d", "success": success}
    ts = T + timedelta(seconds=seconds)
    return make_event(i, ts=ts, type="login", user_id=user, ip=ip, payload=payload)


events_spec = st.lists(
    st.tuples(st.sampled_from(["a", "bb", "ccc"]), st.integers(0, 200), st.booleans()),
    max_size=50,
)


def run(logic: Any, batches: list[list[Event]]) -> list[tuple[Any, ...]]:
    out = []
    for batch in batches:
        out.extend(logic.on_batch(batch, NOW))
    return [(a.alert_id, a.window_start, a.window_end, a.event_count) for a in out]


@pytest.mark.parametrize(("cls", "params"), RULES, ids=IDS)
@settings(max_examples=40)
@given(spec=events_spec, cut=st.integers(0, 50), size=st.integers(1, 8))
def test_restored_rule_behaves_like_the_original(
    cls: Any, params: Any, spec: list[tuple[str, int, bool]], cut: int, size: int
) -> None:
    """Scenario: snapshot (pickled) between two batches, restore, feed the rest.
    We expect: the same alerts, then the same state and timers as the rule never snapshotted."""
    events = [login(i, user, s, ok) for i, (user, s, ok) in enumerate(spec)]
    head, tail = events[:cut], events[cut:]
    batches = [tail[i : i + size] for i in range(0, len(tail), size)]
    original = cls(params)
    run(original, [head])
    restored = cls.restore(pickle.loads(pickle.dumps(original.snapshot())), params)
    assert run(restored, batches) == run(original, batches)
    assert restored.snapshot() == original.snapshot()
    assert restored.next_tick() == original.next_tick()
    assert restored.on_tick(LATER) == original.on_tick(LATER) == []
    assert restored.is_empty() and original.is_empty()


def form_0_2_0(record: Any) -> Any:
    """The snapshot as 0.2.0 wrote it: a plain tuple, (clock, (subject rows, expiry), *rest)."""
    bursts = (record.bursts.subjects, record.bursts.expiry)
    hits = (record.hits,) if isinstance(record, BruteForceSuccessSnapshot) else ()
    return (record.clock, bursts, *hits)


@pytest.mark.parametrize(("cls", "params"), RULES, ids=IDS)
def test_snapshot_of_the_0_2_0_form_restores(cls: Any, params: Any) -> None:
    """Scenario: recovery data written by 0.2.0 (plain tuples, no record), then more events.
    We expect: the same alerts and state as the rule restored from the current form."""
    users = ["a", "bb", "ccc", "a", "bb"]
    events = [login(i, users[i % 5], 7 * i % 50, i % 4 == 0) for i in range(30)]
    logic = cls(params)
    run(logic, [events[:20]])
    current = cls.restore(logic.snapshot(), params)
    older = cls.restore(form_0_2_0(logic.snapshot()), params)
    assert run(older, [events[20:]]) == run(current, [events[20:]])
    assert older.snapshot() == current.snapshot()


@pytest.mark.parametrize(("cls", "params"), RULES, ids=IDS)
def test_a_record_of_another_version_is_refused(cls: Any, params: Any) -> None:
    """Scenario: a record with a version this code never wrote.
    We expect: restore fails loudly rather than reading fields it does not know."""
    future = replace(cls(params).snapshot(), version=VERSION + 1)
    with pytest.raises(ValueError, match="version"):
        cls.restore(future, params)


def test_snapshot_costs_under_60_bytes_an_entry() -> None:
    """Scenario: 2,000 users with 10 events each in the rate window.
    We expect: about 45 bytes an entry pickled (a 37-byte id and an 8-byte time), not the ~70 of
    a (datetime, id, member) tuple."""
    logic = AbnormalEventRate(AbnormalEventRateParams(100, W))
    events = [login(i, f"user-{i % 2000}", i // 2000, True) for i in range(20_000)]
    logic.on_batch(events, NOW)
    size = len(pickle.dumps(logic.snapshot(), protocol=pickle.HIGHEST_PROTOCOL))
    assert size < 60 * len(events)
