"""A record, the columns its sink writes and its SQL table agree (a field added to one and not the
others fails here, naming the mismatch)."""

from __future__ import annotations

import dataclasses

import psycopg
import pytest

from operators.records import Alert, Event, RollupRow, Session
from sinks.codec import ALERT_FIELDS
from sinks.postgres import AlertsSink, EventsSink, RejectedSink, RollupSink, SessionsSink

SINKS = (EventsSink, RejectedSink, SessionsSink, AlertsSink, RollupSink)
RECORDS = {EventsSink: Event, SessionsSink: Session, AlertsSink: Alert, RollupSink: RollupRow}
"""Sinks whose rows are a record's fields, one column each, in order."""
DATABASE_OWNED = {
    "events": {"stored_at"},  # set by PostgreSQL when the row is written
    "rejected_events": {"id", "replayed_at", "replay_count"},  # identity; set by rtep.commands.dlq_replay
    "sessions": set(),
    "alerts": set(),
    "event_counts_minute": set(),
}
"""Columns of each table that no sink writes: filled by PostgreSQL or another command."""


def table_columns(dsn: str, table: str) -> set[str]:
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            "SELECT column_name FROM information_schema.columns"
            " WHERE table_schema = 'rtep' AND table_name = %s",
            (table,),
        ).fetchall()
    return {row[0] for row in rows}


@pytest.mark.parametrize("sink", SINKS, ids=lambda sink: sink.__name__)
def test_a_sink_writes_every_column_of_its_table_and_no_other(database: str, sink: type) -> None:
    spec = sink.spec
    sql = table_columns(database, spec.table)
    written = set(spec.columns)
    assert written <= sql, (
        f"{sink.__name__} writes columns rtep.{spec.table} lacks: {written - sql}"
    )
    owned = DATABASE_OWNED[spec.table]
    assert owned <= sql, f"rtep.{spec.table} no longer has {owned - sql}: update DATABASE_OWNED"
    unwritten = sql - written - owned
    assert not unwritten, f"rtep.{spec.table} has columns {sink.__name__} never writes: {unwritten}"


@pytest.mark.parametrize("sink", list(RECORDS), ids=lambda sink: sink.__name__)
def test_a_record_is_its_sinks_columns(sink: type) -> None:
    fields = tuple(f.name for f in dataclasses.fields(RECORDS[sink]))
    assert fields == sink.spec.columns, (
        f"{RECORDS[sink].__name__} fields {fields} != {sink.__name__} columns {sink.spec.columns}"
    )


def test_an_alert_on_the_topic_has_the_alerts_table_fields() -> None:
    assert tuple(f.name for f in dataclasses.fields(Alert)) == ALERT_FIELDS
