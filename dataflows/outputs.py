"""Every sink of the flow, built from the settings in one place (``Outputs``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple, TypeVar

from rtep.core.settings import Settings
from sinks.kafka import AlertsTopicSink, DlqSink
from sinks.pg_writer import Timeouts
from sinks.postgres import AlertsSink, EventsSink, RejectedSink, RollupSink, SessionsSink
from sinks.redis_sink import RedisSink
from sinks.retry import RetryPolicy
from sinks.store_rejects import StoreRejects

PG = TypeVar("PG")


class Outputs(NamedTuple):
    """The flow's sinks: PostgreSQL tables, the Redis hot cache, the two Kafka topics."""

    events: EventsSink
    rejected: RejectedSink
    sessions: SessionsSink
    alerts: AlertsSink
    rollups: RollupSink
    redis: RedisSink
    dlq: DlqSink
    alerts_topic: AlertsTopicSink

    def sink_names(self) -> list[str]:
        """Every ``sink`` label of the metrics, so each series exists from the start."""
        stores = (self.events, self.rejected, self.sessions, self.alerts, self.rollups, self.redis)
        return [s.name for s in stores] + [self.dlq.sink, self.alerts_topic.sink]


def build_outputs(settings: Settings, parts: Callable[[], list[str]]) -> Outputs:
    """The sinks, with partitions named like the input's (``parts``): each writes what its worker
    read (``sinks.background``)."""
    dsn = settings.database_url.get_secret_value()
    retry = RetryPolicy(max_retry_seconds=settings.sink_max_retry_seconds)
    pending = settings.sink_max_pending
    timeouts = Timeouts.from_settings(settings)
    rejects = StoreRejects.from_settings(settings, dsn, retry)  # rows a store refuses (their data)
    brokers, extra = settings.kafka_brokers, settings.kafka_extra_config

    def table(sink: Callable[..., PG]) -> PG:
        return sink(dsn, retry, parts=parts, max_pending=pending, timeouts=timeouts, rejects=rejects)

    return Outputs(
        events=table(EventsSink),
        rejected=table(RejectedSink),  # raises on a refused row instead (isolates=False)
        sessions=table(SessionsSink),
        alerts=table(AlertsSink),
        rollups=table(RollupSink),
        redis=RedisSink(
            settings.redis_url.get_secret_value(),
            prefix=settings.redis_prefix,
            counts_ttl_seconds=settings.redis_counts_ttl_seconds,
            recent_alerts_cap=settings.redis_recent_alerts,
            write_interval_seconds=settings.redis_write_interval_ms / 1000,
            key_ttl_seconds=settings.redis_key_ttl_seconds,
            rejects=rejects,
            parts=parts,
            max_pending=pending,
        ),
        dlq=DlqSink(brokers, settings.dlq_topic, retry=retry, extra_config=extra),
        alerts_topic=AlertsTopicSink(
            brokers, settings.alerts_topic, retry=retry, extra_config=extra
        ),
    )
