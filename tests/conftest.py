"""Shared fixtures: real PostgreSQL, Redis and an embedded Kafka-compatible broker."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings

from rtep.core.embedded import EmbeddedBroker
from tests.harness import Stack, fresh_database, provision_topics, redis_prefix

# No per-example deadline: it is a timed assertion, and it failed a property test
# (test_parse_device_is_total) while another process loaded the 2 cores. Performance is
# measured in bench/, never asserted here.
settings.register_profile("rtep", deadline=None)
settings.load_profile("rtep")


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedBroker]:
    """One embedded broker for the session; tests isolate themselves by topic names."""
    log = tmp_path_factory.mktemp("broker") / "broker.log"
    with EmbeddedBroker(log_path=log) as running:
        yield running


@pytest.fixture
def database() -> Iterator[str]:
    """A fresh migrated database for one test (DSN)."""
    with fresh_database() as dsn:
        yield dsn


@pytest.fixture
def rprefix() -> Iterator[str]:
    """A Redis key prefix for one test, cleaned afterwards."""
    with redis_prefix() as prefix:
        yield prefix


@pytest.fixture
def stack(broker: EmbeddedBroker, database: str, rprefix: str, tmp_path: Path) -> Stack:
    """Broker + database + Redis prefix + topics (created, 4 partitions for events)."""
    topics = provision_topics(broker.bootstrap)
    return Stack(broker.bootstrap, database, rprefix, topics, tmp_path)
