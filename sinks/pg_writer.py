"""The PostgreSQL writer: one connection and its staging table, one transaction per batch.

A ``PostgresWriter`` writes what its ``TableSpec`` (``sinks.pg_spec``) describes. Connection
loss is retried by ``sinks.retry`` with back-off, reconnecting, and blocks the worker meanwhile
(back-pressure), never dropping a row.

A write that fails because of the data (SQLSTATE classes 22, 23, 54: a value out of range, a
constraint, an index entry too large) is not an outage: the batch is split in halves until the
refused rows are alone, the rest is stored, and each refused row becomes a ``store_rejected``
dead letter (``rtep.rejected_events`` and the DLQ topic, with the database's message) through
``sinks.store_rejects``. Every connection has a statement and a lock timeout (``Timeouts``), so a
held lock or a hung statement ends in an error the retry policy handles instead of a writer
waiting for ever.

Delivery: Bytewax gives at-least-once output (a crash replays the epoch since the last snapshot),
and each write here is idempotent on the natural key, so the *tables* end up exactly-once.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from operators.erasure import has_erasure, split_at_erasures
from rtep.core.logs import get_logger
from rtep.core.metrics import EVENTS_STORED, SINK_WRITE_SECONDS
from sinks.pg_spec import COLUMN_TYPES, R, Row, Statements, TableSpec
from sinks.retry import POSTGRES, RetryPolicy, pg_data_error

if TYPE_CHECKING:
    from rtep.core.settings import Settings
    from sinks.store_rejects import RejectWriter

log = get_logger("rtep.sinks.postgres")

# A server that vanishes without closing the socket (host down, network cut) is noticed within
# about 25 s instead of the kernel's two hours, and the retry policy takes over.
KEEPALIVE = {
    "keepalives": 1,
    "keepalives_idle": 10,
    "keepalives_interval": 5,
    "keepalives_count": 3,
}

Refused = list[tuple[Row, Exception]]
"""Rows the database refused for their data, each with its error."""


@dataclass(frozen=True)
class Timeouts:
    """Per-connection limits (settings ``RTEP_PG_STATEMENT_TIMEOUT_MS``, ``RTEP_PG_LOCK_TIMEOUT_MS``).

    Without them a lock held by someone else (a migration, a manual ``LOCK``, a long
    transaction) makes a writer wait for ever, never reaching the retry policy's outage path.
    """

    statement_ms: int = 30_000
    lock_ms: int = 5_000

    def conninfo(self, dsn: str, **extra: Any) -> str:
        """``dsn`` with these limits added to its ``options`` (any options it had are kept)."""
        given = str(conninfo_to_dict(dsn).get("options") or "")
        options = f"{given} -c statement_timeout={self.statement_ms} -c lock_timeout={self.lock_ms}"
        return make_conninfo(dsn, options=options.strip(), **extra)

    @classmethod
    def from_settings(cls, settings: Settings) -> Timeouts:
        """The configured limits."""
        return cls(settings.pg_statement_timeout_ms, settings.pg_lock_timeout_ms)


class PostgresWriter(Generic[R]):
    """One connection and its staging table; writes one batch per transaction."""

    def __init__(
        self,
        spec: TableSpec[R],
        dsn: str,
        retry: RetryPolicy,
        connect_timeout: int = 5,
        *,
        timeouts: Timeouts | None = None,
        on_reject: RejectWriter | None = None,
    ) -> None:
        self.spec = spec
        self._dsn = dsn
        self._retry = retry
        self._connect_timeout = connect_timeout
        self._timeouts = timeouts or Timeouts()
        self._on_reject = on_reject
        self._conn: psycopg.Connection[Any] | None = None
        self._sql: Statements | None = None

    def write_batch(self, items: list[R]) -> None:
        """Write the batch in one transaction, retrying outages; isolate rows refused for their
        data and dead-letter them; then metrics.

        Returns once committed: blocking here (retries included) is the back-pressure."""
        if not items:
            return
        if has_erasure(items):  # rare: a user's erasure, in the order of this sink's queue
            for run, erase in split_at_erasures(items):
                self.write_batch(run)
                if erase is not None:
                    self._erase(erase.user_id)
            return
        rows = self.spec.dedupe(items)
        started = time.perf_counter()
        changed, returned, refused = self._store(rows)
        committed = time.time()
        SINK_WRITE_SECONDS.labels(sink=self.spec.sink).observe(time.perf_counter() - started)
        EVENTS_STORED.labels(sink=self.spec.sink).inc(changed)
        if self.spec.after_commit is not None:
            self.spec.after_commit(returned, committed)
        if refused and self._on_reject is not None:
            self._on_reject.reject(self.spec, refused)

    def _store(self, rows: list[Row]) -> tuple[int, list[Any], Refused]:
        """Write ``rows``; on a data error split them in halves, each its own transaction, until
        the refused rows are alone (a few transactions per refused row: log2 of the batch)."""
        try:
            changed, returned = self._retry.call(
                lambda: self._write(rows), backend=POSTGRES, sink=self.spec.sink
            )
            return changed, returned, []
        except (psycopg.Error, OverflowError) as exc:
            if self._on_reject is None or not pg_data_error(exc):
                raise
            if len(rows) == 1:
                return 0, [], [(rows[0], exc)]
        half = len(rows) // 2
        first, second = self._store(rows[:half]), self._store(rows[half:])
        return first[0] + second[0], first[1] + second[1], first[2] + second[2]

    def _erase(self, user_id: str) -> None:
        """Delete the user's rows from this sink's table (its ``erase`` statement), retrying
        outages like a write."""
        if self.spec.erase is None:
            return
        statement, params = self.spec.erase(user_id)

        def attempt() -> int:
            conn, _ = self._connection()
            try:
                return conn.execute(statement, params).rowcount
            except psycopg.Error as exc:
                if POSTGRES.unavailable(exc):
                    self._disconnect()
                raise

        deleted = self._retry.call(attempt, backend=POSTGRES, sink=self.spec.sink)
        log.info("user erased from a table", table=self.spec.table, rows=deleted)

    @property
    def backend_pid(self) -> int | None:
        """PID of the PostgreSQL backend serving this writer (diagnostics, benchmarks)."""
        return self._conn.info.backend_pid if self._conn is not None else None

    def close(self) -> None:
        """Close the connection; after a failed attempt, so that the next one reconnects."""
        if self._on_reject is not None:
            self._on_reject.close()
        self._disconnect()

    def _disconnect(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            finally:
                self._conn = None

    def _write(self, rows: list[Row]) -> tuple[int, list[Any]]:
        """One attempt: COPY + INSERT in one transaction. Returns how many rows were inserted or
        changed, and their ``returning`` values when the spec asks for them."""
        conn, statements = self._connection()
        try:
            with conn.transaction(), conn.cursor() as cur:
                with cur.copy(statements.copy) as copy:
                    copy.set_types(statements.copy_types)
                    for row in rows:
                        copy.write_row(row)
                cur.execute(statements.insert, binary=True)
                if self.spec.returning is None:
                    return max(cur.rowcount, 0), []
                written = cur.fetchone()
                returned = (written[0] if written else None) or []  # array_agg of none: NULL
                return len(returned), returned
        except psycopg.Error as exc:
            if POSTGRES.unavailable(exc):  # the next attempt reconnects
                self._disconnect()
            raise

    def _connection(self) -> tuple[psycopg.Connection[Any], Statements]:
        """The open connection, or a new one with its staging table (and, once, the SQL)."""
        if self._conn is None or self._conn.closed or self._sql is None:
            conn = psycopg.connect(
                self._timeouts.conninfo(
                    self._dsn, connect_timeout=self._connect_timeout, **KEEPALIVE
                ),
                autocommit=True,
            )
            try:
                if self._sql is None:
                    rows = conn.execute(COLUMN_TYPES, (f"rtep.{self.spec.table}",)).fetchall()
                    self._sql = self.spec.statements(dict(rows))
                conn.execute(self._sql.ddl)
            except BaseException:
                conn.close()
                raise
            self._conn = conn
        return self._conn, self._sql
