"""Fault scenarios: heavy variants run only with RTEP_HEAVY_TESTS=1; shared private-server fixtures."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import pytest

from rtep.commands.migrate import migrate
from tests.faults.support import HEAVY
from tests.harness import Stack
from tests.integration.private_servers import PrivatePostgres, private_postgres


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Skip ``@pytest.mark.heavy`` tests unless RTEP_HEAVY_TESTS=1."""
    if HEAVY:
        return
    skip = pytest.mark.skip(reason="heavy variant: set RTEP_HEAVY_TESTS=1")
    for item in items:
        if "heavy" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def private_pg() -> Iterator[PrivatePostgres]:
    """A private, migrated PostgreSQL that the scenario may stop and start."""
    with private_postgres() as server:
        migrate(server.dsn)
        yield server


@pytest.fixture
def pg_stack(stack: Stack, private_pg: PrivatePostgres) -> Stack:
    """The test stack, its database on the private PostgreSQL."""
    return dataclasses.replace(stack, dsn=private_pg.dsn)
