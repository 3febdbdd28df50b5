"""Build test events directly (no parsing): a fixed base time, deterministic UUIDs, UTC stamps."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from itertools import count
from typing import Any

from operators.records import Event

BASE = datetime(2026, 1, 1, tzinfo=UTC)
"""Event time zero of every test."""
NOW = datetime(2030, 1, 1, tzinfo=UTC)
"""A fixed wall clock later than every test event: watermarks then follow event time only."""

_ids = count()


def event_id() -> str:
    """A fresh, deterministic UUID string (never of the form tests spell by hand: 0000...-n)."""
    return str(uuid.UUID(int=(0xFACE << 112) | next(_ids)))


def at(seconds: float) -> datetime:
    """Event time ``seconds`` after BASE."""
    return BASE + timedelta(seconds=seconds)


def make_event(
    type_: str = "page_view",
    *,
    t: float = 0.0,
    user: str = "u1",
    ip: str | None = "10.0.0.1",
    device: str | None = "Mozilla/5.0",
    page: str | None = None,
    success: bool | None = None,
    eid: str | None = None,
) -> Event:
    """An Event of ``type_`` at ``at(t)``; payload mirrors the contract's fields."""
    payload: dict[str, Any] = {"userId": user}
    if type_ == "page_view":
        page = page if page is not None else "/home"
    if page is not None:
        payload["page"] = page
    if success is not None:
        payload["success"] = success
    return Event(
        event_id=eid or event_id(),
        type=type_,
        ts=at(t),
        user_id=user,
        payload=payload,
        received_at=at(t),
        ip=ip,
        device=device,
        page=page,
    )


def failed_login(
    t: float, user: str = "u1", ip: str = "10.0.0.1", device: str = "d1", eid: str | None = None
) -> Event:
    """A login with ``success: false``."""
    return make_event("login", t=t, user=user, ip=ip, device=device, success=False, eid=eid)


def login(t: float, user: str = "u1", ip: str = "10.0.0.1", device: str = "d1") -> Event:
    """A successful login."""
    return make_event("login", t=t, user=user, ip=ip, device=device, success=True)


class FakeMessage:
    """The parts of a ``confluent_kafka.Message`` that the validate step reads."""

    def __init__(
        self,
        value: bytes,
        partition: int,
        offset: int,
        headers: list[tuple[str, bytes]] | None = None,
    ) -> None:
        self._value, self._partition, self._offset = value, partition, offset
        self._headers = headers

    def value(self) -> bytes:
        return self._value

    def topic(self) -> str:
        return "events"

    def partition(self) -> int:
        return self._partition

    def offset(self) -> int:
        return self._offset

    def headers(self) -> list[tuple[str, bytes]] | None:
        return self._headers
