"""The contract's PostgreSQL tables: for each, the ``TableSpec`` its sink writes with.

A spec names the table, its natural key and conflict rule, builds a row from a record (columns
from ``operators.records``, never spelt here) and carries the statement erasing a user's rows:
the sinks run it on an ``Erase`` and ``rtep erase`` runs the same one (each statement exists once).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from operator import attrgetter
from typing import Any

import orjson

from operators.records import (
    REJECTION_COLUMNS,
    Alert,
    Event,
    Rejection,
    RollupRow,
    Session,
    columns,
)
from rtep.core.metrics import EVENT_LATENCY, observe_ages
from sinks.codec import json_text, safe_inet
from sinks.pg_spec import Erasure, R, Row, TableSpec

# --- erasure ----------------------------------------------------------------------------------


def by_user(statement: str) -> Erasure:
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


# --- rejected events --------------------------------------------------------------------------


def rejected_row(rejection: Rejection) -> Row:
    """A Rejection as an ``rtep.rejected_events`` row (raw bytes unchanged, as bytea)."""
    src, replay = rejection.source, rejection.replay
    return (
        rejection.received_at, str(rejection.reason), rejection.detail.replace("\x00", "\ufffd"),
        rejection.raw, src.topic, src.partition, src.offset,
        replay.of if replay else None, replay.attempt if replay else None,
    )  # fmt: skip


REJECTED = TableSpec(
    sink="rejected", table="rejected_events",
    columns=REJECTION_COLUMNS,
    key=("source_topic", "source_partition", "source_offset"), row=rejected_row,
    erase=lambda user_id: (ERASE_REJECTED, carrying_user_id(user_id)),
)  # fmt: skip


# --- sessions, alerts, rollups (aggregates: overwrite) ----------------------------------------


def attribute_row(record: type[R], **convert: Callable[[Any], Any]) -> Callable[[R], Row]:
    """A row builder reading ``record``'s fields (its columns) as attributes, converting the
    named ones: one ``attrgetter`` call per row, in C."""
    names = columns(record)
    get = attrgetter(*names)
    converters = [(names.index(name), fn) for name, fn in convert.items()]

    def row(item: R) -> Row:
        values = list(get(item))
        for i, fn in converters:
            values[i] = fn(values[i])
        return tuple(values)

    return row


_SESSION_COLUMNS = columns(Session)
SESSIONS = TableSpec(
    sink="sessions", table="sessions", columns=_SESSION_COLUMNS, key=("session_id",),
    row=attribute_row(Session, ip=safe_inet), update=_SESSION_COLUMNS[1:],
    erase=by_user("DELETE FROM rtep.sessions WHERE user_id = %s"),
)  # fmt: skip

_ALERT_COLUMNS = columns(Alert)
ALERTS = TableSpec(
    sink="alerts", table="alerts", columns=_ALERT_COLUMNS, key=("alert_id",),
    row=attribute_row(Alert, details=json_text), update=_ALERT_COLUMNS[1:-1],
    erase=by_user("DELETE FROM rtep.alerts WHERE subject_type = 'user' AND subject = %s"),
)  # fmt: skip

ROLLUPS = TableSpec(
    sink="rollups", table="event_counts_minute", columns=columns(RollupRow),
    key=("minute", "type"), row=attribute_row(RollupRow), update=("events", "unique_users"),
)  # fmt: skip
