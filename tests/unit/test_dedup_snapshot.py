"""Dedup snapshots: compact, equivalent after a round trip, and the 0.2.0 form still restores."""

from __future__ import annotations

import pickle
from datetime import timedelta

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


def test_snapshot_of_the_0_2_0_form_restores() -> None:
    """Scenario: recovery data written by 0.2.0 (a tuple: the clock's tuple, the segments, the
    duplicate count). We expect: the same remembered ids and timers.
    (Forms before 0.2.0 are not read: 0.2.0 required a new recovery directory.)"""
    logic = Deduplicator(PARAMS)
    events = [make_event(t=i, eid=_id(i)) for i in range(5)]
    logic.on_batch(events, NOW)
    record = logic.snapshot()
    clock = record.clock
    older = (
        (clock.lateness, clock.latest, clock.wall_at_latest, clock.last_now),
        record.segments,
        0,
    )
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
    first = logic.snapshot().segments
    logic.on_batch([make_event(t=2, eid=_id(10 * SEGMENT_IDS))], NOW)
    second = logic.snapshot().segments
    assert len(first) == 10 and len(second) == 11
    assert all(a is b for a, b in zip(first, second[:10], strict=True))
