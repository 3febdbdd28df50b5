"""How a record maps onto a table of schema ``rtep``, and the SQL its writer runs.

Every PostgreSQL sink writes the same way, configured by a ``TableSpec``: rows de-duplicated
within the batch by the table's natural key (the last one wins, since PostgreSQL refuses one
statement touching a key twice); binary ``COPY`` into a per-connection TEMP staging table
(``ON COMMIT DELETE ROWS``); then one ``INSERT … SELECT … ON CONFLICT`` into the table. Facts use
``DO NOTHING``; aggregates (sessions, alerts, rollups) use ``DO UPDATE`` overwriting with the new
values (last write wins, rows that would not change are skipped). The writer is
``sinks.pg_writer``; the specs of the contract's tables are in ``sinks.pg_tables``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any, Generic, NamedTuple, TypeVar

from psycopg import sql

from sinks.codec import json_text

R = TypeVar("R")
Row = tuple[Any, ...]
"""A table row: one value per column, in the spec's column order."""
Erasure = Callable[[str], tuple[str, tuple[Any, ...]]]
"""A user id → the statement deleting their rows from one table, and its parameters."""


@dataclass(frozen=True)
class TableSpec(Generic[R]):
    """How one record type ``R`` maps onto one table of schema ``rtep``.

    ``update`` None means ``ON CONFLICT DO NOTHING``; otherwise the columns overwritten with the
    new values on conflict. With ``returning`` (an SQL expression over the table's columns),
    ``after_commit`` gets its value for each row inserted or changed by this batch (not the
    replayed ones), in one array (a list), and the commit time (epoch s). ``erase``: how a
    user's rows are deleted (run by the sink on an ``Erase`` and by ``rtep erase``).
    """

    sink: str
    table: str
    columns: tuple[str, ...]
    key: tuple[str, ...]
    row: Callable[[R], Row]
    update: tuple[str, ...] | None = None
    returning: str | None = None
    after_commit: Callable[[list[Any], float], None] | None = None
    document: Callable[[Row], bytes] | None = None
    erase: Erasure | None = None
    _key_index: tuple[int, ...] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_key_index", tuple(self.columns.index(k) for k in self.key))

    def dedupe(self, items: Iterable[R]) -> list[Row]:
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
COLUMN_TYPES = """
SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute
WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped
"""
"""A table's column → type (``%s``: its qualified name), what ``TableSpec.statements`` takes."""


class Statements(NamedTuple):
    """What one writer executes for its table (built once per connection)."""

    ddl: sql.Composed
    copy: sql.Composed
    copy_types: list[str]
    insert: sql.Composed
