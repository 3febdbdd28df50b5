"""The ``rtep`` command: every subcommand's ``--help`` says what it does, its settings and an example.

A newcomer learns rtep from ``rtep --help``; the module entry points (``python -m sim`` …) of the
contract keep working under their own names.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from rtep.commands.cli import COMMANDS, main
from rtep.core.settings import Settings, env_name
from tests.harness import ROOT

RTEP_SCRIPT = Path(sys.executable).parent / "rtep"
KNOWN_ENV = {env_name(field) for field in Settings.model_fields} | {
    "RTEP_TEST_ADMIN_DSN",
    "RTEP_TEST_REDIS_URL",
}


def _help(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    with pytest.raises(SystemExit) as exit_:
        code = main([*argv, "--help"])
        raise SystemExit(code)  # serve prints its help and returns instead of exiting
    assert exit_.value.code in (0, None)
    return capsys.readouterr().out


def test_the_console_script_lists_every_command_and_the_main_settings() -> None:
    result = subprocess.run(
        [str(RTEP_SCRIPT), "--help"], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    for name in COMMANDS:
        assert re.search(rf"(?m)^  {re.escape(name)} +\S", result.stdout), name
    assert {"RTEP_KAFKA_BROKERS", "RTEP_DATABASE_URL", "RTEP_REDIS_URL"} <= set(
        re.findall(r"RTEP_[A-Z_]+", result.stdout)
    )
    assert "examples:" in result.stdout


@pytest.mark.parametrize("name", list(COMMANDS))
def test_every_subcommand_help_says_what_settings_and_example(
    name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    text = _help(capsys, name)
    assert text.startswith(f"usage: rtep {name}"), text[:200]
    description = text.split("\n\n", 2)[1]
    assert len(description.split()) >= 5, f"rtep {name}: no description"
    settings = text.split("settings (environment variables", 1)[1].split("examples:", 1)[0]
    named = set(re.findall(r"\bRTEP_[A-Z_]+\b", settings))
    assert named, f"rtep {name}: names no setting"
    assert named <= KNOWN_ENV, named - KNOWN_ENV
    examples = text.split("examples:", 1)[1]
    assert re.search(rf"(?m)^  (\S+=\S+ )?rtep {re.escape(name)}\b", examples), examples


def test_an_unknown_command_fails_naming_the_choices(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["srve"])
    assert exit_.value.code == 2
    assert "invalid choice: 'srve'" in capsys.readouterr().err


@pytest.mark.parametrize(
    "module", ["rtep.commands.run", "rtep.commands.serve", "rtep.commands.migrate", "rtep.commands.dlq_replay", "sim", "sim.score"]
)
def test_module_entry_points_keep_their_own_name(module: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", module, "--help"],
        cwd=ROOT, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"usage: python -m {module}"), result.stdout[:200]
