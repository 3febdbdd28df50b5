"""The PostgreSQL sinks the flow wires: one per table of the contract, each with its guarantee.

Each sink writes its table's ``TableSpec`` (``sinks.pg_tables``) through a ``PostgresWriter``
(``sinks.pg_writer``: COPY → staging → ``INSERT … ON CONFLICT``, retries, refused rows isolated)
on a background thread (``sinks.background``). Rows refused for their data become
``store_rejected`` dead letters (``sinks.store_rejects``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar, Generic

from operators.records import Alert, Event, Rejection, RollupRow, Session
from sinks.background import BackgroundSink
from sinks.pg_spec import R, TableSpec
from sinks.pg_tables import ALERTS, EVENTS, REJECTED, ROLLUPS, SESSIONS
from sinks.pg_writer import PostgresWriter, Timeouts
from sinks.retry import RetryPolicy
from sinks.store_rejects import StoreRejects


class PostgresSink(BackgroundSink[R], Generic[R]):
    """Base of the PostgreSQL sinks: subclasses set ``spec`` (and state their guarantee).

    Written in the background (``sinks.background``): one connection per sink and process.
    Rows refused for their data go to ``rejects`` (default: ``StoreRejects`` from the settings;
    ``isolates`` False: the sink raises instead, as ``RejectedSink`` must).
    """

    spec: TableSpec[R]
    isolates: ClassVar[bool] = True

    def __init__(
        self,
        dsn: str,
        retry: RetryPolicy | None = None,
        connect_timeout: int = 5,
        *,
        parts: Callable[[], list[str]] | None = None,
        max_pending: int = 20_000,
        timeouts: Timeouts | None = None,
        rejects: StoreRejects | None = None,
    ) -> None:
        super().__init__(parts, max_pending)
        self.name = self.spec.sink
        self.dsn = dsn
        self.retry = retry or RetryPolicy()
        self.connect_timeout = connect_timeout
        self.timeouts = timeouts
        self.rejects = rejects

    def open(self) -> PostgresWriter[R]:
        """A synchronous writer on its own connection (the background thread uses it)."""
        timeouts, rejects = self.timeouts, self.rejects
        if timeouts is None or (rejects is None and self.isolates):
            # the flow's wiring passes neither: both come from the process's settings
            from rtep.core.settings import get_settings

            settings = get_settings()
            timeouts = timeouts or Timeouts.from_settings(settings)
            if rejects is None and self.isolates:
                rejects = StoreRejects.from_settings(settings, self.dsn, self.retry)
        return PostgresWriter(
            self.spec, self.dsn, self.retry, self.connect_timeout, timeouts=timeouts,
            on_reject=rejects.open() if rejects is not None and self.isolates else None,
        )  # fmt: skip


class EventsSink(PostgresSink[Event]):
    """Valid events → ``rtep.events``, ``ON CONFLICT (event_id) DO NOTHING``.

    Guarantee: each distinct eventId stored exactly once. A replay after a crash, a re-sent
    message, or a duplicate inside one batch changes nothing (the first stored copy stays). No
    duplicate row can appear; ``rtep_events_stored_total{sink="events"}`` counts new rows only.
    """

    spec = EVENTS


class RejectedSink(PostgresSink[Rejection]):
    """Rejected messages → ``rtep.rejected_events``, ``DO NOTHING`` on (topic, partition, offset).

    Guarantee: one row per rejected Kafka message, exactly once: a replay re-reads the same
    offsets, so it conflicts and changes nothing. The first stored ``received_at`` stays. A replay
    rejected again links to its original row (``replay_of``, ``replay_attempt``); the same
    attempt re-sent (a replay interrupted before its marking committed) conflicts on that unique
    index instead and changes nothing either. A data
    error here is a bug (the raw bytes are bytea, the detail is cleaned): it stops the flow.
    """

    isolates = False
    spec = REJECTED


class SessionsSink(PostgresSink[Session]):
    """Sessions → ``rtep.sessions``, ``DO UPDATE`` overwriting every column (last write wins).

    Guarantee: one row per session_id holding the latest version written. A replay re-writes
    versions the sessionizer re-computes from its restored state, ending with the same row; no
    duplicate row can appear. An invalid ``ip`` is stored NULL.
    """

    spec = SESSIONS


class AlertsSink(PostgresSink[Alert]):
    """Alerts → ``rtep.alerts``, ``DO UPDATE`` overwriting all but ``created_at``.

    Guarantee: one row per incident (deterministic alert_id); a continuing burst updates count and
    window; the first ``created_at`` is kept. Replays rewrite the same values: no duplicate row.
    """

    spec = ALERTS


class RollupSink(PostgresSink[RollupRow]):
    """Per-minute counts → ``rtep.event_counts_minute``, ``DO UPDATE`` with the new totals.

    Guarantee: one row per (minute, type) holding the latest total computed. Totals are
    overwritten, never added, so a replay cannot double-count.
    """

    spec = ROLLUPS
