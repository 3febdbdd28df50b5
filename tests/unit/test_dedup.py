"""De-duplication: first occurrences pass, repeats within the horizon never do, memory is capped."""

from __future__ import annotations

import pickle
from datetime import timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from dataflows.observers import observe_dedup
from operators.dedup import Deduplicator, DedupParams
from operators.records import Event
from tests.unit.factories import NOW, make_event

LATER = NOW + timedelta(days=400)
HORIZON = timedelta(seconds=600)


def ids(n: int) -> list[str]:
    return [f"00000000-0000-0000-0000-{i:012d}" for i in range(n)]


stream = st.lists(
    st.tuples(st.integers(min_value=0, max_value=15), st.integers(min_value=0, max_value=5)),
    max_size=80,
)  # (id index, seconds since the previous event)


def build(spec: list[tuple[int, int]]) -> list[Event]:
    names, t, out = ids(16), 0, []
    for index, step in spec:
        t += step
        out.append(make_event(t=t, eid=names[index]))
    return out


@settings(max_examples=200)
@given(stream, st.integers(min_value=1, max_value=9))
def test_first_occurrences_pass_and_repeats_never_do(
    spec: list[tuple[int, int]], batch: int
) -> None:
    events = build(spec)  # spans at most 400 s < horizon
    logic = Deduplicator(DedupParams(horizon=HORIZON, max_ids=1000))
    out: list[Event] = []
    for i in range(0, len(events), batch):
        out.extend(logic.on_batch(events[i : i + batch], NOW))
    first = list({e.event_id: e for e in reversed(events)}.values())[::-1]
    assert [e.event_id for e in out] == [e.event_id for e in sorted(first, key=events.index)]
    assert all(a is b for a, b in zip(out, sorted(first, key=events.index), strict=True))
    assert logic.stats.duplicates == len(events) - len(out)
    observe_dedup(logic)  # the metrics observer takes the count
    assert logic.stats.duplicates == 0
    logic.on_tick(LATER)
    assert logic.is_empty() and logic.next_tick() is None


def test_ids_expire_after_the_horizon_and_the_cap_bounds_memory() -> None:
    logic = Deduplicator(DedupParams(horizon=HORIZON, max_ids=3, lateness=timedelta(0)))
    (a,) = ids(1)
    assert len(logic.on_batch([make_event(t=0, eid=a)], NOW)) == 1
    assert logic.on_batch([make_event(t=600, eid=a)], NOW) == []  # within the horizon
    logic.on_batch([make_event(t=601)], NOW)  # watermark passes 0 + horizon
    assert len(logic.on_batch([make_event(t=602, eid=a)], NOW)) == 1
    logic.on_batch([make_event(t=603 + i) for i in range(10)], NOW)
    assert logic.ids() == 3


def test_dedup_snapshot_round_trip() -> None:
    params = DedupParams(horizon=HORIZON, max_ids=100)
    logic = Deduplicator(params)
    (a,) = ids(1)
    logic.on_batch([make_event(t=0, eid=a)], NOW)
    restored = Deduplicator.restore(pickle.loads(pickle.dumps(logic.snapshot())), params)
    assert restored.on_batch([make_event(t=1, eid=a)], NOW) == []
    assert restored.next_tick() == logic.next_tick()
