"""Sessionization: boundaries, lateness, outputs, memory bound and recovery."""

from __future__ import annotations

import pickle
from dataclasses import replace
from datetime import datetime, timedelta
from itertools import pairwise

from hypothesis import given, settings
from hypothesis import strategies as st

from dataflows.observers import observe_sessions
from operators.records import Event, Session
from operators.sessions import Sessionizer, SessionParams
from tests.unit.factories import NOW, make_event
from tests.unit.session_oracle import reference_sessions

GAP = 100
PARAMS = SessionParams(
    gap=timedelta(seconds=GAP), max_length=timedelta(days=1), lateness=timedelta(seconds=30)
)
LATER = NOW + timedelta(days=400)
EVERY_BATCH = replace(PARAMS, update_interval=timedelta(0))


def run(logic: Sessionizer, batches: list[list[Event]]) -> list[Event | Session]:
    """Feed batches at the fixed clock, then tick far ahead so everything closes."""
    out: list[Event | Session] = []
    for batch in batches:
        out.extend(logic.on_batch(batch, NOW))
    out.extend(logic.on_tick(LATER))
    return out


def final_sessions(out: list[Event | Session]) -> dict[str, Session]:
    """The last row emitted per session id."""
    rows: dict[str, Session] = {}
    for item in out:
        if isinstance(item, Session):
            rows[item.session_id] = item
    return rows


def test_gap_logout_and_login_start_new_sessions() -> None:
    events = [
        make_event(t=0, page="/a"),
        make_event(t=GAP, page="/b"),  # exactly the gap: same session
        make_event(t=2 * GAP + 1),  # beyond the gap: new session
        make_event("logout", t=2 * GAP + 5),
        make_event(t=2 * GAP + 6),  # after a logout: new session
        make_event("login", t=2 * GAP + 7, success=True),  # a successful login: new session
        make_event("login", t=2 * GAP + 8, success=False),  # a failed login does not split
    ]
    out = run(Sessionizer(PARAMS), [events])
    ids = [e.session_id or "" for e in events]
    assert ids[0] == ids[1] != ids[2] == ids[3] != ids[4] != ids[5] == ids[6]
    rows = final_sessions(out)
    first, second = rows[ids[0]], rows[ids[2]]
    assert (first.event_count, first.page_views, first.entry_page, first.exit_page) == (
        2, 2, "/a", "/b",
    )  # fmt: skip
    assert first.ended_by == "timeout" and first.ended_at == events[1].ts
    assert first.duration_seconds == GAP
    assert second.ended_by == "logout" and second.ended_at == events[3].ts
    assert rows[ids[4]].ended_by == "timeout"  # superseded by the login
    assert sum(r.event_count for r in rows.values()) == len(events)


def test_one_session_row_per_session_per_batch_and_open_rows_have_no_end() -> None:
    logic = Sessionizer(PARAMS)
    out = logic.on_batch([make_event(t=i) for i in range(5)], NOW)
    rows = [o for o in out if isinstance(o, Session)]
    assert len(rows) == 1
    assert rows[0].ended_at is None and rows[0].ended_by is None and rows[0].event_count == 5
    assert logic.stats.open_sessions == 1 and logic.stats.users == 1


def test_out_of_order_within_lateness_is_placed_later_is_flagged() -> None:
    logic = Sessionizer(EVERY_BATCH)
    a, b = make_event(t=100, page="/b"), make_event(t=110)
    logic.on_batch([a, b], NOW)
    placed = make_event(t=85, page="/first")  # before the start, within lateness: extends it
    out = logic.on_batch([placed], NOW)
    assert placed.session_id == a.session_id and not placed.late
    logic.on_batch([make_event(t=200)], NOW)
    late_inside = make_event(t=120)  # older than last_event_at - lateness, inside the session
    late_before = make_event(t=10)  # before the session and the watermark
    logic.on_batch([late_inside, late_before], NOW)
    assert late_inside.late and late_inside.session_id == a.session_id
    assert late_before.late and late_before.session_id is None
    (row,) = [o for o in out if isinstance(o, Session)]
    assert row.started_at == placed.ts and row.entry_page == "/first" and row.event_count == 3
    assert row.entry_page == "/first"
    assert logic.stats.late_events == 2
    observe_sessions(logic)  # the metrics observer takes the count
    assert logic.stats.late_events == 0


