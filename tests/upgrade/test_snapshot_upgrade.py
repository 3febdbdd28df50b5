"""A recovery snapshot written by an earlier release restores in this code and carries on alike.

For each release under ``fixtures/`` (written by ``tests.upgrade.generate`` with that release's
code): unpickle the snapshot of every stateful step as Bytewax would on resume, restore the
steps from it, run the same continuation, and compare everything the steps produced with what
the release itself produced: events with their sessions, rejections, sessions, alerts, partial
and merged rollups. Fields a later release added to a record are not compared.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.upgrade.scenario import STEPS, Steps, first_half, second_half

FIXTURES = Path(__file__).parent / "fixtures"
RELEASES = sorted(p.name for p in FIXTURES.iterdir() if p.is_dir())


def _known_fields(actual: Any, expected: Any) -> Any:
    """``actual`` restricted to the fields ``expected`` has (records may gain fields)."""
    if isinstance(expected, dict) and isinstance(actual, dict):
        return {k: _known_fields(actual.get(k), v) for k, v in expected.items()}
    if isinstance(expected, list) and isinstance(actual, list):
        return [_known_fields(a, e) for a, e in zip(actual, expected, strict=False)] + actual[
            len(expected) :
        ]
    return actual


def test_fixtures_cover_every_stateful_step() -> None:
    assert RELEASES, "no upgrade fixtures: run python -m tests.upgrade.generate"
    for release in RELEASES:
        assert sorted(p.stem for p in (FIXTURES / release).glob("*.pickle")) == sorted(STEPS)


@pytest.mark.parametrize("release", RELEASES)
def test_a_snapshot_of_an_earlier_release_restores_and_continues_alike(release: str) -> None:
    folder = FIXTURES / release
    saved = {step: pickle.loads((folder / f"{step}.pickle").read_bytes()) for step in STEPS}
    expected = orjson.loads((folder / "expected.json").read_bytes())
    steps = Steps(saved)
    actual = second_half(steps, saved["kafka_in"].offset)
    for kind, rows in expected.items():
        assert len(actual[kind]) == len(rows), f"{release}: {kind} count differs"
        assert _known_fields(actual[kind], rows) == rows, f"{release}: {kind} differ"


def test_a_snapshot_of_this_release_restores_and_continues_alike() -> None:
    """Scenario: the same cut, snapshotted by this code (records: a version 2 partition
    snapshot), pickled and restored. We expect: the continuation of the steps never stopped."""
    steps, offset = first_half()
    saved = pickle.loads(pickle.dumps(steps.snapshots(offset)))
    assert saved["kafka_in"].work.version == 2
    assert second_half(Steps(saved), offset) == second_half(steps, offset)
