"""Minute rollups: overwrite rows equal brute-force totals; late data beyond retention is counted."""

from __future__ import annotations

import pickle
from collections import defaultdict
from datetime import datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from dataflows.observers import observe_rollups
from operators.records import Event, RollupRow
from operators.rollups import MinuteRollup, RollupParams
from tests.unit.factories import NOW, make_event

LATER = NOW + timedelta(days=400)
PARAMS = RollupParams(retention=timedelta(minutes=5), lateness=timedelta(seconds=30))

events_spec = st.lists(
    st.tuples(
        st.integers(min_value=0, max_value=600),
        st.sampled_from(["page_view", "login", "logout"]),
        st.sampled_from(["a", "b", "c", "d"]),
    ),
    max_size=120,
)


def build(spec: list[tuple[int, str, str]]) -> list[Event]:
    return [make_event(kind, t=t, user=user) for t, kind, user in sorted(spec)]


@settings(max_examples=150)
@given(events_spec, st.integers(min_value=1, max_value=20))
def test_last_row_per_bucket_equals_brute_force(
    spec: list[tuple[int, str, str]], batch: int
) -> None:
    events = build(spec)
    logic = MinuteRollup(PARAMS)
    latest: dict[tuple[datetime, str], RollupRow] = {}
    for i in range(0, len(events), batch):
        rows = logic.on_batch(events[i : i + batch], NOW)
        keys = [(r.minute, r.type) for r in rows]
        assert len(keys) == len(set(keys))  # one row per bucket per batch
        latest.update(zip(keys, rows, strict=True))
    users: dict[tuple[datetime, str], set[str]] = defaultdict(set)
    counts: dict[tuple[datetime, str], int] = defaultdict(int)
    for e in events:
        key = (e.ts.replace(second=0, microsecond=0), e.type)
        counts[key] += 1
        users[key].add(e.user_id)
    assert {k: (r.events, r.unique_users) for k, r in latest.items()} == {
        k: (counts[k], len(users[k])) for k in counts
    }
    assert logic.stats.late_dropped == 0
    logic.on_tick(LATER)
    assert logic.is_empty()


def test_late_events_beyond_retention_are_dropped_and_counted() -> None:
    logic = MinuteRollup(PARAMS)
    logic.on_batch([make_event(t=0)], NOW)
    logic.on_batch([make_event(t=3600)], NOW)  # watermark ~ 59:30, retention 5 min
    assert logic.on_batch([make_event(t=5)], NOW) == []  # minute 0 is final
    assert logic.stats.late_dropped == 1
    (row,) = logic.on_batch([make_event(t=3600 - 6 * 60)], NOW)  # minute 54 is still open
    assert row.events == 1
    assert logic.stats.late_dropped == 1
    observe_rollups(logic)  # the metrics observer takes the count
    assert logic.stats.late_dropped == 0


def test_rollup_snapshot_round_trip() -> None:
    logic = MinuteRollup(PARAMS)
    logic.on_batch([make_event(t=1, user="a"), make_event(t=2, user="b")], NOW)
    restored = MinuteRollup.restore(pickle.loads(pickle.dumps(logic.snapshot())), PARAMS)
    assert restored.next_tick() == logic.next_tick()
    (row,) = restored.on_batch([make_event(t=3, user="a")], NOW)
    assert (row.events, row.unique_users) == (3, 2)
