"""Idempotent batch writers into the contract's PostgreSQL tables.

Every sink here works the same way (``PostgresSink``), configured by a ``TableSpec``:
one transaction per ``write_batch``; rows de-duplicated within the batch by the table's natural
key (the last one wins, since PostgreSQL refuses one statement touching a key twice); binary
``COPY`` into a per-connection TEMP staging table (``ON COMMIT DELETE ROWS``); then one
``INSERT … SELECT … ON CONFLICT`` into the table. Facts use ``DO NOTHING``; aggregates
(sessions, alerts, rollups) use ``DO UPDATE`` overwriting with the new values (last write wins,
rows that would not change are skipped). Connection loss is retried by ``sinks.retry`` with
back-off, reconnecting, and blocks the worker meanwhile (back-pressure), never dropping a row.

A write that fails because of the data (SQLSTATE classes 22, 23, 54: a value out of range, a
constraint, an index entry too large) is not an outage: the batch is split in halves until the
refused rows are alone, the rest is stored, and each refused row becomes a ``store_rejected``
dead letter (``rtep.rejected_events`` and the DLQ topic, with the database's message) through
``StoreRejects``. Every connection has a statement and a lock timeout, so a held lock or a hung
statement ends in an error the retry policy handles instead of a writer waiting for ever.

Delivery: Bytewax gives at-least-once output (a crash replays the epoch since the last snapshot),
and each write here is idempotent on the natural key, so the *tables* end up exactly-once.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from operator import attrgetter, itemgetter
from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple

import orjson
import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from operators.erasure import has_erasure, split_at_erasures
from operators.records import (
    REJECTION_COLUMNS,
    Alert,
    Event,
    Reason,
    Rejection,
    RollupRow,
    Session,
    Source,
    columns,
)
from rtep.core.logs import get_logger
from rtep.core.metrics import (
    EVENT_LATENCY,
    EVENTS_REJECTED,
    EVENTS_STORED,
    SINK_WRITE_SECONDS,
    observe_ages,
)
from sinks.background import BackgroundSink
from sinks.codec import json_text, safe_inet
from sinks.kafka import DlqSink, KafkaTopicPartition
from sinks.retry import POSTGRES, RetryPolicy, pg_data_error

if TYPE_CHECKING:
    from rtep.core.settings import Settings

log = get_logger("rtep.sinks.postgres")

Row = tuple[Any, ...]


@dataclass(frozen=True)
class TableSpec:
    """How one record type maps onto one table of schema ``rtep``.

    ``update`` None means ``ON CONFLICT DO NOTHING``; otherwise the columns overwritten with the
    new values on conflict. With ``returning`` (an SQL expression over the table's columns),
    ``after_commit`` gets its value for each row inserted or changed by this batch (not the
    replayed ones), in one array (a list), and the commit time (epoch s).
    """

    sink: str
    table: str
    columns: tuple[str, ...]
    key: tuple[str, ...]
    row: Callable[[Any], Row]
    update: tuple[str, ...] | None = None
    returning: str | None = None
    after_commit: Callable[[list[Any], float], None] | None = None
    document: Callable[[Row], bytes] | None = None
    erase: Callable[[str], tuple[str, tuple[Any, ...]]] | None = None
    _key_index: tuple[int, ...] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_key_index", tuple(self.columns.index(k) for k in self.key))

    def dedupe(self, items: Iterable[Any]) -> list[Row]:
        """Rows of ``items`` with one row per natural key: the last one in the batch."""
        key = itemgetter(*self._key_index)
        build = self.row
        latest: dict[Any, Row] = {}
        for item in items:
            row = build(item)
            latest[key(row)] = row
        return list(latest.values())

    def key_of(self, row: Row) -> tuple[Any, ...]:
        """The natural key of a row."""
        return tuple(row[i] for i in self._key_index)

    def raw(self, row: Row) -> bytes:
        """The bytes a refused row is dead-lettered with: ``document`` (an event: its wire JSON,
        replayable), else the row as a JSON object of its columns."""
        if self.document is not None:
            return self.document(row)
        return json_text(dict(zip(self.columns, row, strict=True))).encode()

    def statements(self, types: dict[str, str]) -> Statements:
        """The staging DDL, COPY and INSERT for this table, given its column types.

        Columns of the types in ``TEXT_STAGED`` are staged as text and cast in the INSERT, so
        that Python strings go through binary COPY unchanged; all others keep their type.
        """
        staging = sql.Identifier(f"stg_{self.table}")
        staged = [("text" if types[c] in TEXT_STAGED else types[c]) for c in self.columns]
        names = [sql.Identifier(c) for c in self.columns]
        return Statements(
            ddl=sql.SQL("CREATE TEMP TABLE {stg} ({defs}) ON COMMIT DELETE ROWS").format(
                stg=staging,
                defs=sql.SQL(", ").join(
                    sql.SQL("{} {}").format(n, sql.SQL(t)) for n, t in zip(names, staged, strict=True)
                ),
            ),
            copy=sql.SQL("COPY {stg} ({cols}) FROM STDIN (FORMAT BINARY)").format(
                stg=staging, cols=sql.SQL(", ").join(names)
            ),
            copy_types=staged,
            insert=self._insert(staging, [
                sql.SQL("{}::{}").format(n, sql.SQL(types[c])) if types[c] in TEXT_STAGED else n
                for n, c in zip(names, self.columns, strict=True)
            ]),
        )  # fmt: skip

    def _insert(self, staging: sql.Identifier, selected: list[sql.Composable]) -> sql.Composed:
        """INSERT … SELECT from staging with this table's conflict rule."""
        action: sql.Composable
        conflict: sql.Composable = sql.SQL("({})").format(
            sql.SQL(", ").join(map(sql.Identifier, self.key))
        )
        if self.update is None:
            # no target: a fact conflicting on any unique index (not only the natural key) is
            # already stored, e.g. a re-sent replay of a dead letter (rtep.rejected_events)
            conflict, action = sql.SQL(""), sql.SQL("DO NOTHING")
        else:
            target = sql.Identifier(self.table)
            names = [sql.Identifier(c) for c in self.update]
            action = sql.SQL("DO UPDATE SET {sets} WHERE ({old}) IS DISTINCT FROM ({new})").format(
                sets=sql.SQL(", ").join(sql.SQL("{c} = EXCLUDED.{c}").format(c=c) for c in names),
                old=sql.SQL(", ").join(sql.SQL("{t}.{c}").format(t=target, c=c) for c in names),
                new=sql.SQL(", ").join(sql.SQL("EXCLUDED.{c}").format(c=c) for c in names),
            )
        insert = sql.SQL(
            "INSERT INTO rtep.{table} ({cols}) SELECT {selected} FROM {stg} ON CONFLICT {conflict} "
            "{action}"
        ).format(
            table=sql.Identifier(self.table),
            cols=sql.SQL(", ").join(map(sql.Identifier, self.columns)),
            selected=sql.SQL(", ").join(selected),
            stg=staging,
            conflict=conflict,
            action=action,
        )
        if self.returning is None:
            return insert
        # one row holding an array: a row per event would cost ~0.5 us each to fetch and parse
        return sql.SQL(
            "WITH written AS ({insert} RETURNING {expr} AS value) SELECT array_agg(value) "
            "FROM written"
        ).format(insert=insert, expr=sql.SQL(self.returning))


# Types whose Python values are strings (uuid, inet, jsonb text): staged as text, cast on INSERT.
TEXT_STAGED = frozenset({"uuid", "inet", "jsonb"})
_COLUMN_TYPES = """
SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute
WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped
"""


# A server that vanishes without closing the socket (host down, network cut) is noticed within
# about 25 s instead of the kernel's two hours, and the retry policy takes over.
_KEEPALIVE = {
    "keepalives": 1,
    "keepalives_idle": 10,
    "keepalives_interval": 5,
    "keepalives_count": 3,
}


class Statements(NamedTuple):
    """What one writer executes for its table (built once per connection)."""

    ddl: sql.Composed
    copy: sql.Composed
    copy_types: list[str]
    insert: sql.Composed


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


Refused = list[tuple[Row, Exception]]


class PostgresSink(BackgroundSink[Any]):
    """Base of the PostgreSQL sinks: subclasses set ``spec`` (and state their guarantee).

    Written in the background (``sinks.background``): one connection per sink and process.
    Rows refused for their data go to ``rejects`` (default: ``StoreRejects`` from the settings;
    ``isolates`` False: the sink raises instead, as ``RejectedSink`` must).
    """

    spec: ClassVar[TableSpec]
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

    def open(self) -> PostgresWriter:
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


class PostgresWriter:
    """One connection and its staging table; writes one batch per transaction."""

    def __init__(
        self,
        spec: TableSpec,
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

    def write_batch(self, items: list[Any]) -> None:
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
                    self._dsn, connect_timeout=self._connect_timeout, **_KEEPALIVE
                ),
                autocommit=True,
            )
            try:
                if self._sql is None:
                    rows = conn.execute(_COLUMN_TYPES, (f"rtep.{self.spec.table}",)).fetchall()
                    self._sql = self.spec.statements(dict(rows))
                conn.execute(self._sql.ddl)
            except BaseException:
                conn.close()
                raise
            self._conn = conn
        return self._conn, self._sql