def test_straggler_of_a_logged_out_session_gets_its_id() -> None:
    logic = Sessionizer(PARAMS)
    first, logout = make_event(t=0), make_event("logout", t=20)
    logic.on_batch([first, logout], NOW)
    straggler = make_event(t=10)
    logic.on_batch([straggler], NOW)
    assert straggler.late and straggler.session_id == first.session_id
    assert logic.stats.open_sessions == 0
    logic.on_tick(LATER)
    assert logic.is_empty()


def test_straggler_before_a_login_split_stays_out_of_the_new_session() -> None:
    logic = Sessionizer(PARAMS)
    first, second = make_event(t=0), make_event(t=8)
    fresh = make_event("login", t=10, success=True)
    straggler = make_event(t=5)
    logic.on_batch([first, second, fresh, straggler], NOW)
    assert fresh.session_id != first.session_id
    assert straggler.late and straggler.session_id == first.session_id


def test_max_length_caps_a_session() -> None:
    params = SessionParams(gap=timedelta(seconds=100), max_length=timedelta(seconds=250))
    events = [make_event(t=t) for t in range(0, 600, 50)]
    rows = final_sessions(run(Sessionizer(params), [events]))
    assert all(r.duration_seconds <= 250 and r.ended_by == "timeout" for r in rows.values())
    assert [r.event_count for r in rows.values()] == [6, 6]


def test_idle_shard_closes_on_tick_without_busy_loop() -> None:
    """Scenario: a live stream goes quiet. We expect the session to close by wall time."""
    logic = Sessionizer(PARAMS)
    event = make_event(t=0)
    wall = event.ts + timedelta(seconds=1)
    logic.on_batch([event], wall)
    tick = logic.next_tick()
    assert tick is not None and tick >= wall + timedelta(seconds=1)
    assert logic.on_tick(tick - timedelta(seconds=1)) == []
    (row,) = logic.on_tick(tick)
    assert isinstance(row, Session) and row.ended_by == "timeout"
    assert logic.is_empty() and logic.next_tick() is None


def test_open_session_rows_are_throttled_and_flushed_by_a_tick() -> None:
    """Scenario: a session gets events in three batches within the update interval.

    We expect its opening row at once, no row for the next batch, then one row with the latest
    state when the interval has passed (on a tick if no batch comes)."""
    logic = Sessionizer(PARAMS)  # update_interval 5 s
    opened = logic.on_batch([make_event(t=0)], NOW)
    assert [o.event_count for o in opened if isinstance(o, Session)] == [1]
    second = NOW + timedelta(seconds=1)
    assert not [o for o in logic.on_batch([make_event(t=1)], second) if isinstance(o, Session)]
    logic.on_batch([make_event(t=2)], NOW + timedelta(seconds=2))
    flush = NOW + timedelta(seconds=6)  # 5 s after the session first changed since its row
    assert logic.next_tick() == flush
    assert logic.on_tick(flush - timedelta(milliseconds=1)) == []
    (row,) = logic.on_tick(flush)
    assert isinstance(row, Session) and row.event_count == 3 and row.ended_at is None
    assert logic.on_tick(flush + timedelta(seconds=10)) == []  # nothing changed since


def test_future_stamped_event_does_not_make_others_late() -> None:
    logic = Sessionizer(PARAMS)
    wall = make_event(t=1000).ts
    logic.on_batch([make_event(t=1200, user="skewed")], wall)  # 200 s in the future
    normal = make_event(t=995, user="u2")
    logic.on_batch([normal], wall)
    assert not normal.late


# --- properties ------------------------------------------------------------------------------------
user_gaps = st.lists(st.integers(min_value=0, max_value=3 * GAP), min_size=1, max_size=25)
types = st.sampled_from(["page_view", "button_click", "form_submit"])


@st.composite
def streams(draw: st.DrawFn, with_logout: bool = False) -> list[tuple[str, int, str]]:
    """(user, t, type) sorted by time: per-user gaps, users interleaved."""
    kinds = st.sampled_from(["page_view", "button_click", "logout"]) if with_logout else types
    spec: list[tuple[str, int, str]] = []
    for u in range(draw(st.integers(min_value=1, max_value=4))):
        t = draw(st.integers(min_value=0, max_value=50))
        for gap in draw(user_gaps):
            t += gap
            spec.append((f"user{u}", t, draw(kinds)))
    spec.sort(key=lambda s: s[1])
    return spec


