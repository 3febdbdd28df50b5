"""An erasure in the stream: every per-user step of the partition forgets the user, in order."""

from __future__ import annotations

from datetime import timedelta

from hypothesis import given
from hypothesis import strategies as st

from dataflows.partition_stage import PartitionStage, StageOutput
from operators.erasure import ERASE_HEADER, Erase, split_at_erasures
from operators.records import Event
from operators.state import InputProgress
from tests.harness import event_json
from tests.unit.factories import FakeMessage, make_event
from tests.unit.test_partition_interleaving import BASE, PARAMS, WALL

events = st.lists(
    st.tuples(st.sampled_from(["u1", "u2", "u3"]), st.integers(0, 2000),
              st.sampled_from(["page_view", "login", "logout", "failed"])),
    max_size=30,
)  # fmt: skip


def message(user: str, t: int, kind: str, offset: int) -> FakeMessage:
    stamp = (BASE + timedelta(seconds=t)).isoformat()
    if kind == "failed":
        return FakeMessage(event_json("login", user, stamp, success=False), 0, offset)
    return FakeMessage(event_json(kind, user, stamp), 0, offset)


def erase_request(user: str, offset: int) -> FakeMessage:
    return FakeMessage(b'{"erase": 1}', 0, offset, [(ERASE_HEADER, user.encode())])


def run(batches: list[list[FakeMessage]]) -> tuple[PartitionStage, list[StageOutput]]:
    progress = InputProgress()
    stage = PartitionStage(PARAMS, "0-events", 1, progress)
    outputs = [out for batch in batches for out in stage.process(batch, WALL)]
    progress.caught_up_since = WALL
    outputs += stage.process([], WALL + timedelta(days=400))  # every session closes
    return stage, outputs


@given(events, st.integers(0, 30), st.sampled_from(["u1", "u2", "u3"]))
def test_after_an_erasure_nothing_of_the_user_comes_out(
    spec: list[tuple[str, int, str]], cut: int, victim: str
) -> None:
    """Whatever the events and where the erase request falls (the user sending nothing after
    it): the erasure reaches the events,
    sessions and alerts streams after what came before it, it names the sessions it dropped, and
    no row of those sessions (nor any alert about the user) comes out after it, ticks included."""
    spec = sorted(spec, key=lambda s: s[1])
    cut = min(cut, len(spec))
    spec = spec[:cut] + [s for s in spec[cut:] if s[0] != victim]  # the user sends nothing after
    msgs = [message(user, t, kind, i) for i, (user, t, kind) in enumerate(spec)]
    msgs.insert(cut, erase_request(victim, len(msgs)))
    _, outputs = run([msgs])
    for stream in ("events", "sessions", "alerts"):
        items = [x for out in outputs for x in getattr(out, stream)]
        erasures = [x for x in items if isinstance(x, Erase)]
        assert len(erasures) == 1, stream
        after = items[items.index(erasures[0]) + 1 :]
        assert not [x for x in after if getattr(x, "user_id", None) == victim], stream
        assert not [x for x in after if getattr(x, "subject", None) == victim], stream
    events_before = [
        x for out in outputs for x in out.events if isinstance(x, Event) and x.user_id == victim
    ]
    erase = next(x for out in outputs for x in out.events if isinstance(x, Erase))
    assert set(erase.session_ids) <= {e.session_id for e in events_before}


def test_every_user_rule_forgets_the_user() -> None:
    """A new device after the erasure is a first login again; a burst starts from zero."""
    before = [message("v", i, "failed", i) for i in range(4)]
    before.append(message("v", 5, "login", 4))
    again = [message("v", 10 + i, "failed", 6 + i) for i in range(4)]
    again.append(FakeMessage(event_json("login", "v", (BASE + timedelta(seconds=20)).isoformat(),
                                        device="Firefox on Linux"), 0, 10))  # fmt: skip
    _, outputs = run([[*before, erase_request("v", 5)], again])
    stream = [a for out in outputs for a in out.alerts]
    after = stream[next(i for i, a in enumerate(stream) if isinstance(a, Erase)) + 1 :]
    assert after, "the failures after the erasure raise a burst of their own"
    assert not [a for a in after if a.rule == "new_device_login"]
    bursts = [a.event_count for a in after if a.rule == "failed_login_burst"]
    assert bursts == [4]  # counted from zero: only the 4 failures after the erasure


def test_split_at_erasures_cuts_runs_in_order() -> None:
    event = make_event(user="u")
    erase = Erase.of("u", "0/1", WALL)
    assert list(split_at_erasures([event, erase, event])) == [([event], erase), ([event], None)]