# --- rows refused for their data: store_rejected dead letters ---------------------------------


def store_rejection(spec: TableSpec, row: Row, error: Exception, now: datetime) -> Rejection:
    """A refused row as a dead letter: reason ``store_rejected``, the database's message.

    Its source is ``(rtep.<table>, -1, n)``, ``n`` a hash of the table and the row's natural key:
    not a Kafka position, but stable, so a replay of the same refused row is one row in
    ``rtep.rejected_events`` (its unique key) and one DLQ letter per delivery."""
    key = spec.key_of(row)
    digest = hashlib.sha256(repr((spec.table, key)).encode()).digest()
    offset = int.from_bytes(digest[:8], "big") >> 1  # a non-negative bigint
    message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    sqlstate = getattr(error, "sqlstate", None)
    state = f" (SQLSTATE {sqlstate})" if sqlstate else f" ({type(error).__name__})"
    named = ", ".join(f"{c}={v!s:.80}" for c, v in zip(spec.key, key, strict=True))
    detail = f"rtep.{spec.table} refused the row {named}: {message}{state}"
    return Rejection(
        Reason.STORE_REJECTED, detail[:1000], spec.raw(row), Source(f"rtep.{spec.table}", -1, offset), now
    )  # fmt: skip


@dataclass(frozen=True)
class StoreRejects:
    """Where rows refused for their data go: ``rtep.rejected_events`` and the DLQ topic."""

    dsn: str
    brokers: str
    dlq_topic: str
    extra_config: dict[str, str] = field(default_factory=dict)
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    timeouts: Timeouts = field(default_factory=Timeouts)

    @classmethod
    def from_settings(cls, settings: Settings, dsn: str, retry: RetryPolicy) -> StoreRejects:
        """The flow's DLQ topic and rejected-events table (on ``dsn``)."""
        return cls(
            dsn, settings.kafka_brokers, settings.dlq_topic, settings.kafka_extra_config, retry,
            Timeouts.from_settings(settings),
        )  # fmt: skip

    def open(self) -> RejectWriter:
        """A writer of such dead letters (one per sink writer thread; connects on first use)."""
        return RejectWriter(self)


