"""The rtep dataflow: ``python -m bytewax.run dataflows.activity:flow`` (use ``rtep.commands.serve``).

Reads top to bottom like a wiring diagram; each step calls a named function or class from
``operators/`` (pure logic) or ``sinks/`` (I/O). Shape comments show what flows out of a step.
"""

from __future__ import annotations

import gc
from datetime import timedelta
from functools import cache
from typing import Any

import bytewax.operators as op
from bytewax.dataflow import Dataflow
from confluent_kafka import OFFSET_BEGINNING

from dataflows.adapters import chunk_values, merge_builder
from dataflows.observers import observe_alerts, observe_rollups
from dataflows.partition_stage import (
    RULES,
    StageOutput,
    StageParams,
    chunk_of,
    rollup_feed,
    stage_factory,
    stuffing_feeds,
)
from operators.detection import CredentialStuffing, CredentialStuffingParams
from operators.ordering import InEventTimeOrder
from operators.records import Reason
from operators.rollups import RollupMerge, RollupParams
from operators.schemas import EVENT_TYPES
from operators.state import MergedClock
from rtep.core import metrics
from rtep.core.memory import start_heap_trimmer
from rtep.core.metrics_server import serve_metrics
from rtep.core.settings import Settings, get_settings
from sinks.kafka import AlertsTopicSink, DlqSink
from sinks.postgres import (
    AlertsSink,
    EventsSink,
    RejectedSink,
    RollupSink,
    SessionsSink,
    StoreRejects,
    Timeouts,
)
from sinks.redis_sink import RedisSink
from sinks.retry import RetryPolicy
from sources.kafka import LeanKafkaSource

CONSUMER_DEFAULTS = {
    "auto.offset.reset": "earliest",
    # librdkafka prefetches up to 64 MiB per partition by default (a consumer per partition here):
    # 16 MiB is still ten 5,000-event batches ahead, and caps the buffers at 16 MiB x partitions.
    "queued.max.messages.kbytes": "16384",
}
"""librdkafka settings of the input's consumers; ``RTEP_KAFKA_EXTRA_CONFIG`` overrides them."""