def build(spec: list[tuple[str, int, str]]) -> list[Event]:
    """Fresh events for a spec, with stable ids (so two runs are comparable)."""
    return [
        make_event(kind, t=t, user=user, eid=f"00000000-0000-0000-0000-{i:012d}")
        for i, (user, t, kind) in enumerate(spec)
    ]


def split(events: list[Event], cuts: list[int]) -> list[list[Event]]:
    """Cut ``events`` into batches at the given positions."""
    bounds = [0, *sorted({c % (len(events) + 1) for c in cuts}), len(events)]
    return [events[a:b] for a, b in pairwise(bounds)]


@settings(max_examples=150)
@given(streams(), st.lists(st.integers(min_value=0), max_size=5))
def test_boundaries_exactly_where_gaps_exceed_the_limit(
    spec: list[tuple[str, int, str]], cuts: list[int]
) -> None:
    events = build(spec)
    logic = Sessionizer(PARAMS)
    out = run(logic, split(events, cuts))
    assert not any(e.late for e in events)
    by_user: dict[str, list[Event]] = {}
    for e in events:
        by_user.setdefault(e.user_id, []).append(e)
    for user_events in by_user.values():
        for prev, cur in pairwise(user_events):
            new_session = (cur.ts - prev.ts).total_seconds() > GAP
            assert (prev.session_id != cur.session_id) == new_session
    rows = final_sessions(out)
    assert sum(r.event_count for r in rows.values()) == len(events)
    for sid, row in rows.items():
        members = [e for e in events if e.session_id == sid]
        assert row.event_count == len(members)
        assert row.started_at == members[0].ts and row.last_event_at == members[-1].ts
        assert row.ended_by == "timeout" and row.ended_at == row.last_event_at
    assert logic.is_empty() and logic.stats.users == 0


@settings(max_examples=100)
@given(streams(with_logout=True))
def test_logout_closes_and_belongs_to_its_session(spec: list[tuple[str, int, str]]) -> None:
    events = build(spec)
    rows = final_sessions(run(Sessionizer(PARAMS), [events]))
    current: dict[str, str | None] = {}
    finished: set[str | None] = set()
    for e in events:
        if e.type == "logout":
            row = rows[e.session_id or ""]
            assert row.ended_by == "logout" and row.ended_at == e.ts
        assert e.session_id not in finished  # one session's events are never split
        if current.get(e.user_id, e.session_id) != e.session_id:
            finished.add(current[e.user_id])
        current[e.user_id] = e.session_id
    assert sum(r.event_count for r in rows.values()) == len(events)


@settings(max_examples=100)
@given(
    streams(with_logout=True),
    st.lists(st.integers(min_value=0), max_size=4),
    st.integers(min_value=0),
)
def test_snapshot_restore_continue_equals_uninterrupted(
    spec: list[tuple[str, int, str]], cuts: list[int], at: int
) -> None:
    batches = split(build(spec), cuts)
    expected = [_flat(o) for o in run(Sessionizer(PARAMS), batches)]

    batches = split(build(spec), cuts)
    stop = at % (len(batches) + 1)
    logic = Sessionizer(PARAMS)
    out: list[Event | Session] = []
    for batch in batches[:stop]:
        out.extend(logic.on_batch(batch, NOW))
    logic = Sessionizer.restore(pickle.loads(pickle.dumps(logic.snapshot())), PARAMS)
    out.extend(run(logic, batches[stop:]))
    assert [_flat(o) for o in out] == expected


def _flat(item: Event | Session) -> object:
    if isinstance(item, Session):
        return item
    return (item.event_id, item.session_id, item.late)


