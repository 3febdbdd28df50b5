"""Run a rule three ways over the same events: what a rule's alerts must not depend on."""

from __future__ import annotations

import pickle
from collections.abc import Callable
from typing import Any

from operators.records import Alert, Event
from tests.unit.factories import NOW


def run(rule: Any, batches: list[list[Event]]) -> list[Alert]:
    """Every alert ``rule`` emits over ``batches``, in order."""
    out: list[Alert] = []
    for batch in batches:
        out.extend(rule.on_batch(batch, NOW))
    return out


def three_runs(
    make: Callable[[], Any], events: list[Event], size: int, cut: int
) -> tuple[list[Alert], list[Alert], list[Alert]]:
    """``events`` as one batch; cut into batches of ``size``; and the first ``cut`` of them, a
    pickled snapshot restored, then the rest (each run with a fresh rule from ``make``)."""
    whole = run(make(), [events])
    batches = [events[i : i + size] for i in range(0, len(events), size)]
    cut_up = run(make(), batches)
    rule = make()
    first = run(rule, [events[:cut]])
    restored = type(rule).restore(pickle.loads(pickle.dumps(rule.snapshot())), rule.params)
    return whole, cut_up, first + run(restored, [events[cut:]])
