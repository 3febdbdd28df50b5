"""Fixtures shared by the ops tests."""

from __future__ import annotations

from typing import Any

import pytest

from tests.ops import terraform_model


@pytest.fixture(scope="session")
def hcl() -> dict[str, Any]:
    """terraform/*.tf parsed once per session (python-hcl2 runs in the validators' venv)."""
    return terraform_model.load()
