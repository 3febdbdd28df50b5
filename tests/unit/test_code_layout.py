"""The floor plan holds: dependencies point one way, modules stay small, the wiring stays typed.

``dataflows/`` wires ``operators/``, ``sources/`` and ``sinks/``; ``operators/`` are pure (they
import nothing of the platform but themselves); ``sinks/`` and ``sources/`` never import the
wiring; ``sim/`` is a client that shares the event schemas only. A module of ``operators/``,
``sinks/`` or ``dataflows/`` longer than ``MAX_LINES`` is doing more than one thing.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PLATFORM = ("operators", "sinks", "sources", "dataflows", "rtep", "sim")
MAY_IMPORT = {
    "operators": {"operators"},
    "sinks": {"operators", "sinks", "rtep"},
    "sources": {"operators", "sources", "rtep"},
    "dataflows": {"operators", "sinks", "sources", "dataflows", "rtep"},
    "sim": {"sim", "operators.schemas"},
}
"""What each package may import of the platform (``rtep`` here is ``rtep.core``'s floor)."""
MAX_LINES = 350
SMALL = ("operators", "sinks", "dataflows")


def modules(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


def platform_imports(path: Path) -> set[str]:
    """Every platform module ``path`` imports (at run time or for type checking)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return {name for name in names if name.split(".")[0] in PLATFORM}


def allowed(name: str, package: str) -> bool:
    if package in ("sinks", "sources") and name.startswith("rtep.") and not name.startswith(
        "rtep.core"
    ):
        return False
    return any(name == p or name.startswith(p + ".") for p in MAY_IMPORT[package])


@pytest.mark.parametrize("package", sorted(MAY_IMPORT))
def test_dependencies_point_one_way(package: str) -> None:
    wrong = {
        f"{path.relative_to(ROOT)} imports {name}"
        for path in modules(package)
        for name in platform_imports(path)
        if not allowed(name, package)
    }
    assert not wrong, sorted(wrong)


@pytest.mark.parametrize("package", SMALL)
def test_modules_stay_small(package: str) -> None:
    long = {
        str(path.relative_to(ROOT)): n
        for path in modules(package)
        if (n := len(path.read_text().splitlines())) > MAX_LINES
    }
    assert not long, f"split these by concern (at most ~{MAX_LINES} lines): {long}"


def test_the_wiring_has_no_any() -> None:
    uses = [
        f"{path.relative_to(ROOT)}:{node.lineno}"
        for path in modules("dataflows")
        for node in ast.walk(ast.parse(path.read_text()))
        if (isinstance(node, ast.Name) and node.id == "Any")
        or (isinstance(node, ast.Attribute) and node.attr == "Any")
    ]
    assert not uses, f"typed streams in dataflows/, not Any: {uses}"
