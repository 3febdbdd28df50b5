"""Read GitHub workflow files, and run a step's own `run:` script the way a runner does."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import yaml

from tests.ops.validators import ROOT, clean_env

WORKFLOWS = ROOT / ".github" / "workflows"


def workflow(name: str) -> dict[str, Any]:
    """A workflow file as YAML (PyYAML reads the key `on` as True: both are accepted)."""
    loaded: dict[str, Any] = yaml.safe_load((WORKFLOWS / name).read_text())
    if True in loaded:
        loaded["on"] = loaded.pop(True)
    return loaded


def step(job: dict[str, Any], marker: str) -> dict[str, Any]:
    """The step of ``job`` whose id is ``marker``, else the one whose name or `uses` contains it."""
    found = [s for s in job["steps"] if s.get("id") == marker] or [
        s for s in job["steps"] if marker in s.get("name", "") + " " + s.get("uses", "")
    ]
    assert len(found) == 1, f"expected one step matching {marker!r}, got {len(found)}"
    return found[0]


def condition(job: dict[str, Any]) -> str:
    """A job's `if:` with white space folded, for reading it as one line."""
    return " ".join(str(job.get("if", "")).split())


def run_script(script: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run a workflow `run:` script as GitHub's default shell does (bash -e -o pipefail)."""
    assert "${{" not in script, "scripts take inputs through env:, never ${{ }} (injection)"
    return subprocess.run(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script],
        cwd=cwd,
        env={**clean_env(), **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def git(cwd: Path, *args: str) -> str:
    """Run git in ``cwd`` with a fixed identity; return its stdout."""
    result = subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout.strip()