class RejectWriter:
    """Writes ``store_rejected`` dead letters, table first, then topic (each idempotent)."""

    def __init__(self, target: StoreRejects) -> None:
        self.target = target
        self._table: PostgresWriter | None = None
        self._topic: KafkaTopicPartition | None = None

    def reject(self, spec: TableSpec, refused: Refused) -> None:
        """Dead-letter the refused rows of ``spec``'s table (blocks while the DLQ is down)."""
        now = datetime.now(UTC)
        rejections = [store_rejection(spec, row, error, now) for row, error in refused]
        for rejection in rejections:
            log.warning(
                "row refused by PostgreSQL: dead-lettered as store_rejected",
                table=spec.table, source_offset=rejection.source.offset, detail=rejection.detail,
            )  # fmt: skip
        self.write(rejections)

    def write(self, rejections: list[Rejection]) -> None:
        """Store the dead letters in ``rtep.rejected_events``, then on the DLQ topic."""
        target = self.target
        if self._table is None:
            self._table = PostgresWriter(
                RejectedSink.spec, target.dsn, target.retry, timeouts=target.timeouts
            )
        if self._topic is None:
            sink = DlqSink(target.brokers, target.dlq_topic, retry=target.retry,
                           extra_config=target.extra_config)  # fmt: skip
            self._topic = sink.build("store_rejects", 0, 1)
        self._table.write_batch(rejections)
        self._topic.write_batch(rejections)
        EVENTS_REJECTED.labels(Reason.STORE_REJECTED.value).inc(len(rejections))

    def close(self) -> None:
        """Close the connection and flush the producer, if they were opened."""
        if self._table is not None:
            self._table.close()
        if self._topic is not None:
            self._topic.close()


