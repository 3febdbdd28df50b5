"""A user's erasure (GDPR), ordered with their events: ``Erase`` travels the flow like an event.

``python -m rtep.commands.erase --user ID`` produces an erase request into the events topic with the
user's key (header ``rtep.erase``), so it sits in the user's partition after every event of
theirs already sent. The validate step turns it into an ``Erase`` in the user's shard (and in
the rejected stream); every stateful step forgets the user when it reaches it (``forget``) and
passes it on; every sink deletes the user's rows and keys in the order of its own queue, so a
write queued before the erase cannot land after it. A crash replay re-reads the request after
the events it follows, so whatever a replay writes again is erased again.

``Erase`` is an ``Event`` (type ``"erase"``) so that it follows the events' routing with no
change to the wiring; what is not an erasure-aware step never sees it as an event (the adapter
of the stateful steps takes it out of their batches, the Kafka sinks skip it).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from operators.records import Event, Reason, Rejection, Source

ERASE_HEADER = "rtep.erase"
"""Header of an erase request on the events topic; its value is the userId (UTF-8)."""


@dataclass(slots=True)
class Erase(Event):
    """Forget ``user_id`` from here on. ``session_ids``: the sessions the sessionizer dropped
    (the Redis sink removes them from ``sessions:active``)."""

    session_ids: list[str] = field(default_factory=list)

    @classmethod
    def of(cls, user_id: str, request_id: str, now: datetime) -> Erase:
        """The erasure of ``user_id`` requested by the message ``request_id``."""
        return cls(request_id, "erase", now, user_id, {}, now)


@dataclass(frozen=True, slots=True)
class EraseDeadLetters(Rejection):
    """The same erasure on the rejected stream: ``rtep.rejected_events`` forgets the rows that
    carry ``user_id`` (a Rejection, so it takes the rejections' routing; never a dead letter)."""

    user_id: str = ""

    @classmethod
    def of(cls, erase: Erase) -> EraseDeadLetters:
        """The rejected-stream twin of ``erase``."""
        return cls(Reason.EMPTY_MESSAGE, "erase", b"", Source("", -1, -1), erase.ts, None,
                   erase.user_id)  # fmt: skip


ERASURES = (Erase, EraseDeadLetters)


def erase_request(headers: Any) -> str | None:
    """The userId an events-topic message asks to erase (None: not an erase request)."""
    for name, value in headers or ():
        if name == ERASE_HEADER and value:
            return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
    return None


_ERASURE_TYPES = frozenset(ERASURES)


def has_erasure(items: list[Any]) -> bool:
    """True when ``items`` holds an erasure: one C-level scan of the types (about 20 ns an item;
    the steps run it once per batch, so the common case, no erasure, stays cheap)."""
    return not _ERASURE_TYPES.isdisjoint(map(type, items))


def split_at_erasures(
    items: list[Any],
) -> Iterator[tuple[list[Any], Erase | EraseDeadLetters | None]]:
    """``items`` as runs ending at each erasure: (the items before it, the erasure), then the
    rest with None."""
    run: list[Any] = []
    for item in items:
        if type(item) in ERASURES:
            yield run, item
            run = []
        else:
            run.append(item)
    if run:
        yield run, None
