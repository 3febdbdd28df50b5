"""Importing the flow module starts nothing; ``dataflows.activity:flow`` is built on first use."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

PROBE = """
import gc, threading
before = gc.get_threshold()
import dataflows.activity as activity
assert [t.name for t in threading.enumerate()] == ["MainThread"], threading.enumerate()
assert gc.get_threshold() == before, gc.get_threshold()
assert callable(activity.build_flow)
"""


def test_importing_the_flow_module_has_no_side_effects() -> None:
    """No metrics server, heap trimmer or GC change until ``flow`` is read (bytewax.run does)."""
    result = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr[-2000:]
