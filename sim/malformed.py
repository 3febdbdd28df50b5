"""Malformed messages, one builder per rejection reason of the contract.

Each builder corrupts a fresh, otherwise valid event in the way real producers go wrong (a
truncated write, a wrong encoding, a renamed field, a client clock far ahead, ...). The
reason codes are the contract's; ``tests/unit/test_sim_generator.py`` checks every one
against the pipeline's validator.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

from sim.events import dumps, iso

REASONS: tuple[str, ...] = (
    "invalid_utf8", "invalid_json", "not_an_object", "missing_field", "wrong_type",
    "unknown_type", "invalid_event_id", "invalid_timestamp", "future_timestamp",
    "empty_user_id", "invalid_value", "too_large", "empty_message",
)  # fmt: skip
MAX_EVENT_BYTES = 65536  # RTEP_MAX_EVENT_BYTES default
MAX_FUTURE_SKEW = 300.0  # RTEP_MAX_FUTURE_SKEW_SECONDS default

Wire = dict[str, Any]
REQUIRED: dict[str, tuple[str, ...]] = {
    "login": ("userId", "ip", "device"),
    "logout": ("userId", "ip"),
    "page_view": ("userId", "page", "device"),
    "button_click": ("userId", "buttonId", "page"),
    "form_submit": ("userId", "formId", "fields"),
}


def corrupt(reason: str, rng: random.Random, event: Wire, end: float) -> bytes:
    """``event`` (a valid envelope, ASCII only) broken so that it is rejected for ``reason``.

    ``end`` is the end of the simulated timeline: future timestamps lie well past it.
    """
    return _BUILDERS[reason](rng, event, end)


def _invalid_utf8(rng: random.Random, event: Wire, end: float) -> bytes:
    raw = dumps(event)
    at = raw.index(b'"userId":"') + len(b'"userId":"')
    bad = rng.choice((b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\xe9t\xe9"))  # latin-1 "été"
    return raw[:at] + bad + raw[at:]


def _invalid_json(rng: random.Random, event: Wire, end: float) -> bytes:
    raw = dumps(event)
    variant = rng.randrange(4)
    if variant == 0:  # truncated write
        return raw[: rng.randrange(1, len(raw) - 1)]
    if variant == 1:  # two events glued together
        return raw + raw
    if variant == 2:  # Python repr instead of JSON
        return repr(event).encode()
    return raw[:-1] + b",}"  # trailing comma


def _not_an_object(rng: random.Random, event: Wire, end: float) -> bytes:
    return dumps(rng.choice(([event], event["eventId"], 42, None, True, [])))


def _missing_field(rng: random.Random, event: Wire, end: float) -> bytes:
    if rng.random() < 0.5:
        del event[rng.choice(("eventId", "type", "timestamp", "payload"))]
    else:
        del event["payload"][rng.choice(REQUIRED[event["type"]])]
    return dumps(event)


def _wrong_type(rng: random.Random, event: Wire, end: float) -> bytes:
    payload = event["payload"]
    choice = rng.randrange(5)
    if choice == 0:
        event["timestamp"] = int(rng.uniform(end - 3600, end))  # epoch number, not a string
    elif choice == 1:
        payload["userId"] = rng.randrange(1, 10**6)
    elif choice == 2:
        event["payload"] = [payload]
    elif choice == 3:
        event["type"] = rng.choice((1, ["login"], True))
    else:
        event["eventId"] = rng.getrandbits(64)
    return dumps(event)


def _unknown_type(rng: random.Random, event: Wire, end: float) -> bytes:
    event["type"] = rng.choice(("purchase", "signup", "Login", "page-view", "pageview", ""))
    return dumps(event)


def _invalid_event_id(rng: random.Random, event: Wire, end: float) -> bytes:
    eid = event["eventId"]
    event["eventId"] = rng.choice(
        (eid.replace("-", ""), "{" + eid + "}", eid[:-1], str(rng.randrange(10**9)), "n/a")
    )
    return dumps(event)


def _invalid_timestamp(rng: random.Random, event: Wire, end: float) -> bytes:
    stamp = event["timestamp"]
    event["timestamp"] = rng.choice(
        (
            stamp[:-1],
            "yesterday",
            "2026-13-45T25:61:00Z",
            str(int(end)),
            "",
            stamp.replace("T", "  "),
        )
    )
    return dumps(event)


def _future_timestamp(rng: random.Random, event: Wire, end: float) -> bytes:
    event["timestamp"] = iso(end + rng.uniform(3600, 30 * 86400))  # a client clock days ahead
    return dumps(event)


def _empty_user_id(rng: random.Random, event: Wire, end: float) -> bytes:
    event["payload"]["userId"] = ""
    return dumps(event)


def _invalid_value(rng: random.Random, event: Wire, end: float) -> bytes:
    if rng.random() < 0.5:  # a negative session length
        event["type"] = "logout"
        payload = event["payload"]
        event["payload"] = {"userId": payload["userId"], "ip": "24.1.2.3",
                            "duration": -round(rng.uniform(1, 900), 3)}  # fmt: skip
    else:  # a NUL character: valid JSON, not storable in PostgreSQL text
        event["payload"]["userId"] += "\u0000"
    return dumps(event)


def _too_large(rng: random.Random, event: Wire, end: float) -> bytes:
    target = MAX_EVENT_BYTES + rng.randrange(1, 40_000)
    event["payload"]["notes"] = ""
    padding = target - len(dumps(event))
    event["payload"]["notes"] = ("lorem ipsum " * (padding // 12 + 1))[:padding]
    return dumps(event)


def _empty_message(rng: random.Random, event: Wire, end: float) -> bytes:
    return b""


_BUILDERS: dict[str, Callable[[random.Random, Wire, float], bytes]] = {
    "invalid_utf8": _invalid_utf8,
    "invalid_json": _invalid_json,
    "not_an_object": _not_an_object,
    "missing_field": _missing_field,
    "wrong_type": _wrong_type,
    "unknown_type": _unknown_type,
    "invalid_event_id": _invalid_event_id,
    "invalid_timestamp": _invalid_timestamp,
    "future_timestamp": _future_timestamp,
    "empty_user_id": _empty_user_id,
    "invalid_value": _invalid_value,
    "too_large": _too_large,
    "empty_message": _empty_message,
}