def build_flow(settings: Settings) -> Dataflow:
    """Wire the whole pipeline from settings (tests build flows with their own settings)."""
    dsn = settings.database_url.get_secret_value()
    retry = RetryPolicy(max_retry_seconds=settings.sink_max_retry_seconds)
    source = LeanKafkaSource(
        settings.kafka_brokers.split(","),
        [settings.events_topic],
        stage_factory(StageParams.from_settings(settings)),
        starting_offset=OFFSET_BEGINNING,
        add_config=settings.kafka_extra_config,
        consumer_defaults=CONSUMER_DEFAULTS,
        batch_size=settings.kafka_batch_size,
    )
    kafka_options: dict[str, Any] = {"retry": retry, "extra_config": settings.kafka_extra_config}
    dlq_sink = DlqSink(settings.kafka_brokers, settings.dlq_topic, **kafka_options)
    alerts_topic_sink = AlertsTopicSink(
        settings.kafka_brokers, settings.alerts_topic, **kafka_options
    )
    # sink partitions named like the input's: each writes what its worker read (sinks/background)
    background: dict[str, Any] = {
        "parts": source.list_parts,
        "max_pending": settings.sink_max_pending,
    }
    rejects = StoreRejects.from_settings(settings, dsn, retry)  # rows a store refuses (their data)
    stores: dict[str, Any] = {**background, "timeouts": Timeouts.from_settings(settings)}
    events_sink = EventsSink(dsn, retry, rejects=rejects, **stores)
    rejected_sink = RejectedSink(dsn, retry, **stores)
    sessions_sink = SessionsSink(dsn, retry, rejects=rejects, **stores)
    alerts_sink = AlertsSink(dsn, retry, rejects=rejects, **stores)
    rollup_sink = RollupSink(dsn, retry, rejects=rejects, **stores)
    redis = RedisSink(
        settings.redis_url.get_secret_value(),
        prefix=settings.redis_prefix,
        counts_ttl_seconds=settings.redis_counts_ttl_seconds,
        recent_alerts_cap=settings.redis_recent_alerts,
        write_interval_seconds=settings.redis_write_interval_ms / 1000,
        key_ttl_seconds=settings.redis_key_ttl_seconds,
        rejects=rejects,
        **background,
    )
    lateness = timedelta(seconds=settings.allowed_lateness_seconds)
    idle = timedelta(seconds=settings.partition_idle_seconds)

    flow = Dataflow("rtep_activity")
    # Per partition, where it is read: validate, dedup, sessionize, per-user rules, partial rollups
    stage = op.input("kafka_in", flow, source)  # StageOutput: one per partition batch
    # Chunks from here on: (key, [values]); the key is the input partition's name (or IP shard).

    # --- rejected: dead-letter topic + rtep.rejected_events (original bytes, reason, source)
    rejected = op.filter_map("rejected", stage, chunk_of(_rejections))  # (partition, [Rejection])
    op.output("rejected_pg", rejected, rejected_sink)
    op.output("dlq_out", op.flat_map("rejected_values", rejected, chunk_values), dlq_sink)

    # --- stored: unique events with their session, session rows, per-user alerts
    events = op.filter_map("events", stage, chunk_of(_events))  # (partition, [Event])
    sessions = op.filter_map("sessions", stage, chunk_of(_sessions))  # (partition, [Session])
    op.output("events_pg", events, events_sink)
    op.output("sessions_pg", sessions, sessions_sink)
    user_alerts = op.filter_map("user_alerts", stage, chunk_of(_alerts))  # (partition, [Alert])

    # --- where partitions meet: failed logins by IP, in event-time order across partitions
    by_ip = op.flat_map("failed_logins_by_ip", stage, stuffing_feeds(settings.ip_shards))
    # (IP shard, Feed(mark, [Event]))
    stuffing_params = CredentialStuffingParams.from_settings(settings)

    def stuffing_logic(clock: MergedClock, saved: Any) -> InEventTimeOrder:
        if saved is None:
            return InEventTimeOrder(CredentialStuffing(stuffing_params), clock)
        return InEventTimeOrder.restore(
            saved, lambda rule: CredentialStuffing.restore(rule, stuffing_params), clock
        )

    stuffing = op.stateful_batch(
        "stuffing_in_order", by_ip, merge_builder(stuffing_logic, lateness, idle, _observe_ordered)
    )  # (IP shard, [Alert])
    alerts = op.merge("alerts", user_alerts, stuffing)  # (key, [Alert])
    op.output("alerts_pg", alerts, alerts_sink)
    op.output("alerts_kafka", op.flat_map("alert_values", alerts, chunk_values), alerts_topic_sink)

    # --- rollups: every partition's partial counts summed per (minute, type)
    rollup_params = RollupParams(timedelta(seconds=settings.rollup_retention_seconds), lateness)

    def rollup_logic(clock: MergedClock, saved: Any) -> RollupMerge:
        if saved is None:
            return RollupMerge(rollup_params, clock)
        return RollupMerge.restore(saved, rollup_params, clock)

    partials = op.filter_map("rollup_partials", stage, rollup_feed)  # ("rollups", Feed)
    rollups = op.stateful_batch(
        "rollup_totals", partials, merge_builder(rollup_logic, lateness, idle, observe_rollups)
    )  # ("rollups", [RollupRow])
    op.output("rollups_pg", rollups, rollup_sink)

    # --- hot cache: one Redis pipeline per write for everything
    hot = op.merge("hot", events, sessions, alerts, rollups)
    op.output("redis", hot, redis)

    metrics.zero_series(
        alert_rules=[(rule.RULE, rule.SEVERITY) for rule in (*RULES, CredentialStuffing)],
        sinks=[
            s.name
            for s in (events_sink, rejected_sink, sessions_sink, alerts_sink, rollup_sink, redis)
        ]
        + [dlq_sink.sink, alerts_topic_sink.sink],
        reasons=[reason.value for reason in Reason],
        event_types=EVENT_TYPES,
    )
    return flow


def _rejections(out: StageOutput) -> list[Any]:
    return out.rejections


def _events(out: StageOutput) -> list[Any]:
    return out.events


def _sessions(out: StageOutput) -> list[Any]:
    return out.sessions


def _alerts(out: StageOutput) -> list[Any]:
    return out.alerts


def _observe_ordered(logic: InEventTimeOrder) -> None:
    observe_alerts(logic.rule)


@cache
def _main_flow() -> Dataflow:
    """The process's flow, set up for a long run (metrics server, heap trimmer, GC thresholds)."""
    settings = get_settings()
    serve_metrics(settings)
    start_heap_trimmer()
    gc.freeze()  # start-up objects leave the GC's scans: cheaper collections on the hot path
    gc.set_threshold(*GC_THRESHOLDS)
    return build_flow(settings)


GC_THRESHOLDS = (200_000, 50, 100)
"""The cyclic GC's thresholds for the dataflow process (CPython's defaults: 700, 10, 10).

Thousands of events are alive at any time (a Kafka batch is 5,000), so with the defaults every
collection re-scans them and the sessions' state: 20-25 % of the pipeline's CPU in the benchmark
(py-spy; 24k -> 29-32k events/s on a 300k backlog with these values). Garbage in reference cycles
is still collected, only later (a full collection every 100 x 50 x 200,000 container allocations,
minutes at full speed); reference counting frees everything else at once, as before.
``make bench-rss`` checks that RSS stays flat.
"""


def __getattr__(name: str) -> Dataflow:
    """``flow``, built on first use: ``python -m bytewax.run dataflows.activity:flow`` reads it,
    while importing this module (``build_flow`` in tests and tools) starts nothing."""
    if name == "flow":
        return _main_flow()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