@settings(max_examples=50)
@given(streams(), st.integers(min_value=0, max_value=60))
def test_reordering_within_lateness_changes_nothing(
    spec: list[tuple[str, int, str]], swap_seed: int
) -> None:
    """Swapping neighbours less than the lateness apart gives the same sessions.

    Unless the later event, arriving first, is already beyond the gap: then it starts a session
    and the straggler that would have bridged the gap joins that one (sessions never merge, since
    rows and events already carry the first session's id). Those swaps are excluded.
    """
    in_order = build(spec)
    rows_in_order = final_sessions(run(Sessionizer(PARAMS), [in_order]))
    shuffled = build(spec)
    i = swap_seed % 2
    previous: dict[str, Event] = {e.user_id: e for e in shuffled[:i]}
    while i < len(shuffled) - 1:
        a, b = shuffled[i], shuffled[i + 1]
        before = previous.get(a.user_id)
        bridging = before is not None and (b.ts - before.ts).total_seconds() > GAP
        if a.user_id == b.user_id and (b.ts - a.ts) < timedelta(seconds=20) and not bridging:
            shuffled[i], shuffled[i + 1] = b, a
        previous[a.user_id] = a
        previous[b.user_id] = b
        i += 2
    rows_shuffled = final_sessions(run(Sessionizer(PARAMS), [shuffled]))
    assert not any(e.late for e in shuffled)
    key = {e.event_id: e.session_id for e in in_order}
    assert all(key[e.event_id] is not None for e in shuffled)
    assert {(r.user_id, r.started_at, r.event_count) for r in rows_shuffled.values()} == {
        (r.user_id, r.started_at, r.event_count) for r in rows_in_order.values()
    }


@settings(max_examples=150)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["a", "b", "c"]),
            st.integers(min_value=0, max_value=1000),
            st.sampled_from(["page_view", "logout", "login"]),
        ),
        max_size=60,
    ),
    st.lists(st.integers(min_value=0), max_size=5),
)
def test_any_order_every_event_emitted_once_and_counts_add_up(
    spec: list[tuple[str, int, str]], cuts: list[int]
) -> None:
    """Arbitrary arrival order: nothing dropped, late ones flagged, placed ones counted once."""
    events = build(spec)
    logic = Sessionizer(PARAMS)
    out = run(logic, split(events, cuts))
    emitted = [o for o in out if isinstance(o, Event)]
    assert [e.event_id for e in emitted] == [e.event_id for e in events]
    rows = final_sessions(out)
    placed = [e for e in events if not e.late]
    assert all(e.session_id in rows for e in placed)
    assert sum(r.event_count for r in rows.values()) == len(placed)
    for row in rows.values():
        assert row.ended_at is not None and row.started_at <= row.last_event_at
        assert row.duration_seconds <= PARAMS.max_length.total_seconds()
    assert logic.is_empty() and logic.stats.late_events == len(events) - len(placed)
    spans: dict[str, list[tuple[datetime, datetime]]] = {}
    for row in rows.values():
        spans.setdefault(row.user_id, []).append((row.started_at, row.last_event_at))
    for user_spans in spans.values():
        ordered = sorted(user_spans)
        assert all(a[1] <= b[0] for a, b in pairwise(ordered))  # sessions never overlap


def test_session_row_has_exactly_the_contract_columns() -> None:
    from dataclasses import fields

    assert [f.name for f in fields(Session)] == [
        "session_id", "user_id", "started_at", "last_event_at", "ended_at", "event_count",
        "page_views", "duration_seconds", "entry_page", "exit_page", "device", "ip", "ended_by",
        "country",
    ]  # fmt: skip


def test_a_session_has_the_country_of_its_first_located_event() -> None:
    """Scenario: a session's first event has no location (a private address), the next two
    are located in FR then DE; the session restores from a snapshot and from 0.2.0's 12-tuple.
    We expect: country FR; after the 0.2.0 form, None until the next located event."""
    from dataclasses import replace

    from operators.session_state import OpenSession

    logic = Sessionizer(PARAMS)
    events = [
        make_event(t=0),
        replace(make_event(t=1), country="FR"),
        replace(make_event(t=2), country="DE"),
    ]
    rows = logic.sessionize(events, NOW)
    assert rows[-1].country == "FR"
    (open_session,) = logic._open.values()
    assert OpenSession.from_tuple(open_session.to_tuple()).country == "FR"
    old = OpenSession.from_tuple(open_session.to_tuple()[:12])  # type: ignore[arg-type]
    assert old.country is None
    old.add(replace(make_event(t=3), country="IT"))
    assert old.record().country == "IT"


