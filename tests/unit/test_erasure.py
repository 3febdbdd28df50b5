"""Erasure in the stateful steps: the adapter cuts a batch at an ``Erase``, the logic forgets the
user, nothing about the user comes out afterwards (sessions closed later included)."""

from __future__ import annotations

from datetime import timedelta

from hypothesis import given
from hypothesis import strategies as st

from dataflows.adapters import ShardAdapter, split_chunk
from operators.detection import (
    BruteForceSuccess,
    BruteForceSuccessParams,
    FailedLoginBurst,
    FailedLoginBurstParams,
    NewDeviceLogin,
    NewDeviceLoginParams,
)
from operators.erasure import Erase, split_at_erasures
from operators.model import Event
from operators.sessions import Session, Sessionizer, SessionParams
from tests.unit.factories import NOW, make_event

PARAMS = SessionParams(
    gap=timedelta(seconds=100), max_length=timedelta(days=1), lateness=timedelta(seconds=30)
)

events = st.lists(
    st.tuples(st.sampled_from(["u1", "u2", "u3"]), st.integers(0, 500),
              st.sampled_from(["page_view", "login", "logout"])),
    max_size=30,
)  # fmt: skip


@given(events, st.integers(0, 30), st.sampled_from(["u1", "u2", "u3"]))
def test_after_an_erasure_no_session_of_the_user_comes_out(
    spec: list[tuple[str, int, str]], cut: int, victim: str
) -> None:
    """Whatever the events and where the erasure falls in the batch: after it, the sessionizer
    emits no row of a session the user had (not when later ticks close sessions either), it
    reports those sessions to the erasure, and the erasure itself goes downstream in order."""
    items: list[object] = [make_event(kind, t=t, user=user) for user, t, kind in spec]
    erase = Erase.of(victim, "0/1", NOW)
    items.insert(min(cut, len(items)), erase)
    adapter = ShardAdapter(Sessionizer(PARAMS), lambda _logic, _out: None)
    (out,), _ = adapter.on_batch([items])
    at = out.index(erase)
    before = {e.session_id for e in items[: items.index(erase)]
              if isinstance(e, Event) and e.user_id == victim}  # fmt: skip
    assert set(erase.session_ids) <= before | {None}
    later = [*out[at + 1 :], *adapter.logic.on_tick(NOW + timedelta(days=400))]
    closed_later = {s.session_id for s in later if isinstance(s, Session) and s.user_id == victim}
    assert not closed_later & set(erase.session_ids)
    assert not closed_later & before


def test_every_user_rule_forgets_the_user() -> None:
    """The rules that keep users (windows, bursts, device histories) hold nothing of an erased
    user: a new device after the erasure is a first login again, a burst starts from zero."""
    lateness = timedelta(seconds=30)
    rules = [
        FailedLoginBurst(FailedLoginBurstParams(lateness=lateness)),
        BruteForceSuccess(BruteForceSuccessParams(lateness=lateness)),
        NewDeviceLogin(NewDeviceLoginParams(16, timedelta(days=30), lateness)),
    ]
    for rule in rules:
        adapter = ShardAdapter(rule, lambda _logic, _out: None)
        fails = [make_event("login", t=i, user="v", success=False) for i in range(4)]
        first = make_event("login", t=5, user="v", device="A")
        adapter.on_batch([[*fails, first, Erase.of("v", "0/1", NOW)]])
        again = [make_event("login", t=10 + i, user="v", success=False) for i in range(4)]
        other = make_event("login", t=20, user="v", device="B")
        outs, _ = adapter.on_batch([[*again, other]])
        out = [alert for chunk in outs for alert in chunk]
        assert all(getattr(a, "rule", "") != "new_device_login" for a in out), rule
        assert not any(getattr(a, "event_count", 0) >= 5 for a in out), rule


def test_an_erasure_goes_to_every_split_and_cuts_runs_in_order() -> None:
    event, erase = make_event(user="u"), Erase.of("u", "0/1", NOW)
    assert split_chunk(Session)(("k", [event, erase])) == ("k", [erase])
    assert split_chunk(Event)(("k", [event, erase])) == ("k", [event, erase])
    assert list(split_at_erasures([event, erase, event])) == [([event], erase), ([event], None)]
