"""Pins what rtep relies on in Bytewax 0.21.1's placement of partitions (../shared/BYTEWAX.md).

rtep's sinks name their partitions like the Kafka input's, so that a partition's rows are written
on the worker that read it (``sinks/background.py``). That holds because Bytewax assigns the
partitions of a ``FixedPartitionedSource`` and of a ``FixedPartitionedSink`` to workers by their
sorted names alone (``calc_primaries`` in ``src/timely.rs``), and routes a sink item to
``sorted(parts)[part_fn(key)]``. If an upgrade changes either, this test fails.
"""

from __future__ import annotations

import threading
from typing import Any

import bytewax.operators as op
import pytest
from bytewax.dataflow import Dataflow
from bytewax.inputs import FixedPartitionedSource, StatefulSourcePartition
from bytewax.outputs import StatefulSinkPartition
from bytewax.testing import cluster_main

from sinks.background import BackgroundSink

NAMES = [f"{i}-activity.events" for i in range(12)]  # "10-…" sorts before "2-…"
READ_ON: dict[str, int] = {}
BUILT_ON: dict[str, int] = {}
WRITTEN_BY: dict[str, list[str]] = {}


class _OnePass(StatefulSourcePartition[tuple[str, list[str]], None]):
    def __init__(self, name: str) -> None:
        self.name = name
        self.done = False
        READ_ON[name] = threading.get_ident()

    def next_batch(self) -> list[tuple[str, list[str]]]:
        if self.done:
            raise StopIteration
        self.done = True
        return [(self.name, [self.name])]  # a chunk keyed by the partition that read it

    def snapshot(self) -> None:
        return None


class _Source(FixedPartitionedSource[tuple[str, list[str]], None]):
    def list_parts(self) -> list[str]:
        return NAMES

    def build_part(self, step_id: str, for_part: str, resume_state: None) -> _OnePass:
        return _OnePass(for_part)


class _Recorded(StatefulSinkPartition[list[str], None]):
    def __init__(self, name: str) -> None:
        self.name = name

    def write_batch(self, values: list[list[str]]) -> None:
        WRITTEN_BY.setdefault(self.name, []).extend(v for chunk in values for v in chunk)

    def snapshot(self) -> None:
        return None


class _Sink(BackgroundSink[str]):
    name = "placement"

    def open(self) -> Any:
        raise AssertionError("not used")

    def build_part(self, step_id: str, for_part: str, resume_state: None) -> _Recorded:
        BUILT_ON[for_part] = threading.get_ident()
        return _Recorded(for_part)


@pytest.mark.parametrize("workers", [2, 3])
def test_a_sink_partition_named_like_an_input_partition_is_on_the_worker_that_reads_it(
    workers: int,
) -> None:
    READ_ON.clear()
    BUILT_ON.clear()
    WRITTEN_BY.clear()
    flow = Dataflow("placement")
    chunks = op.input("in", flow, _Source())
    op.output("out", chunks, _Sink(parts=lambda: NAMES))
    cluster_main(flow, [], 0, worker_count_per_proc=workers)

    assert sorted(READ_ON) == sorted(NAMES)
    assert len(set(READ_ON.values())) == workers  # the input is spread over every worker
    assert {name: BUILT_ON[name] for name in NAMES} == READ_ON
    assert {name: [name] for name in NAMES} == WRITTEN_BY
