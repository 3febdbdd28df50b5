"""Write the upgrade fixtures of this release: ``python -m tests.upgrade.generate``.

Run once per release, before its snapshot formats change; the files are checked in under
``tests/upgrade/fixtures/<version>/`` and never rewritten afterwards.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import orjson

import rtep
from tests.upgrade.scenario import STEPS, first_half, second_half

FIXTURES = Path(__file__).parent / "fixtures"


def main() -> None:
    """Snapshots at the cut (one file per stateful step) and what followed them."""
    steps, offset = first_half()
    snapshots = steps.snapshots(offset)
    folder = FIXTURES / rtep.__version__
    folder.mkdir(parents=True, exist_ok=True)
    for step in STEPS:
        (folder / f"{step}.pickle").write_bytes(pickle.dumps(snapshots[step]))
    expected = second_half(steps, offset)
    (folder / "expected.json").write_bytes(orjson.dumps(expected, option=orjson.OPT_INDENT_2))
    print(f"wrote {folder}: {', '.join(STEPS)} and expected.json")


if __name__ == "__main__":
    main()