# --- erasure ----------------------------------------------------------------------------------


def by_user(statement: str) -> Callable[[str], tuple[str, tuple[Any, ...]]]:
    """An ``erase`` of ``TableSpec``: ``statement`` with the user id as its one parameter."""
    return lambda user_id: (statement, (user_id,))


ERASE_REJECTED = (
    "DELETE FROM rtep.rejected_events WHERE ("
    "position(%s::bytea in raw) > 0 OR position(%s::bytea in raw) > 0 OR "
    "position(%s::bytea in raw) > 0 OR position(%s::bytea in raw) > 0)"
)


def carrying_user_id(user_id: str) -> tuple[bytes, ...]:
    """What a rejected message's bytes contain when they carry ``user_id`` as its userId: the
    JSON member ``"userId":"…"``, with or without a space, the id escaped as JSON writers do
    (UTF-8 or ``\\u`` escapes). Raw bytes are not necessarily JSON: they are searched, not parsed."""
    forms = {json.dumps(user_id, ensure_ascii=False), json.dumps(user_id)}
    patterns = [f'"userId":{sep}{form}'.encode() for form in sorted(forms) for sep in ("", " ")]
    return tuple((patterns * 2)[:4])


# --- events -----------------------------------------------------------------------------------

_EVENT_COLUMNS = columns(Event)
_EVENT_ROW = attrgetter(*_EVENT_COLUMNS)
_IP, _PAYLOAD = _EVENT_COLUMNS.index("ip"), _EVENT_COLUMNS.index("payload")


def event_row(event: Event) -> Row:
    """An Event as an ``rtep.events`` row. An ``ip`` that ``inet`` would refuse is stored NULL;
    the original string stays in ``payload`` (added under ``ip`` if the payload lacks it)."""
    row = list(_EVENT_ROW(event))
    ip = event.ip
    payload = event.payload
    if ip is not None and safe_inet(ip) is None:
        if payload.get("ip") != ip:
            payload = {**payload, "ip": ip}
        row[_IP] = None
    row[_PAYLOAD] = json_text(payload)
    return tuple(row)


def event_document(row: Row) -> bytes:
    """An ``rtep.events`` row back as its wire JSON (what a refused event is dead-lettered with,
    so that ``rtep.commands.dlq_replay`` can re-ingest it once the cause is fixed)."""
    values = dict(zip(_EVENT_COLUMNS, row, strict=True))
    payload = orjson.loads(values["payload"])
    envelope = payload.pop("_envelope", None) or {}
    document = {"eventId": values["event_id"], "type": values["type"],
                "timestamp": values["ts"].isoformat(), "payload": payload, **envelope}  # fmt: skip
    return json_text(document).encode()


def observe_latency(times: list[float], committed: float) -> None:
    """rtep_event_latency_seconds: commit time minus event time (epoch s, from ``RETURNING``),
    for each newly stored event."""
    observe_ages(EVENT_LATENCY, times, committed)


EVENTS = TableSpec(
    sink="events", table="events", columns=_EVENT_COLUMNS, key=("event_id",), row=event_row,
    returning="extract(epoch FROM ts)::float8", after_commit=observe_latency,
    document=event_document, erase=by_user("DELETE FROM rtep.events WHERE user_id = %s"),
)  # fmt: skip


class EventsSink(PostgresSink):
    """Valid events → ``rtep.events``, ``ON CONFLICT (event_id) DO NOTHING``.

    Guarantee: each distinct eventId stored exactly once. A replay after a crash, a re-sent
    message, or a duplicate inside one batch changes nothing (the first stored copy stays). No
    duplicate row can appear; ``rtep_events_stored_total{sink="events"}`` counts new rows only.
    """

    spec = EVENTS


