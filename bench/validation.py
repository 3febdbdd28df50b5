"""Throughput of the pure validation function vs a raw ``orjson.loads`` baseline, single core.

Run: ``python -m bench.validation [--events N]``. Messages are simulator-like events (valid, with
a 2% share of malformed ones), processed in batches of 1,000 as the dataflow does.
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import orjson

from operators.records import Source
from operators.validation import Limits, validate_message

_TYPES = ("login", "page_view", "page_view", "button_click", "form_submit", "logout")
_DEVICES = ("Chrome on macOS", "Safari on iOS")


def make_messages(count: int, start: int = 0, users: int = 5000) -> list[bytes]:
    """Deterministic, realistic event messages ``start .. start+count-1`` (2% malformed)."""
    base = datetime(2026, 1, 1, tzinfo=UTC)
    out = []
    for i in range(start, start + count):
        raw = event_message(i, users, base + timedelta(milliseconds=i))
        out.append(raw[:-3] if i % 50 == 0 else raw)
    return out


def event_message(i: int, users: int, ts: datetime) -> bytes:
    """The ``i``-th valid event (eventId from ``i``, user ``i % users``) at time ``ts``."""
    kind = _TYPES[i % len(_TYPES)]
    user = i % users
    device = _DEVICES[user % len(_DEVICES)]  # a user's one device: no session_device_change
    payload: dict[str, object] = {"userId": f"user-{user}", "ip": "10.1.2.3"}
    extra: dict[str, dict[str, object]] = {
        "login": {"device": device, "success": i % 7 != 0},
        "page_view": {"page": f"/p/{i % 40}", "referrer": "/home", "device": device},
        "button_click": {"buttonId": "buy", "page": "/cart"},
        "form_submit": {"formId": "signup", "fields": {"email": "a@b.c", "plan": "pro"}},
        "logout": {"duration": 123.5},
    }
    payload |= extra[kind]
    event = {
        "eventId": str(uuid.UUID(int=i + 1, version=4)),
        "type": kind,
        "timestamp": ts.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "payload": payload,
    }
    return orjson.dumps(event)


def raw_parse(message: bytes) -> object:
    """The raw baseline: parse JSON and nothing else (what any consumer must do at least)."""
    try:
        return orjson.loads(message)
    except orjson.JSONDecodeError:
        return None


def _rate(messages: list[bytes], step: Callable[[bytes], object], batch: int = 1000) -> float:
    start = time.perf_counter()
    for i in range(0, len(messages), batch):
        results = [step(m) for m in messages[i : i + batch]]
        del results
    return len(messages) / (time.perf_counter() - start)


def main() -> None:
    """Measure, print a JSON line and a one-line summary."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    messages = make_messages(args.events)
    source, now, limits = Source("bench", 0, 0), datetime.now(UTC), Limits()
    gc.collect()
    gc.freeze()  # as the dataflow does at start-up: long-lived objects out of GC scans
    baseline = [_rate(messages, raw_parse) for _ in range(args.repeats)]
    rtep = [
        _rate(messages, lambda m: validate_message(m, source, now, now, limits))
        for _ in range(args.repeats)
    ]
    result = {
        "bench": "validation",
        "events": args.events,
        "raw_orjson_events_per_s": round(statistics.median(baseline)),
        "validate_events_per_s": round(statistics.median(rtep)),
        "ratio_vs_raw": round(statistics.median(rtep) / statistics.median(baseline), 3),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
