"""Dedup snapshots: compact, equivalent after a round trip, and the older form still restores."""

from __future__ import annotations

import pickle
from array import array
from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from operators.dedup import SEGMENT_IDS, Deduplicator, DedupParams
from tests.unit.factories import NOW, make_event

PARAMS = DedupParams(horizon=timedelta(seconds=600), max_ids=50)


def _id(i: int) -> str:
    return f"00000000-0000-0000-0000-{i:012d}"


@given(
    st.lists(st.tuples(st.integers(0, 30), st.integers(0, 900)), max_size=60), st.integers(0, 60)
)
def test_restored_logic_behaves_like_the_original(spec: list[tuple[int, int]], cut: int) -> None:
    """Scenario: snapshot between two batches, restore, feed the second batch.
    We expect: the same output and state as the logic that was never snapshotted."""
    events = [make_event(t=t, eid=_id(i)) for i, t in spec]
    head, tail = events[:cut], events[cut:]
    original = Deduplicator(PARAMS)
    original.on_batch(head, NOW)
    restored = Deduplicator.restore(pickle.loads(pickle.dumps(original.snapshot())), PARAMS)
    assert restored.on_batch(tail, NOW) == original.on_batch(tail, NOW)
    assert restored.ids() == original.ids()
    assert restored.next_tick() == original.next_tick()


@pytest.mark.parametrize("version", ["0.1.2", "0.1.3"])
def test_snapshot_of_an_older_form_restores(version: str) -> None:
    """Scenario: recovery data written before the segments (by 0.1.3: one bytes and one string;
    earlier: one (datetime, id) tuple per id). We expect: the same remembered ids and timers."""
    logic = Deduplicator(PARAMS)
    events = [make_event(t=i, eid=_id(i)) for i in range(5)]
    logic.on_batch(events, NOW)
    clock, _, dupes = logic.snapshot()
    if version == "0.1.3":
        times = array("d", [e.ts.timestamp() for e in events]).tobytes()
        older: tuple[object, ...] = (clock, times, "\n".join(e.event_id for e in events), dupes)
    else:
        older = (clock, tuple((e.ts, e.event_id) for e in events), dupes)
    restored = Deduplicator.restore(older, PARAMS)
    assert restored.snapshot() == logic.snapshot()
    assert restored.ids() == 5
    assert restored.on_batch(events, NOW) == []
    assert restored.next_tick() == logic.next_tick()


def test_a_snapshot_reuses_the_segments_that_did_not_change() -> None:
    """Scenario: 10 segments of ids, a snapshot, one more id, another snapshot.
    We expect: every segment but the tail is the very same object (not joined again)."""
    logic = Deduplicator(DedupParams(horizon=timedelta(days=1), max_ids=100_000))
    logic.on_batch([make_event(t=1, eid=_id(i)) for i in range(10 * SEGMENT_IDS)], NOW)
    first = logic.snapshot()[1]
    logic.on_batch([make_event(t=2, eid=_id(10 * SEGMENT_IDS))], NOW)
    second = logic.snapshot()[1]
    assert len(first) == 10 and len(second) == 11
    assert all(a is b for a, b in zip(first, second[:10], strict=True))
