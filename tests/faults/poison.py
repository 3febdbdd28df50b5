"""A corpus of hostile messages, each with the outcome the contract demands.

``reason`` is the rejection code (docs/semantics.md, "Rejection reasons"), or None when the message is a valid event
that must be stored verbatim (SQL and script injection strings, far-past timestamps, unknown
fields, huge integers...). Every value is unique, so a dead letter can be matched to its entry.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import orjson

TEN_MB = 10 * 1024 * 1024
_NS = uuid.UUID("6f1c1a52-3f0e-4a4e-9a55-6b0f5a1d2c3e")
INJECTIONS = (
    "'; DROP TABLE rtep.events; --",
    "Robert'); DELETE FROM rtep.sessions WHERE ('1'='1",
    "1 OR 1=1",
    "$$; SELECT pg_sleep(10); $$",
    "\\'; COPY rtep.events TO PROGRAM 'id'; --",
    "<script>alert(document.cookie)</script>",
    '"><img src=x onerror=alert(1)>',
    "{{7*7}}${7*7}<%= 7*7 %>",
    "../../../../etc/passwd",
    "\u202eexe.txt",
    "Ω≈ç√∫˜µ≤≥÷ 🙂 \u200b 中文 العربية",
    "rtep:user:*",
)


@dataclass(frozen=True, slots=True)
class Poison:
    """One hostile message: its name, Kafka key and value, and the expected outcome."""

    name: str
    value: bytes | None
    reason: str | None
    key: bytes | None = b"poison"

    @property
    def event_id(self) -> str | None:
        """The eventId a valid entry must be stored under (lower case)."""
        if self.reason is not None or self.value is None:
            return None
        return str(json.loads(self.value)["eventId"]).lower()


def _id(name: str) -> str:
    return str(uuid.uuid5(_NS, name))


def _event(name: str, kind: str = "page_view", **over: object) -> dict:
    payloads: dict[str, dict[str, object]] = {
        "login": {"ip": "10.9.9.9", "device": "Chrome on Linux"},
        "logout": {"ip": "10.9.9.9"},
        "page_view": {"page": "/poison", "device": "Chrome on Linux"},
        "button_click": {"buttonId": "b", "page": "/poison"},
        "form_submit": {"formId": "f", "fields": {"a": "b"}},
    }
    body: dict = {
        "eventId": _id(name),
        "type": kind,
        "timestamp": "2026-11-01T10:00:00Z",
        "payload": {"userId": f"poison-{name}", **payloads[kind]},
    }
    for path, value in over.items():
        target = body["payload"] if path.startswith("p_") else body
        target[path.removeprefix("p_")] = value
    return body


def _json(name: str, kind: str = "page_view", **over: object) -> bytes:
    return orjson.dumps(_event(name, kind, **over))


def _text(name: str, template: str) -> bytes:
    """Raw JSON text from a template with ``{id}`` and ``{user}`` (for what orjson won't write)."""
    return template.replace("{id}", _id(name)).replace("{user}", f"poison-{name}").encode()


_PAGE_VIEW = (
    '{"eventId":"{id}","type":"page_view","timestamp":"2026-11-01T10:00:00Z",'
    '"payload":{"userId":"{user}","page":"/p","device":"d"MORE}}'
)


def _page_view(name: str, more: str) -> bytes:
    return _text(name, _PAGE_VIEW.replace("MORE", more))


def _wrong_types() -> Iterator[Poison]:
    """A wrong JSON type in every field of every event type."""
    envelope: dict[str, object] = {
        "eventId": 12345,
        "type": ["page_view"],
        "timestamp": 1700000000,
        "payload": "x",
    }
    for field, value in envelope.items():
        name = f"wrong-{field}"
        yield Poison(name, orjson.dumps({**_event(name), field: value}), "wrong_type")
    per_type: dict[str, dict[str, object]] = {
        "login": {"userId": 7, "ip": 10, "device": None, "success": "true", "failureReason": 3},
        "logout": {"userId": True, "ip": [], "duration": "10"},
        "page_view": {"userId": {}, "page": 1.5, "referrer": 9, "device": False},
        "button_click": {"userId": 0, "buttonId": {}, "page": []},
        "form_submit": {"userId": [], "formId": 1, "fields": {"a": 1}},
    }
    for kind, fields in per_type.items():
        for field, value in fields.items():
            name = f"wrong-{kind}-{field}"
            yield Poison(name, _json(name, kind, **{f"p_{field}": value}), "wrong_type")
    yield Poison("wrong-fields-list", _json("wrong-fields-list", "form_submit", p_fields=["a"]),
                 "wrong_type")  # fmt: skip


def corpus() -> list[Poison]:
    """Every hostile message, invalid and valid, in a fixed order."""
    deep = 30_000
    items = [
        # --- bytes that are not (UTF-8) JSON
        Poison("invalid-utf8-start", b"\xff\xfe\xfd garbage", "invalid_utf8"),
        Poison(
            "invalid-utf8-in-string",
            _page_view("invalid-utf8-in-string", ',"x":"BAD"').replace(b"BAD", b"\xc3\x28"),
            "invalid_utf8",
        ),
        Poison(
            "overlong-utf8",
            _page_view("overlong-utf8", "").replace(b"/p", b"/\xc0\xaf"),
            "invalid_utf8",
        ),
        Poison("nul-raw", b"\x00", "invalid_json"),
        Poison(
            "nul-raw-in-string",
            _page_view("nul-raw-in-string", "").replace(b"/p", b"/\x00p"),
            "invalid_json",
        ),
        Poison("nul-escaped", _page_view("nul-escaped", ',"x":"a\\u0000b"'), "invalid_value"),
        Poison("nul-escaped-key", _page_view("nul-escaped-key", ',"\\u0000":1'), "invalid_value"),
        Poison("deep-array", b"[" * deep + b"]" * deep, "invalid_json"),
        Poison("deep-object", b'{"a":' * 5000 + b"1" + b"}" * 5000, "invalid_json"),
        Poison("ten-mb", b'{"pad":"' + b"x" * TEN_MB + b'"}', "too_large"),
        Poison("just-too-large", _json("just-too-large", p_pad="y" * 65_536), "too_large"),
        Poison("huge-float", _page_view("huge-float", ',"n":1e400'), "invalid_json"),
        Poison("nan", _page_view("nan", ',"n":NaN'), "invalid_json"),
        Poison("infinity", _page_view("infinity", ',"n":-Infinity'), "invalid_json"),
        Poison("not-json", b"this is not json {poison}", "invalid_json"),
        Poison("truncated", _json("truncated")[:-7], "invalid_json"),
        Poison("bom", b"\xef\xbb\xbf" + _json("bom"), "invalid_json"),
        Poison("trailing-garbage", _json("trailing-garbage") + b" {}", "invalid_json"),
        Poison("whitespace", b" \t\r\n ", "invalid_json"),
        # --- JSON that is not an event
        Poison("json-null", b"null", "not_an_object"),
        Poison("json-array", b'[{"type":"page_view"}]', "not_an_object"),
        Poison("json-string", b'"page_view"', "not_an_object"),
        Poison("json-number", b"42", "not_an_object"),
        Poison("empty-object", b"{}", "missing_field"),
        Poison(
            "no-payload",
            orjson.dumps({k: v for k, v in _event("no-payload").items() if k != "payload"}),
            "missing_field",
        ),
        Poison("no-user", _json("no-user", p_userId=None), "wrong_type"),
        Poison("empty-user", _json("empty-user", p_userId=""), "empty_user_id"),
        # --- unknown types, duplicate keys
        Poison("type-unknown", _json("type-unknown", type="purchase"), "unknown_type"),
        Poison("type-empty", _json("type-empty", type=""), "unknown_type"),
        Poison("type-case", _json("type-case", type="LOGIN"), "unknown_type"),
        Poison(
            "type-injection",
            _json("type-injection", type="login'; DROP TABLE x;--"),
            "unknown_type",
        ),
        Poison(
            "dup-key-type",
            _text(
                "dup-key-type",
                _PAGE_VIEW.replace("MORE", "").replace(
                    '"type":"page_view"', '"type":"page_view","type":"teleport"'
                ),
            ),
            "unknown_type",
        ),
        # --- ids and timestamps
        Poison("id-short", _json("id-short", eventId="123"), "invalid_event_id"),
        Poison(
            "id-words",
            _json("id-words", eventId="not-a-uuid-at-all-no-no-no-no-no-no"),
            "invalid_event_id",
        ),
        Poison(
            "id-no-dashes",
            _json("id-no-dashes", eventId=_id("x").replace("-", "")),
            "invalid_event_id",
        ),
        Poison("id-braces", _json("id-braces", eventId="{" + _id("y") + "}"), "invalid_event_id"),
        Poison("id-sql", _json("id-sql", eventId="' OR '1'='1"), "invalid_event_id"),
        Poison("id-empty", _json("id-empty", eventId=""), "invalid_event_id"),
        Poison(
            "ts-no-zone", _json("ts-no-zone", timestamp="2026-11-01T10:00:00"), "invalid_timestamp"
        ),
        Poison("ts-garbage", _json("ts-garbage", timestamp="yesterday"), "invalid_timestamp"),
        Poison("ts-empty", _json("ts-empty", timestamp=""), "invalid_timestamp"),
        Poison(
            "ts-month-13",
            _json("ts-month-13", timestamp="2026-13-01T00:00:00Z"),
            "invalid_timestamp",
        ),
        Poison(
            "ts-year-10000",
            _json("ts-year-10000", timestamp="+10000-01-01T00:00:00Z"),
            "invalid_timestamp",
        ),
        Poison(
            "ts-before-utc-min",
            _json("ts-before-utc-min", timestamp="0001-01-01T00:00:00+05:00"),
            "invalid_timestamp",
        ),
        Poison(
            "ts-far-future",
            _json("ts-far-future", timestamp="2999-01-01T00:00:00Z"),
            "future_timestamp",
        ),
        Poison(
            "ts-max", _json("ts-max", timestamp="9999-12-31T23:59:59.999999Z"), "future_timestamp"
        ),
        Poison(
            "negative-duration",
            _json("negative-duration", "logout", p_duration=-5),
            "invalid_value",
        ),
        # --- empty messages
        Poison("empty", b"", "empty_message"),
        Poison("tombstone", None, "empty_message", key=b"poison-tombstone"),
        Poison("tombstone-no-key", None, "empty_message", key=None),
        # --- valid events with hostile content: stored verbatim, harmlessly
        Poison("far-past", _json("far-past", timestamp="0001-01-01T00:00:00Z"), None),
        Poison("epoch", _json("epoch", timestamp="1970-01-01T00:00:00Z"), None),
        Poison("id-upper", _json("id-upper", eventId=_id("id-upper").upper()), None),
        Poison(
            "dup-key-id",
            _text(
                "dup-key-id",
                _PAGE_VIEW.replace("MORE", "").replace(
                    '"eventId":"{id}"', f'"eventId":"{_id("dup-key-first")}","eventId":"{{id}}"'
                ),
            ),
            None,
        ),
        Poison("huge-int", _page_view("huge-int", ',"n":' + "9" * 400), None),
        Poison("deep-but-fine", _page_view("deep-but-fine", ',"n":' + "[" * 64 + "]" * 64), None),
        Poison(
            "unknown-fields",
            _json("unknown-fields", __proto__={"admin": True}, p_constructor={"prototype": 1}),
            None,
        ),
        Poison("bad-ip", _json("bad-ip", "login", p_ip="999.1.1.1; DROP TABLE x"), None),
        Poison(
            "literal-backslash-u0000",
            _page_view("literal-backslash-u0000", ',"x":"C:\\\\u0000"'),
            None,
        ),
        *_wrong_types(),
    ]
    for i, text in enumerate(INJECTIONS):
        for field in ("userId", "page", "device"):
            name = f"inject-{i}-{field}"
            value = text if field != "userId" else f"{text} #{i}"
            items.append(Poison(name, _json(name, **{f"p_{field}": value}), None))
        name = f"inject-{i}-form"
        items.append(Poison(name, _json(name, "form_submit", p_fields={text: text}), None))
    return items