def test_memory_is_bounded_by_active_users() -> None:
    """Scenario: 20,000 users each have a short session. We expect no per-user state afterwards."""
    logic = Sessionizer(PARAMS)
    users = 20_000
    for start in range(0, users, 1000):
        batch = [make_event(t=i * 0.01, user=f"m{i}") for i in range(start, start + 1000)]
        logic.on_batch(batch, NOW)
    last = (users - 1) * 0.01
    still_open = sum(1 for i in range(users) if i * 0.01 + GAP >= last - 30)  # watermark
    assert logic.stats.open_sessions == logic.stats.users == still_open < users
    logic.on_tick(LATER)
    assert logic.stats.users == 0 and logic.stats.open_sessions == 0 and logic.is_empty()


@settings(max_examples=150)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["a", "b"]),
            st.integers(min_value=0, max_value=2000),
            st.sampled_from(["page_view", "page_view", "button_click", "logout", "login"]),
            st.booleans(),
        ),
        max_size=60,
    ),
    st.lists(st.integers(min_value=0), max_size=4),
)
def test_streaming_equals_the_offline_definition(
    spec: list[tuple[str, int, str, bool]], cuts: list[int]
) -> None:
    """Time-ordered input: the streaming rows are exactly the reference sessions."""
    spec.sort(key=lambda s: s[1])
    events = [
        make_event(
            kind, t=t, user=user, success=ok if kind == "login" else None,
            page=f"/{t}" if kind == "page_view" else None,
        )
        for user, t, kind, ok in spec
    ]  # fmt: skip
    params = SessionParams(gap=timedelta(seconds=GAP), max_length=timedelta(seconds=500))
    rows = final_sessions(run(Sessionizer(params), split(events, cuts)))
    expected = reference_sessions(events, params.gap, params.max_length)
    assert sorted(rows) == sorted(r.session_id for r in expected)
    for ref in expected:
        row = rows[ref.session_id]
        assert (row.user_id, row.started_at, row.last_event_at, row.ended_by) == (
            ref.user_id, ref.started_at, ref.last_event_at, ref.ended_by,
        )  # fmt: skip
        assert (row.event_count, row.page_views) == (ref.event_count, ref.page_views)
        assert (row.entry_page, row.exit_page) == (
            (ref.pages[0], ref.pages[-1]) if ref.pages else (None, None)
        )
        assert [e.event_id for e in events if e.session_id == ref.session_id] == ref.event_ids


@settings(max_examples=150)
@given(
    streams(with_logout=True),
    st.lists(st.integers(min_value=0), max_size=6),
    st.lists(st.integers(min_value=0, max_value=4000), min_size=7, max_size=7),
    st.integers(min_value=0, max_value=6),
)
def test_throttled_rows_end_with_every_sessions_latest_state(
    spec: list[tuple[str, int, str]], cuts: list[int], steps_ms: list[int], interval_s: int
) -> None:
    """Any update interval and wall-clock pacing: after a tick one interval after the last
    batch, the last row of every session equals the unthrottled one (open or closed), each
    session's first row comes with the batch that opens it, and the rows of an open session
    are at least one interval apart."""
    params = replace(PARAMS, update_interval=timedelta(seconds=interval_s))
    walls = [NOW]
    for step in steps_ms:
        walls.append(walls[-1] + timedelta(milliseconds=step))
    final_wall = walls[-1] + params.update_interval
    results = []
    for p in (EVERY_BATCH, params):
        batches = split(build(spec), cuts)
        logic = Sessionizer(p)
        timed: list[tuple[datetime, Session]] = []
        for batch, wall in zip(batches, walls, strict=False):
            timed += [(wall, o) for o in logic.on_batch(batch, wall) if isinstance(o, Session)]
        timed += [(final_wall, o) for o in logic.on_tick(final_wall) if isinstance(o, Session)]
        results.append(timed)
    unthrottled, throttled = results
    assert final_sessions([r for _, r in throttled]) == final_sessions([r for _, r in unthrottled])
    first_seen: dict[str, datetime] = {}
    for wall, row in unthrottled:
        first_seen.setdefault(row.session_id, wall)
    updates: dict[str, list[datetime]] = {}
    for wall, row in throttled:
        if row.session_id not in updates:
            assert wall == first_seen[row.session_id]
            updates[row.session_id] = [wall]
        elif row.ended_at is None:
            updates[row.session_id].append(wall)
    for walls_of_updates in updates.values():
        assert all(b - a >= params.update_interval for a, b in pairwise(walls_of_updates))
