"""Dedup snapshots: compact, equivalent after a round trip, and the older form still restores."""

from __future__ import annotations

import pickle
from datetime import timedelta

from hypothesis import given
from hypothesis import strategies as st

from operators.dedup import Deduplicator, DedupParams
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


def test_snapshot_of_the_older_form_restores() -> None:
    """Scenario: recovery data written before the compact form. We expect: same remembered ids."""
    logic = Deduplicator(PARAMS)
    events = [make_event(t=i, eid=_id(i)) for i in range(5)]
    logic.on_batch(events, NOW)
    clock, _, _, dupes = logic.snapshot()
    older = (clock, tuple((e.ts, e.event_id) for e in events), dupes)
    restored = Deduplicator.restore(older, PARAMS)
    assert restored.ids() == 5
    assert restored.on_batch(events, NOW) == []
    assert restored.next_tick() == logic.next_tick()
