"""Every Prometheus metric of rtep, defined once with its labels. Nothing else spells a metric name.

The dataflow updates these per batch, not per event, to keep the hot path cheap.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Iterable, Iterator

from bytewax.connectors.kafka import BYTEWAX_CONSUMER_LAG_GAUGE
from prometheus_client import Counter, Gauge, Histogram, Info
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

_LATENCY_BUCKETS = (
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
    300.0,
)

EVENTS_CONSUMED = Counter("rtep_events_consumed", "Messages read from the events topic.")
EVENTS_VALID = Counter("rtep_events_valid", "Messages that passed validation.", ["type"])
EVENTS_REJECTED = Counter("rtep_events_rejected", "Messages rejected, by reason code.", ["reason"])
EVENTS_DUPLICATE = Counter("rtep_events_duplicate", "Valid events dropped as repeated eventIds.")
EVENTS_LATE = Counter(
    "rtep_events_late", "Events older than the allowed lateness (stored, flagged)."
)
ROLLUP_LATE_DROPPED = Counter(
    "rtep_rollup_late_dropped", "Events too late for their minute rollup (bucket already closed)."
)
EVENTS_STORED = Counter("rtep_events_stored", "Records durably written, by sink.", ["sink"])
SINK_WRITE_SECONDS = Histogram(
    "rtep_sink_write_seconds",
    "Time to write one batch, by sink.",
    ["sink"],
    buckets=_LATENCY_BUCKETS,
)
SINK_ERRORS = Counter("rtep_sink_errors", "Failed write attempts (retried), by sink.", ["sink"])
SINK_BLOCKED_WORKERS = Gauge(
    "rtep_sink_blocked_workers",
    "Flow workers waiting for room in a sink's write queue (back-pressure), by sink.",
    ["sink"],
)
EVENT_LATENCY = Histogram(
    "rtep_event_latency_seconds",
    "Event timestamp to committed in PostgreSQL.",
    buckets=_LATENCY_BUCKETS,
)
ALERTS = Counter(
    "rtep_alerts", "Alert incidents raised, by rule and severity.", ["rule", "severity"]
)
ALERTS_BY_COUNTRY = Counter(
    "rtep_alerts_by_country",
    "Alert incidents raised, by rule and the country of the event that opened them "
    "('unknown' when it had no location).",
    ["rule", "country"],
)
FAILED_LOGINS = Counter("rtep_failed_logins", "Failed login events seen.")
ACTIVE_SESSIONS = Gauge("rtep_active_sessions", "Sessions currently open in this process.")
SESSION_STATE_USERS = Gauge(
    "rtep_session_state_users", "Users with per-user session state held in this process."
)
SESSIONS_CLOSED = Counter("rtep_sessions_closed", "Sessions closed, by cause.", ["ended_by"])
BREAKER_OPEN = Gauge("rtep_breaker_open", "1 when the rejection breaker stopped the flow.")
BUILD_INFO = Info("rtep_build", "Version and git revision of the running code.")
CONSUMER_LAG = "rtep_consumer_lag_messages"  # served by ConsumerLagCollector below


def zero_series(
    alert_rules: Iterable[tuple[str, str]],
    sinks: Iterable[str],
    reasons: Iterable[str],
    event_types: Iterable[str],
) -> None:
    """Create every known labelled series at 0 at start-up.

    A labelled counter otherwise appears only at its first increment, which ``rate()`` and
    ``increase()`` cannot see: the first critical alert would never fire a Grafana rule.
    """
    for rule, severity in alert_rules:
        ALERTS.labels(rule, severity)
        ALERTS_BY_COUNTRY.labels(rule, "unknown")
    for sink in sinks:
        EVENTS_STORED.labels(sink)
        SINK_ERRORS.labels(sink)
    for reason in reasons:
        EVENTS_REJECTED.labels(reason)
    for kind in event_types:
        EVENTS_VALID.labels(kind)
    for cause in ("logout", "timeout"):
        SESSIONS_CLOSED.labels(cause)


class ConsumerLagCollector(Collector):
    """``rtep_consumer_lag_messages{partition}``: bytewax's own Kafka lag gauge under the contract name.

    Bytewax computes it from librdkafka statistics every second (high watermark − next offset);
    this re-exports it summed per partition, so dashboards need only rtep_ names.
    """

    def collect(self) -> Iterator[GaugeMetricFamily]:
        """Read bytewax's gauge at scrape time."""
        family = GaugeMetricFamily(
            CONSUMER_LAG,
            "Messages behind the partition's high watermark (events topic).",
            labels=["partition"],
        )
        lag: dict[str, float] = {}
        for metric in BYTEWAX_CONSUMER_LAG_GAUGE.collect():
            for sample in metric.samples:
                part = str(sample.labels.get("partition", ""))
                lag[part] = lag.get(part, 0.0) + sample.value
        for part, value in sorted(lag.items()):
            family.add_metric([part], value)
        yield family


def observe_ages(histogram: Histogram, times: list[float], now: float) -> None:
    """``histogram.observe(now - t)`` for every ``t`` of ``times``, without Python work per value.

    Why: the events sink observes one latency per stored event, tens of thousands a second.
    Sorted newest first (in C), the ages ascend, so each bucket's count is one binary search on
    the same ``now - t`` that ``observe`` would compute; the sum is ``len × now − fsum(times)``
    (off by ~1e-9 of it). Uses prometheus-client's private ``_upper_bounds``/``_buckets``/``_sum``
    (what ``observe`` itself updates); ``tests/unit/test_metrics.py`` checks it against
    ``observe``, so an upgrade that changes them fails there first.
    """
    if not times:
        return
    newest_first = sorted(times, reverse=True)

    def age(t: float) -> float:
        return now - t

    below = 0
    for bound, bucket in zip(histogram._upper_bounds, histogram._buckets, strict=True):
        upto = bisect_right(newest_first, bound, key=age)  # ages <= bound: observe's bucket
        if upto > below:
            bucket.inc(upto - below)
            below = upto
    histogram._sum.inc(len(times) * now - math.fsum(times))
