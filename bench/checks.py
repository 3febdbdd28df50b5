"""The minimal checks shared by the raw baseline and the Quix Streams peer (stdlib + orjson only).

What any honest Kafka → PostgreSQL consumer must do at least: parse JSON, require an object with a
UUID ``eventId``, a known ``type``, a zoned ISO timestamp and a payload with a non-empty
``userId``; keep the payload as JSONB. No enrichment, no dead letters (rejects are counted only).
Kept free of rtep imports so it also runs in the peer's separate virtualenv.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import orjson

from sinks.codec import safe_inet

TYPES = frozenset({"login", "logout", "page_view", "button_click", "form_submit"})
COLUMNS = ("event_id", "type", "ts", "user_id", "ip", "device", "page", "payload", "received_at")


def check(raw: bytes | None, received_at: datetime) -> dict[str, Any] | None:
    """The ``rtep.events`` row of a message as a dict (None when the message is invalid)."""
    if raw is None:
        return None
    try:
        event = orjson.loads(raw)
        payload = event["payload"]
        user = payload["userId"]
        ts = datetime.fromisoformat(event["timestamp"])
        event_id = str(uuid.UUID(event["eventId"]))
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError):
        return None
    if ts.tzinfo is None or event["type"] not in TYPES or not isinstance(user, str) or not user:
        return None
    return {
        "event_id": event_id,
        "type": event["type"],
        "ts": ts,
        "user_id": user,
        "ip": _inet(payload.get("ip")),
        "device": payload.get("device"),
        "page": payload.get("page"),
        "payload": orjson.dumps(payload).decode(),
        "received_at": received_at,
    }


def _inet(value: object) -> str | None:
    """``value`` when PostgreSQL's ``inet`` accepts it, else None (the sinks' own rule)."""
    return safe_inet(value) if isinstance(value, str) else None
