"""The flow's composite steps, each a function from typed streams to typed streams.

``dataflows.activity`` wires them; each adds its Bytewax steps to the flow under fixed names
(recovery snapshots are keyed by step name: ``kafka_in``, ``stuffing_in_order`` and
``rollup_totals`` hold state and must never be renamed). Streams carry chunks,
``(key, [values])``; the key is the input partition's name (or an IP shard).
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from datetime import timedelta
from typing import NamedTuple, TypeVar

import bytewax.operators as op
from bytewax.dataflow import Dataflow, Stream
from bytewax.operators import KeyedStream

from dataflows.adapters import Chunk, Feed, MergeLogic, chunked, merge_builder
from dataflows.observers import observe_alerts, observe_rollups
from dataflows.partition_stage import StageOutput
from operators.detections.credential_stuffing import CredentialStuffing
from operators.detections.ip_rules import IpParams, IpRules
from operators.detections.password_spraying import PasswordSpraying
from operators.ordering import InEventTimeOrder
from operators.records import Alert, Event, Rejection, RollupRow, Session
from operators.rollups import RollupMerge, RollupParams
from operators.state import MergedClock
from sinks.cache_writes import (
    CacheWrites,
    cache_alerts,
    cache_events,
    cache_rollups,
    cache_sessions,
)
from sources.kafka import LeanKafkaSource

T = TypeVar("T")


class PartitionStreams(NamedTuple):
    """What the partitions' stages produce, by kind: ``read_partitions``."""

    stage: Stream[StageOutput]  # everything, per partition batch (for the merging steps)
    events: KeyedStream[list[Event]]  # unique, with their session
    rejections: KeyedStream[list[Rejection]]
    sessions: KeyedStream[list[Session]]
    alerts: KeyedStream[list[Alert]]  # of the per-user rules


class MergeTiming(NamedTuple):
    """How the steps where partitions meet treat lateness and quiet partitions."""

    lateness: timedelta
    idle: timedelta


def read_partitions(flow: Dataflow, source: LeanKafkaSource[StageOutput]) -> PartitionStreams:
    """Kafka → per partition, where it is read: validate, de-duplicate, sessionize, per-user
    rules, partial rollups (``dataflows.partition_stage``); then split by kind."""
    stage = op.input("kafka_in", flow, source)
    return PartitionStreams(
        stage,
        events=op.filter_map("events", stage, _chunk_of(lambda out: out.events)),
        rejections=op.filter_map("rejected", stage, _chunk_of(lambda out: out.rejections)),
        sessions=op.filter_map("sessions", stage, _chunk_of(lambda out: out.sessions)),
        alerts=op.filter_map("user_alerts", stage, _chunk_of(lambda out: out.alerts)),
    )


def ip_rules(
    stage: Stream[StageOutput], params: IpParams, ip_shards: int, timing: MergeTiming
) -> KeyedStream[list[Alert]]:
    """Failed logins by IP shard, evaluated in event-time order across partitions: the alerts
    of credential stuffing and of password spraying (one step runs both in lockstep, the step
    of 0.2.0's credential stuffing: ``operators.detections.ip_rules``)."""
    by_ip = op.flat_map("failed_logins_by_ip", stage, stuffing_feeds(ip_shards))

    def logic(clock: MergedClock, saved: object | None) -> MergeLogic[Event, Alert]:
        if saved is None:
            rules = IpRules(CredentialStuffing(params.stuffing), PasswordSpraying(params.spraying))
            return InEventTimeOrder(rules, clock)
        return InEventTimeOrder.restore(saved, lambda rule: IpRules.restore(rule, params), clock)

    builder = merge_builder(logic, timing.lateness, timing.idle, _observe_ordered)
    return op.stateful_batch("stuffing_in_order", by_ip, builder)


