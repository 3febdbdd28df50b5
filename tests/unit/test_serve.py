"""rtep.commands.serve: multi-process runs get one metrics port per process."""

from __future__ import annotations

import pytest

from rtep.commands.serve import offset_metrics_port, process_id
from rtep.core.settings import Settings, get_settings


@pytest.mark.parametrize(
    ("argv", "expected"),
    [([], 0), (["-w", "1"], 0), (["-i", "2", "-a", "a:1;b:2;c:3"], 2), (["--process-id", "1"], 1)],
)
def test_process_id(argv: list[str], expected: int) -> None:
    assert process_id(argv) == expected


def test_metrics_port_is_offset_by_process(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RTEP_METRICS_PORT", "9108")
    offset_metrics_port(Settings(), 3)
    assert get_settings().metrics_port == 9111
    get_settings.cache_clear()
