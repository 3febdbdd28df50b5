"""docs/extending.md's worked example runs: its rule, its unit test, and the one line of wiring.

The rule's and the test's code are read from the page (the fenced block after each
``<!-- extending-example: NAME -->`` marker), so the page cannot drift away from the code.
"""

from __future__ import annotations

import re
import sys
import types
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

import dataflows.params
import dataflows.partition_stage
from dataflows.params import stage_params
from dataflows.partition_stage import RULES, PartitionStage
from operators.state import InputProgress
from rtep.core.settings import Settings
from tests.harness import ROOT, event_json
from tests.unit.factories import FakeMessage

DOC = ROOT / "docs" / "extending.md"
MODULE = "operators.detections.rapid_form_submit"


def example(name: str) -> str:
    """The Python block that follows the page's ``extending-example: name`` marker."""
    pattern = rf"<!-- extending-example: {name} -->\n```python\n(.*?)\n```"
    found = re.search(pattern, DOC.read_text(encoding="utf-8"), re.S)
    assert found, f"docs/extending.md has no {name!r} example"
    return found.group(1)


@pytest.fixture
def rule(monkeypatch: pytest.MonkeyPatch) -> Any:
    """The example rule's class, its module importable under the path the page gives it."""
    module = types.ModuleType(MODULE)
    monkeypatch.setitem(sys.modules, MODULE, module)
    exec(compile(example("rule"), f"{DOC}[rule]", "exec"), module.__dict__)
    return module.RapidFormSubmit


@pytest.fixture
def wired(rule: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """``RULES`` with the example's line added (both modules that read it)."""
    for module in (dataflows.partition_stage, dataflows.params):
        monkeypatch.setattr(module, "RULES", (*RULES, rule))
    return rule


def test_the_documented_unit_test_passes(rule: Any) -> None:
    namespace: dict[str, Any] = {"__name__": "extending_example_test"}
    exec(compile(example("test"), f"{DOC}[test]", "exec"), namespace)
    tests = [fn for name, fn in namespace.items() if name.startswith("test_")]
    assert tests
    for test in tests:
        test()


def submits(now: datetime, count: int, first_offset: int = 0) -> list[Any]:
    """``count`` form submits of one user, a second apart, ending a minute before ``now``."""
    start = now - timedelta(seconds=60 + count)
    return [
        FakeMessage(
            event_json("form_submit", "u1", (start + timedelta(seconds=i)).isoformat()),
            0,
            first_offset + i,
        )
        for i in range(count)
    ]


def test_one_line_in_rules_runs_the_rule_in_every_partition_stage(wired: Any) -> None:
    """Scenario: the example rule added to RULES; its defaults (10 submits within 30 s).
    We expect: the stage alerts with it, its lateness is RTEP_ALLOWED_LATENESS_SECONDS, and its
    state is saved in the partition's snapshot and restored from it."""
    settings = Settings()
    params = stage_params(settings)
    now = datetime.now(UTC)
    stage = PartitionStage(params, "0-activity", 1, InputProgress())
    rule = stage.rules[-1]
    assert isinstance(rule, wired)
    assert rule.params.lateness == timedelta(seconds=settings.allowed_lateness_seconds)
    assert rule.params.threshold == 10
    alerts = [a for out in stage.process(submits(now, 10), now) for a in out.alerts]
    assert [(a.rule, a.subject, a.event_count) for a in alerts] == [("rapid_form_submit", "u1", 10)]
    restored = PartitionStage(params, "0-activity", 1, InputProgress(), stage.snapshot())
    assert restored.rules[-1].snapshot() == rule.snapshot() and not rule.is_empty()


def test_a_snapshot_from_before_the_rule_restores_with_the_rule_empty(
    monkeypatch: pytest.MonkeyPatch, rule: Any
) -> None:
    """Scenario: a partition saved before the rule was added, restored after.
    We expect: the other rules' state restored, the new rule present and empty."""
    now = datetime.now(UTC)
    before = PartitionStage(stage_params(Settings()), "0-activity", 1, InputProgress())
    before.process(submits(now, 3), now)
    saved = before.snapshot()
    for module in (dataflows.partition_stage, dataflows.params):
        monkeypatch.setattr(module, "RULES", (*RULES, rule))
    after = PartitionStage(stage_params(Settings()), "0-activity", 1, InputProgress(), saved)
    assert [type(r) for r in after.rules] == [*RULES, rule]
    assert [r.snapshot() for r in after.rules[:-1]] == [r.snapshot() for r in before.rules]
    assert after.rules[-1].is_empty()
