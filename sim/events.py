"""The simulator's in-memory event record and its wire encoding."""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson


@dataclass(slots=True)
class SimEvent:
    """One valid event before encoding. ``ts`` is epoch seconds; ``seq`` breaks timestamp ties."""

    ts: float
    seq: int
    user: str
    type: str
    payload: dict[str, Any]
    event_id: str
    attack: bool = False

    def wire(self) -> dict[str, Any]:
        """The contract's JSON envelope of this event."""
        return {
            "eventId": self.event_id,
            "type": self.type,
            "timestamp": iso(self.ts),
            "payload": self.payload,
        }

    def encode(self) -> bytes:
        """UTF-8 JSON bytes, as sent to Kafka."""
        return dumps(self.wire())

    @property
    def successful_login(self) -> bool:
        """A login that succeeded (``success`` absent or true)."""
        return self.type == "login" and self.payload.get("success", True) is not False


def dumps(obj: object) -> bytes:
    """Compact JSON bytes. Copied to an exact-size object: orjson's own result keeps a 4 KiB
    allocation, which for a million held messages is gigabytes."""
    return bytes(memoryview(orjson.dumps(obj)))


def iso(ts: float) -> str:
    """Epoch seconds → ISO-8601 UTC with milliseconds and a ``Z``."""
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def new_event_id(rng: random.Random) -> str:
    """A version-4 UUID drawn from ``rng`` (so a seed fixes every eventId)."""
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


class Sequencer:
    """Hands out increasing ``seq`` numbers (creation order) for stable ordering of ties."""

    def __init__(self) -> None:
        self.next = 0

    def __call__(self) -> int:
        """The next number."""
        self.next += 1
        return self.next
