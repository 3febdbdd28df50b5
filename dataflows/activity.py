"""The rtep dataflow: ``python -m bytewax.run dataflows.activity:flow`` (use ``rtep.serve``).

Reads top to bottom like a wiring diagram; each step calls a named function or class from
``operators/`` (pure logic) or ``sinks/`` (I/O). Shape comments show what flows out of a step.
"""

from __future__ import annotations

import gc
from datetime import timedelta
from typing import Any, TypeGuard

import bytewax.operators as op
from bytewax.connectors.kafka import operators as kop
from bytewax.dataflow import Dataflow
from confluent_kafka import OFFSET_BEGINNING

from dataflows.adapters import ValidateBatch, log_kafka_error, shard_builder, shard_key
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
from operators.sessions import Sessionizer, SessionParams
from operators.validation import Limits
from rtep import metrics
from rtep.metrics_server import serve_metrics
from rtep.settings import Settings, get_settings
from sinks.kafka import AlertsTopicSink, DlqSink
from sinks.postgres import AlertsSink, EventsSink, RejectedSink, RollupSink, SessionsSink
from sinks.redis_sink import RedisSink
from sinks.retry import RetryPolicy


def build_flow(settings: Settings) -> Dataflow:
    """Wire the whole pipeline from settings (tests build flows with their own settings)."""
    dsn = settings.database_url.get_secret_value()
    retry = RetryPolicy(max_retry_seconds=settings.sink_max_retry_seconds)
    kafka_config = {"auto.offset.reset": "earliest", **settings.kafka_extra_config}
    shards = settings.user_shards
    redis = RedisSink(
        settings.redis_url.get_secret_value(),
        prefix=settings.redis_prefix,
        counts_ttl_seconds=settings.redis_counts_ttl_seconds,
        recent_alerts_cap=settings.redis_recent_alerts,
    )

    kafka_options: dict[str, Any] = {"retry": retry, "extra_config": settings.kafka_extra_config}
    dlq_sink = DlqSink(settings.kafka_brokers, settings.dlq_topic, **kafka_options)
    alerts_topic_sink = AlertsTopicSink(
        settings.kafka_brokers, settings.alerts_topic, **kafka_options
    )
    events_sink, rejected_sink = EventsSink(dsn, retry), RejectedSink(dsn, retry)
    sessions_sink, alerts_sink = SessionsSink(dsn, retry), AlertsSink(dsn, retry)
    rollup_sink = RollupSink(dsn, retry)

    flow = Dataflow("rtep_activity")
    raw = kop.input(
        "kafka_in",
        flow,
        brokers=settings.kafka_brokers.split(","),
        topics=[settings.events_topic],
        starting_offset=OFFSET_BEGINNING,
        add_config=kafka_config,
        batch_size=settings.kafka_batch_size,
    )  # .oks: KafkaSourceMessage, .errs: KafkaError
    op.flat_map("kafka_errors", raw.errs, log_kafka_error)  # logged, never silently dropped
    limits = Limits(settings.max_event_bytes, timedelta(seconds=settings.max_future_skew_seconds))
    breaker = RejectionBreaker(
        BreakerParams(settings.breaker_window, settings.breaker_reject_share)
    )
    checked = op.flat_map_batch("validate", raw.oks, ValidateBatch(limits, breaker))
    # Event (enriched) | Rejection
    split = op.branch("split_valid", checked, _is_event)

    # --- rejected: dead-letter topic + rtep.rejected_events (original bytes, reason, source)
    rejected = split.falses  # Rejection
    op.output("rejected_pg", rejected, rejected_sink)
    op.output("dlq_out", rejected, dlq_sink)

    # --- valid: de-duplicate, sessionize (per user shard)
    by_user = op.key_on("key_user", split.trues, lambda e: shard_key(e.user_id, shards))
    # (user shard, Event)
    unique = op.stateful_batch(
        "dedup",
        by_user,
        shard_builder(
            Deduplicator, DedupParams.from_settings(settings, settings.dedup_max_ids), observe_dedup
        ),
    )  # (user shard, Event) first occurrences only
    sessionized = op.stateful_batch(
        "sessionize",
        unique,
        shard_builder(Sessionizer, SessionParams.from_settings(settings), observe_sessions),
    )  # (user shard, Event with session_id | Session)
    session_split = op.branch("split_sessions", op.key_rm("unkey_sessions", sessionized), _is_event)
    events = session_split.trues  # Event (with session_id)
    sessions = session_split.falses  # Session: on open and close; open ones at most once per update interval
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
        op.key_rm(
            f"unkey_{step}",
            op.stateful_batch(step, unique, shard_builder(rule, params, observe_alerts)),
        )
        for step, rule, params in user_rules
    ]  # Alert per rule
    failed_by_ip = op.key_on(
        "key_ip",
        op.filter("failed_logins", op.key_rm("unkey_unique", unique), _failed_login_with_ip),
        lambda e: shard_key(e.ip or "", shards),
    )  # (ip shard, Event)
    stuffing = op.stateful_batch(
        "detect_stuffing",
        failed_by_ip,
        shard_builder(
            CredentialStuffing, CredentialStuffingParams.from_settings(settings), observe_alerts
        ),
    )  # (ip shard, Alert)
    alerts = op.merge("alerts", *alert_streams, op.key_rm("unkey_stuffing", stuffing))  # Alert
    op.output("alerts_pg", alerts, alerts_sink)
    op.output("alerts_kafka", alerts, alerts_topic_sink)

    # --- rollups: per event type and event-time minute (overwrite semantics)
    by_type = op.key_on("key_type", events, lambda e: e.type)  # (type, Event)
    rollups = op.key_rm(
        "unkey_rollups",
        op.stateful_batch(
            "rollup",
            by_type,
            shard_builder(
                MinuteRollup,
                RollupParams(timedelta(seconds=settings.rollup_retention_seconds), lateness),
                observe_rollups,
            ),
        ),
    )  # RollupRow
    op.output("rollups_pg", rollups, rollup_sink)

    # --- hot cache: one Redis pipeline per batch for everything
    hot: Any = op.merge("hot", events, sessions, alerts, rollups)
    op.output("redis", hot, redis)

    metrics.zero_series(
        alert_rules=[(rule.RULE, rule.SEVERITY) for _, rule, _ in user_rules]
        + [(CredentialStuffing.RULE, CredentialStuffing.SEVERITY)],
        sinks=[
            s.spec.sink
            for s in (events_sink, rejected_sink, sessions_sink, alerts_sink, rollup_sink)
        ]
        + ["redis", dlq_sink.sink, alerts_topic_sink.sink],
        reasons=[reason.value for reason in Reason],
        event_types=EVENT_TYPES,
    )
    return flow


def _is_event(item: object) -> TypeGuard[Event]:
    return isinstance(item, Event)


def _failed_login_with_ip(event: Event) -> bool:
    return event.failed_login and event.ip is not None


def _main_flow() -> Dataflow:
    settings = get_settings()
    serve_metrics(settings)
    gc.freeze()  # start-up objects leave the GC's scans: cheaper collections on the hot path
    return build_flow(settings)


flow = _main_flow()
