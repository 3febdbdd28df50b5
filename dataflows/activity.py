"""The rtep dataflow: ``python -m bytewax.run dataflows.activity:flow`` (use ``rtep.commands.serve``).

Reads top to bottom like a wiring diagram; each step calls a named function or class from
``operators/`` (pure logic) or ``sinks/`` (I/O). Shape comments show what flows out of a step.
"""

from __future__ import annotations

from datetime import timedelta
from functools import cache

import bytewax.operators as op
from bytewax.dataflow import Dataflow
from confluent_kafka import OFFSET_BEGINNING

from dataflows.outputs import build_outputs
from dataflows.params import ip_params, rollup_params, stage_params
from dataflows.partition_stage import RULES, StageOutput, UserRule, stage_factory
from dataflows.steps import (
    MergeTiming,
    hot_cache,
    ip_rules,
    read_partitions,
    rollup_totals,
    values,
)
from operators.detections.credential_stuffing import CredentialStuffing
from operators.detections.password_spraying import PasswordSpraying
from operators.records import Reason
from operators.schemas import EVENT_TYPES
from rtep.core import metrics
from rtep.core.process import prepare_process
from rtep.core.settings import Settings, get_settings
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
    source: LeanKafkaSource[StageOutput] = LeanKafkaSource(
        settings.kafka_brokers.split(","),
        [settings.events_topic],
        stage_factory(stage_params(settings)),
        starting_offset=OFFSET_BEGINNING,
        add_config=settings.kafka_extra_config,
        consumer_defaults=CONSUMER_DEFAULTS,
        batch_size=settings.kafka_batch_size,
    )
    out = build_outputs(settings, source.list_parts)
    lateness = timedelta(seconds=settings.allowed_lateness_seconds)
    timing = MergeTiming(lateness, timedelta(seconds=settings.partition_idle_seconds))
    flow = Dataflow("rtep_activity")

    # per partition, where it is read: validate, dedup, sessionize, per-user rules, partial rollups
    part = read_partitions(flow, source)

    # rejected: dead-letter topic + rtep.rejected_events (original bytes, reason, source)
    op.output("rejected_pg", part.rejections, out.rejected)
    op.output("dlq_out", values("rejected_values", part.rejections), out.dlq)

    # stored: unique events with their session, session rows
    op.output("events_pg", part.events, out.events)
    op.output("sessions_pg", part.sessions, out.sessions)

    # where partitions meet: failed logins by IP in event-time order (stuffing, spraying);
    # rollup partials summed
    ip_alerts = ip_rules(part.stage, ip_params(settings), settings.ip_shards, timing)
    alerts = op.merge("alerts", part.alerts, ip_alerts)
    op.output("alerts_pg", alerts, out.alerts)
    op.output("alerts_kafka", values("alert_values", alerts), out.alerts_topic)
    rollups = rollup_totals(part.stage, rollup_params(settings), timing)
    op.output("rollups_pg", rollups, out.rollups)

    # hot cache: one Redis pipeline per write for everything
    op.output("redis", hot_cache(part.events, part.sessions, alerts, rollups), out.redis)

    every_rule: tuple[type[UserRule], ...] = (*RULES, CredentialStuffing, PasswordSpraying)
    metrics.zero_series(
        alert_rules=[(rule.RULE, rule.SEVERITY) for rule in every_rule],
        sinks=out.sink_names(),
        reasons=[reason.value for reason in Reason],
        event_types=EVENT_TYPES,
    )
    return flow


@cache
def _main_flow() -> Dataflow:
    """The process's flow, built once the process is set up for a long run."""
    settings = get_settings()
    prepare_process(settings)
    return build_flow(settings)


def __getattr__(name: str) -> Dataflow:
    """``flow``, built on first use: ``python -m bytewax.run dataflows.activity:flow`` reads it,
    while importing this module (``build_flow`` in tests and tools) starts nothing."""
    if name == "flow":
        return _main_flow()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