def rollup_totals(
    stage: Stream[StageOutput], params: RollupParams, timing: MergeTiming
) -> KeyedStream[list[RollupRow]]:
    """Every partition's partial per-minute counts summed per (minute, type)."""

    def logic(clock: MergedClock, saved: object | None) -> MergeLogic[RollupRow, RollupRow]:
        if saved is None:
            return RollupMerge(params, clock)
        return RollupMerge.restore(saved, params, clock)

    partials = op.filter_map("rollup_partials", stage, rollup_feed)
    builder = merge_builder(logic, timing.lateness, timing.idle, _observe_totals)
    return op.stateful_batch("rollup_totals", partials, builder)


def ip_shard(ip: str, shards: int) -> str:
    """A stable shard name for an IP (crc32: the same in every process, unlike ``hash``)."""
    return str(zlib.crc32(ip.encode("utf-8", "surrogatepass")) % shards)


def stuffing_feeds(shards: int) -> Callable[[StageOutput], list[tuple[str, Feed[Event]]]]:
    """Failed logins by IP shard, each with the partition's mark; every shard gets the mark when
    it is due (a merging step must hear from every partition, even one with no failures)."""

    def feeds(out: StageOutput) -> list[tuple[str, Feed[Event]]]:
        by_shard = dict(chunked((ip_shard(e.ip or "", shards), e) for e in out.failed_logins))
        if not out.mark_changed:
            return [(key, Feed(out.mark, events)) for key, events in by_shard.items()]
        return [
            (key, Feed(out.mark, by_shard.get(key, []))) for key in (str(i) for i in range(shards))
        ]

    return feeds


ROLLUP_KEY = "rollups"
"""The one key of the rollup-totals step: a few partial rows per partition batch."""


def rollup_feed(out: StageOutput) -> tuple[str, Feed[RollupRow]] | None:
    """The partition's partial rollups with its mark (None when neither is new)."""
    if not out.rollups and not out.mark_changed:
        return None
    return ROLLUP_KEY, Feed(out.mark, out.rollups)


def hot_cache(
    events: KeyedStream[list[Event]],
    sessions: KeyedStream[list[Session]],
    alerts: KeyedStream[list[Alert]],
    rollups: KeyedStream[list[RollupRow]],
) -> KeyedStream[CacheWrites]:
    """Everything the Redis sink writes, each kind typed for it, as one stream (one Redis
    pipeline per write)."""
    return op.merge(
        "hot",
        op.map("hot_events", events, cache_events),
        op.map("hot_sessions", sessions, cache_sessions),
        op.map("hot_alerts", alerts, cache_alerts),
        op.map("hot_rollups", rollups, cache_rollups),
    )


def values(step_id: str, chunks: KeyedStream[list[T]]) -> Stream[T]:
    """A chunk's values, one item each, key dropped (for the Kafka topic sinks)."""
    return op.flat_map(step_id, chunks, _chunk_values)


def _chunk_values(chunk: Chunk[T]) -> list[T]:
    return chunk[1]


def _chunk_of(get: Callable[[StageOutput], list[T]]) -> Callable[[StageOutput], Chunk[T] | None]:
    """A ``filter_map`` mapper: one kind of a stage's output, keyed by its partition's name (so
    the sinks write it on the worker that read it), or None when there is none."""

    def pick(out: StageOutput) -> Chunk[T] | None:
        items = get(out)
        return (out.partition, items) if items else None

    return pick


def _observe_ordered(logic: MergeLogic[Event, Alert]) -> None:
    assert isinstance(logic, InEventTimeOrder), "an IP step runs InEventTimeOrder"
    assert isinstance(logic.rule, IpRules), "in event-time order: the IP rules"
    for rule in logic.rule.rules:
        observe_alerts(rule)


def _observe_totals(logic: MergeLogic[RollupRow, RollupRow]) -> None:
    assert isinstance(logic, RollupMerge), "the rollup totals step runs RollupMerge"
    observe_rollups(logic)
