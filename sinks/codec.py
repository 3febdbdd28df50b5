"""Encodings shared by the sinks: JSON text, safe ``inet`` values, the alert row as JSON.

Sinks reach records by attribute name: the fields ``operators.records`` declares, which are the
columns of the contract's tables.
"""

from __future__ import annotations

import ipaddress
import json
from datetime import datetime
from functools import lru_cache
from typing import Any

import orjson

from operators.records import Alert, columns

ALERT_FIELDS = columns(Alert)


def json_text(value: Any) -> str:
    """JSON text for a jsonb column; falls back to the stdlib for integers beyond 64 bits."""
    try:
        return orjson.dumps(value).decode()
    except TypeError:
        return json.dumps(value, default=str, ensure_ascii=False)


@lru_cache(maxsize=65536)
def safe_inet(value: str | None) -> str | None:
    """``value`` if PostgreSQL's ``inet`` accepts it for sure, else None (never fails a batch).

    Python's parser is the gate: stricter than PostgreSQL's except for IPv6 zone ids
    (``fe80::1%eth0``), which PostgreSQL refuses and are therefore refused here too.
    Cached: the same addresses recur for every event of a user.
    """
    if value is None or "%" in value:
        return None
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return None
    return value


def iso(value: datetime | None) -> str | None:
    """ISO-8601 text of an aware datetime (None stays None)."""
    return value.isoformat() if value is not None else None


def alert_document(alert: Alert) -> dict[str, Any]:
    """The alert as the contract's ``alerts`` row fields (alert_id first), JSON-ready."""
    doc = {name: getattr(alert, name) for name in ALERT_FIELDS}
    for name in ("window_start", "window_end", "created_at"):
        doc[name] = iso(doc[name])
    return doc


def alert_json(alert: Alert) -> bytes:
    """The alert row as compact JSON bytes (Kafka value, Redis list entry)."""
    return json_text(alert_document(alert)).encode()
