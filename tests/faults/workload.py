"""A seeded, fully known input stream for the fault scenarios: valid events, duplicates, malformed.

Every message carries its ground truth (valid, duplicate, or the reason it must be rejected), so a
scenario knows exactly what the stores must hold after any fault. Timestamps are event time from a
fixed base, in order, so two runs of the same workload see the same input in the same order.
Optional attack patterns (failed-login bursts followed by a success, credential stuffing, logins
from new devices) make the detection rules fire.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import orjson

BASE = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
STEP = timedelta(milliseconds=200)
PAGES = ("/home", "/search", "/cart", "/checkout", "/account", "/help")
DEVICES = ("Chrome on macOS", "Safari on iPhone", "Firefox on Windows", "Chrome on Android")
VALID = "valid"
DUPLICATE = "duplicate"


@dataclass(frozen=True, slots=True)
class Message:
    """One Kafka message with its ground truth: ``VALID``, ``DUPLICATE`` or a rejection reason."""

    key: bytes | None
    value: bytes | None
    truth: str
    event_id: str | None = None


@dataclass(frozen=True, slots=True)
class Workload:
    """The messages of a scenario, in production order, and what they must become."""

    messages: list[Message]

    @property
    def expected_ids(self) -> set[str]:
        """Every eventId that must be stored (once)."""
        return {m.event_id for m in self.messages if m.truth == VALID and m.event_id}

    @property
    def duplicates(self) -> int:
        """Messages that repeat an eventId already sent."""
        return sum(m.truth == DUPLICATE for m in self.messages)

    @property
    def rejections(self) -> int:
        """Messages that must be rejected (several may share the same bytes, e.g. tombstones)."""
        return sum(m.truth not in (VALID, DUPLICATE) for m in self.messages)

    @property
    def reasons(self) -> dict[bytes, str]:
        """Expected rejection reason by the bytes of each malformed message (equal bytes must
        share a reason)."""
        return {m.value or b"": m.truth for m in self.messages if m.truth not in (VALID, DUPLICATE)}


def _event(rng: random.Random, kind: str, user: str, ts: datetime, **extra: object) -> dict:
    payloads: dict[str, Callable[[], dict[str, object]]] = {
        "login": lambda: {"ip": f"10.1.{rng.randrange(4)}.{rng.randrange(250)}",
                          "device": rng.choice(DEVICES)},
        "logout": lambda: {"ip": "10.1.0.1", "duration": rng.randrange(3600)},
        "page_view": lambda: {"page": rng.choice(PAGES), "device": rng.choice(DEVICES)},
        "button_click": lambda: {"buttonId": f"b{rng.randrange(20)}", "page": rng.choice(PAGES)},
        "form_submit": lambda: {"formId": "signup", "fields": {"email": f"{user}@example.com"}},
    }  # fmt: skip
    return {
        "eventId": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        "type": kind,
        "timestamp": ts.isoformat().replace("+00:00", "Z"),
        "payload": {"userId": user, **payloads[kind](), **extra},
    }


def _malformed(rng: random.Random, i: int, ts: datetime) -> tuple[bytes, str]:
    """A message that must be rejected with a known reason; unique bytes (they carry ``i``)."""
    good = _event(rng, "page_view", f"m{i}", ts)
    reason = rng.choice(
        ("invalid_json", "not_an_object", "missing_field", "wrong_type", "unknown_type",
         "invalid_event_id", "invalid_timestamp", "future_timestamp", "empty_user_id")
    )  # fmt: skip
    if reason == "invalid_json":
        return b'{"eventId": "broken-%d", "type": ' % i, reason
    if reason == "not_an_object":
        return b'[%d, "page_view"]' % i, reason
    if reason == "missing_field":
        del good["payload"]["page"]
    elif reason == "wrong_type":
        good["payload"]["page"] = i
    elif reason == "unknown_type":
        good["type"] = f"teleport_{i}"
    elif reason == "invalid_event_id":
        good["eventId"] = f"event-{i}"
    elif reason == "invalid_timestamp":
        good["timestamp"] = f"the day after {i}"
    elif reason == "future_timestamp":
        good["timestamp"] = f"2999-01-01T00:00:{i % 60:02d}Z"
    else:
        good["payload"]["userId"] = ""
        good["payload"]["n"] = i
    return orjson.dumps(good), reason


def _attacks(rng: random.Random, start: datetime, index: int) -> list[tuple[datetime, dict]]:
    """One burst-then-success on a victim, and one credential-stuffing run from an IP."""
    victim, ip = f"victim{index}", f"203.0.113.{index % 250}"
    out = [
        (start + timedelta(seconds=2 * k),
         _event(rng, "login", victim, start, success=False, failureReason="bad_password"))
        for k in range(6)
    ]  # fmt: skip
    out.append((start + timedelta(seconds=15), _event(rng, "login", victim, start, device="curl")))
    for k in range(12):
        body = _event(rng, "login", f"stuffed{index}_{k}", start, success=False, ip=ip)
        out.append((start + timedelta(seconds=20 + 3 * k), body))
    for when, body in out:
        body["timestamp"] = when.isoformat().replace("+00:00", "Z")
    return out


def build_workload(
    n: int,
    *,
    seed: int,
    users: int = 300,
    malformed_share: float = 0.0,
    duplicate_share: float = 0.0,
    attacks: int = 0,
) -> Workload:
    """``n`` messages (attacks add a few more): normal traffic, malformed and duplicate messages.

    Deterministic for a seed. Events are in event-time order; a duplicate re-sends the exact bytes
    of an earlier valid message with the same key.
    """
    rng = random.Random(seed)
    timeline: list[tuple[datetime, dict]] = []
    for i in range(n):
        user = f"user{rng.randrange(users)}"
        kind = rng.choices(
            ("page_view", "button_click", "login", "logout", "form_submit"), (60, 20, 8, 6, 6)
        )[0]
        ts = BASE + i * STEP
        timeline.append((ts, _event(rng, kind, user, ts)))
    for a in range(attacks):
        timeline.extend(_attacks(rng, BASE + (n * STEP) * (a + 0.5) / attacks, a))
    timeline.sort(key=lambda pair: pair[0])

    messages: list[Message] = []
    valid: list[Message] = []
    for i, (ts, body) in enumerate(timeline):
        draw = rng.random()
        if draw < malformed_share:
            value, reason = _malformed(rng, i, ts)
            messages.append(Message(b"malformed", value, reason))
        elif draw < malformed_share + duplicate_share and valid:
            again = rng.choice(valid[-200:])
            messages.append(Message(again.key, again.value, DUPLICATE, again.event_id))
        else:
            key = str(body["payload"]["userId"]).encode()
            valid.append(Message(key, orjson.dumps(body), VALID, body["eventId"]))
            messages.append(valid[-1])
    return Workload(messages)
