"""Event ownership in a partition's stage: one writer, then read-only.

An event object is shared by every step after de-duplication (the per-user rules, the rollups,
the sinks on their own threads, the credential-stuffing step that holds it across batches).
Sessionization is the one step that writes to it (``session_id``, ``late``), before any other
step reads the batch; nothing writes to it afterwards.
"""

from __future__ import annotations

from dataclasses import fields
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from dataflows.partition_stage import PartitionStage
from operators.detections.rule import RuleBatch
from operators.records import Event
from operators.state import InputProgress
from tests.harness import event_json
from tests.unit.factories import FakeMessage
from tests.upgrade.scenario import PARAMS

BASE = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
WALL = BASE + timedelta(days=1)


def _state(event: Event) -> tuple[Any, ...]:
    return tuple(getattr(event, f.name) for f in fields(event))


def _at(seconds: float) -> str:
    return (BASE + timedelta(seconds=seconds)).isoformat()


def test_steps_after_sessionization_see_each_event_as_it_is_finally_stored(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Scenario: sessions that open, close by logout and by timeout, a late event, failed logins
    (held for credential stuffing), in two batches and a tick. We expect: every rule and the
    rollups see each event with its final session fields, and the event never changes after."""
    stage = PartitionStage(PARAMS, "0-activity", 1, InputProgress())
    seen: list[tuple[Any, ...]] = []
    for rule in stage.rules:

        def spy_rule(batch: RuleBatch, now: datetime, _evaluate: Any = rule.evaluate) -> Any:
            seen.extend(_state(e) for e in batch.events)
            return _evaluate(batch, now)

        monkeypatch.setattr(rule, "evaluate", spy_rule)

    def spy(items: list[Event], now: datetime, _batch: Any = stage.rollups.on_batch) -> Any:
        seen.extend(_state(e) for e in items)
        return _batch(items, now)

    monkeypatch.setattr(stage.rollups, "on_batch", spy)
    first = [
        event_json("page_view", "u1", _at(0)),
        event_json("login", "u2", _at(1), success=False),
        event_json("login", "u2", _at(2), success=False),
        event_json("logout", "u1", _at(5)),
    ]
    second = [
        event_json("page_view", "u1", _at(3)),  # a straggler of the logged-out session: late
        event_json("page_view", "u3", _at(900)),
        event_json("login", "u2", _at(901)),  # beyond the gap: a new session
    ]
    outs = stage.process([FakeMessage(v, 0, i) for i, v in enumerate(first)], WALL)
    outs += stage.process([FakeMessage(v, 0, 4 + i) for i, v in enumerate(second)], WALL)
    stage.progress.caught_up_since = WALL
    outs += stage.process([], WALL + timedelta(hours=1))  # a tick closes the rest
    events = [e for out in outs for e in out.events]
    final = {e.event_id: _state(e) for e in events}
    assert len(events) == len(first) + len(second)
    assert any(e.late for e in events) and all(e.session_id for e in events)
    assert any(out.failed_logins for out in outs)
    assert len(seen) == len(events) * (len(stage.rules) + 1)
    assert all(state == final[state[0]] for state in seen)