# --- rejected events --------------------------------------------------------------------------


def rejected_row(rejection: Rejection) -> Row:
    """A Rejection as an ``rtep.rejected_events`` row (raw bytes unchanged, as bytea)."""
    src, replay = rejection.source, rejection.replay
    return (
        rejection.received_at, str(rejection.reason), rejection.detail.replace("\x00", "\ufffd"),
        rejection.raw, src.topic, src.partition, src.offset,
        replay.of if replay else None, replay.attempt if replay else None,
    )  # fmt: skip


class RejectedSink(PostgresSink):
    """Rejected messages → ``rtep.rejected_events``, ``DO NOTHING`` on (topic, partition, offset).

    Guarantee: one row per rejected Kafka message, exactly once: a replay re-reads the same
    offsets, so it conflicts and changes nothing. The first stored ``received_at`` stays. A replay
    rejected again links to its original row (``replay_of``, ``replay_attempt``); the same
    attempt re-sent (a replay interrupted before its marking committed) conflicts on that unique
    index instead and changes nothing either. A data
    error here is a bug (the raw bytes are bytea, the detail is cleaned): it stops the flow.
    """

    isolates = False

    spec = TableSpec(
        sink="rejected", table="rejected_events",
        columns=REJECTION_COLUMNS,
        key=("source_topic", "source_partition", "source_offset"), row=rejected_row,
        erase=lambda user_id: (ERASE_REJECTED, carrying_user_id(user_id)),
    )  # fmt: skip


# --- sessions, alerts, rollups (aggregates: overwrite) ----------------------------------------


def _attribute_row(
    columns: tuple[str, ...], **convert: Callable[[Any], Any]
) -> Callable[[Any], Row]:
    """A row builder reading ``columns`` as attributes, converting the named ones."""
    get = attrgetter(*columns)
    converters = [(columns.index(name), fn) for name, fn in convert.items()]

    def row(item: Any) -> Row:
        values = list(get(item))
        for i, fn in converters:
            values[i] = fn(values[i])
        return tuple(values)

    return row


_SESSION_COLUMNS = columns(Session)


class SessionsSink(PostgresSink):
    """Sessions → ``rtep.sessions``, ``DO UPDATE`` overwriting every column (last write wins).

    Guarantee: one row per session_id holding the latest version written. A replay re-writes
    versions the sessionizer re-computes from its restored state, ending with the same row; no
    duplicate row can appear. An invalid ``ip`` is stored NULL.
    """

    spec = TableSpec(
        sink="sessions", table="sessions", columns=_SESSION_COLUMNS, key=("session_id",),
        row=_attribute_row(_SESSION_COLUMNS, ip=safe_inet), update=_SESSION_COLUMNS[1:],
        erase=by_user("DELETE FROM rtep.sessions WHERE user_id = %s"),
    )  # fmt: skip


_ALERT_COLUMNS = columns(Alert)


class AlertsSink(PostgresSink):
    """Alerts → ``rtep.alerts``, ``DO UPDATE`` overwriting all but ``created_at``.

    Guarantee: one row per incident (deterministic alert_id); a continuing burst updates count and
    window; the first ``created_at`` is kept. Replays rewrite the same values: no duplicate row.
    """

    spec = TableSpec(
        sink="alerts", table="alerts", columns=_ALERT_COLUMNS, key=("alert_id",),
        row=_attribute_row(_ALERT_COLUMNS, details=json_text), update=_ALERT_COLUMNS[1:-1],
        erase=by_user("DELETE FROM rtep.alerts WHERE subject_type = 'user' AND subject = %s"),
    )  # fmt: skip


_ROLLUP_COLUMNS = columns(RollupRow)


class RollupSink(PostgresSink):
    """Per-minute counts → ``rtep.event_counts_minute``, ``DO UPDATE`` with the new totals.

    Guarantee: one row per (minute, type) holding the latest total computed. Totals are
    overwritten, never added, so a replay cannot double-count.
    """

    spec = TableSpec(
        sink="rollups", table="event_counts_minute", columns=_ROLLUP_COLUMNS,
        key=("minute", "type"), row=_attribute_row(_ROLLUP_COLUMNS),
        update=("events", "unique_users"),
    )  # fmt: skip
