"""The rtep dataflow: ``python -m bytewax.run dataflows.activity:flow`` (use ``rtep.serve``).

Reads top to bottom like a wiring diagram; each step calls a named function or class from
``operators/`` (pure logic) or ``sinks/`` (I/O). Shape comments show what flows out of a step.
"""

from __future__ import annotations

import gc
from datetime import timedelta
from typing import Any

import bytewax.operators as op
from bytewax.dataflow import Dataflow
from confluent_kafka import OFFSET_BEGINNING

from dataflows.adapters import (
    Chunk,
    ValidateBatch,
    by_type,
    chunk_values,
    failed_logins_by_ip,
    shard_builder,
    split_chunk,
)
from dataflows.observers import observe_alerts, observe_dedup, observe_rollups, observe_sessions
from operators.breaker import BreakerParams, RejectionBreaker
from operators.dedup import Deduplicator, DedupParams
from operators.detection import (
    AbnormalEventRate,
    AbnormalEventRateParams,
    BruteForceSuccess,
    BruteForceSuccessParams,
    CredentialStuffing,
    CredentialStuffingParams,
    FailedLoginBurst,
    FailedLoginBurstParams,
    NewDeviceLogin,
    NewDeviceLoginParams,
)
from operators.model import Event, Reason
from operators.rollups import MinuteRollup, RollupParams
from operators.schemas import EVENT_TYPES
from operators.sessions import Session, Sessionizer, SessionParams
from operators.validation import Limits
from rtep import metrics
from rtep.kafka_source import LeanKafkaSource
from rtep.memory import start_heap_trimmer
from rtep.metrics_server import serve_metrics
from rtep.settings import Settings, get_settings
from sinks.kafka import AlertsTopicSink, DlqSink
from sinks.postgres import AlertsSink, EventsSink, RejectedSink, RollupSink, SessionsSink
from sinks.redis_sink import RedisSink
from sinks.retry import RetryPolicy

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
    shards = settings.user_shards
    kafka_options: dict[str, Any] = {"retry": retry, "extra_config": settings.kafka_extra_config}
    dlq_sink = DlqSink(settings.kafka_brokers, settings.dlq_topic, **kafka_options)
    alerts_topic_sink = AlertsTopicSink(
        settings.kafka_brokers, settings.alerts_topic, **kafka_options
    )
    background: dict[str, Any] = {"parts": shards, "max_pending": settings.sink_max_pending}
    events_sink = EventsSink(dsn, retry, **background)
    rejected_sink = RejectedSink(dsn, retry, **background)
    sessions_sink = SessionsSink(dsn, retry, **background)
    alerts_sink = AlertsSink(dsn, retry, **background)
    rollup_sink = RollupSink(dsn, retry, **background)
    redis = RedisSink(
        settings.redis_url.get_secret_value(),
        prefix=settings.redis_prefix,
        counts_ttl_seconds=settings.redis_counts_ttl_seconds,
        recent_alerts_cap=settings.redis_recent_alerts,
        write_interval_seconds=settings.redis_write_interval_ms / 1000,
        **background,
    )

    flow = Dataflow("rtep_activity")
    source = LeanKafkaSource(
        settings.kafka_brokers.split(","),
        [settings.events_topic],
        starting_offset=OFFSET_BEGINNING,
        add_config=settings.kafka_extra_config,
        consumer_defaults=CONSUMER_DEFAULTS,
        batch_size=settings.kafka_batch_size,
    )
    raw = op.input("kafka_in", flow, source)  # confluent_kafka.Message (errors logged)
    limits = Limits(settings.max_event_bytes, timedelta(seconds=settings.max_future_skew_seconds))
    breaker = RejectionBreaker(
        BreakerParams(settings.breaker_window, settings.breaker_reject_share)
    )
    # Items are chunks from here on: (key, [values]), one per key per batch (dataflows/adapters).
    checked = op.flat_map_batch("validate", raw, ValidateBatch(limits, breaker, shards))
    # (user shard, [Event enriched]) | (Kafka partition, [Rejection])
    split = op.branch("split_valid", checked, _is_event_chunk)

    # --- rejected: dead-letter topic + rtep.rejected_events (original bytes, reason, source)
    rejected = split.falses  # (Kafka partition, [Rejection])
    op.output("rejected_pg", rejected, rejected_sink)
    op.output("dlq_out", _values("rejections", rejected), dlq_sink)

    # --- valid: de-duplicate, sessionize (per user shard)
    by_user = split.trues  # (user shard, [Event])
    unique = op.stateful_batch(
        "dedup",
        by_user,
        shard_builder(
            Deduplicator, DedupParams.from_settings(settings, settings.dedup_max_ids), observe_dedup
        ),
    )  # (user shard, [Event]) first occurrences only
    sessionized = op.stateful_batch(
        "sessionize",
        unique,
        shard_builder(Sessionizer, SessionParams.from_settings(settings), observe_sessions),
    )  # (user shard, [Event with session_id | Session])
    events = op.filter_map("session_events", sessionized, split_chunk(Event))
    # (user shard, [Event with session_id])
    sessions = op.filter_map("session_rows", sessionized, split_chunk(Session))
    # (user shard, [Session]): on open and close; open ones at most once per update interval
    op.output("events_pg", events, events_sink)
    op.output("sessions_pg", sessions, sessions_sink)

    # --- detections: per-user rules on user shards; credential stuffing on IP shards
    lateness = timedelta(seconds=settings.allowed_lateness_seconds)
    user_rules: list[tuple[str, Any, Any]] = [
        ("detect_failed_burst", FailedLoginBurst, FailedLoginBurstParams.from_settings(settings)),
        ("detect_brute_force", BruteForceSuccess, BruteForceSuccessParams.from_settings(settings)),
        (
            "detect_new_device",
            NewDeviceLogin,
            NewDeviceLoginParams(
                settings.new_device_max_devices,
                timedelta(days=settings.new_device_history_days),
                lateness,
            ),
        ),
        ("detect_event_rate", AbnormalEventRate, AbnormalEventRateParams.from_settings(settings)),
    ]
    alert_streams = [
        op.stateful_batch(step, unique, shard_builder(rule, params, observe_alerts))
        for step, rule, params in user_rules
    ]  # (user shard, [Alert]) per rule
    failed_by_ip = op.flat_map_batch("failed_logins_by_ip", unique, failed_logins_by_ip(shards))
    # (ip shard, [Event]) failed logins with an IP
    stuffing = op.stateful_batch(
        "detect_stuffing",
        failed_by_ip,
        shard_builder(
            CredentialStuffing, CredentialStuffingParams.from_settings(settings), observe_alerts
        ),
    )  # (ip shard, [Alert])
    alerts = op.merge("alerts", *alert_streams, stuffing)  # (shard, [Alert])
    op.output("alerts_pg", alerts, alerts_sink)
    op.output("alerts_kafka", _values("alerts", alerts), alerts_topic_sink)

    # --- rollups: per event type and event-time minute (overwrite semantics)
    by_type_ = op.flat_map_batch("key_type", events, by_type)  # (type, [Event])
    rollups = op.stateful_batch(
        "rollup",
        by_type_,
        shard_builder(
            MinuteRollup,
            RollupParams(timedelta(seconds=settings.rollup_retention_seconds), lateness),
            observe_rollups,
        ),
    )  # (type, [RollupRow])
    op.output("rollups_pg", rollups, rollup_sink)

    # --- hot cache: one Redis pipeline per write for everything
    hot: Any = op.merge("hot", events, sessions, alerts, rollups)
    op.output("redis", hot, redis)

    metrics.zero_series(
        alert_rules=[(rule.RULE, rule.SEVERITY) for _, rule, _ in user_rules]
        + [(CredentialStuffing.RULE, CredentialStuffing.SEVERITY)],
        sinks=[
            s.name
            for s in (events_sink, rejected_sink, sessions_sink, alerts_sink, rollup_sink, redis)
        ]
        + [dlq_sink.sink, alerts_topic_sink.sink],
        reasons=[reason.value for reason in Reason],
        event_types=EVENT_TYPES,
    )
    return flow


def _is_event_chunk(chunk: Chunk) -> bool:
    return isinstance(chunk[1][0], Event)


def _values(name: str, chunks: Any) -> Any:
    """One item per value of the chunks, keys dropped: for the Kafka topic sinks."""
    return op.flat_map(f"{name}_values", chunks, chunk_values)


def _main_flow() -> Dataflow:
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


flow = _main_flow()
