"""Validation: never raises, never accepts what the schema forbids, names the right reason."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from operators.model import Event, Reason, Rejection, Source
from operators.schemas import EVENT_TYPES, WIRE_EVENT
from operators.validation import Limits, validate_message

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
SOURCE = Source("activity.events", 3, 42)
LIMITS = Limits()

text = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=20
)
json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | text
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(text, inner, max_size=4),
    max_leaves=12,
)

REQUIRED: dict[str, dict[str, Any]] = {
    "login": {"ip": "10.0.0.1", "device": "Chrome on macOS"},
    "logout": {"ip": "10.0.0.1"},
    "page_view": {"page": "/home", "device": "Safari on iOS"},
    "button_click": {"buttonId": "buy", "page": "/cart"},
    "form_submit": {"formId": "signup", "fields": {"email": "a@b.c"}},
}
OPTIONAL: dict[str, dict[str, st.SearchStrategy[Any]]] = {
    "login": {"success": st.booleans(), "failureReason": st.none() | text},
    "logout": {"duration": st.none() | st.floats(min_value=0, max_value=1e6)},
    "page_view": {"referrer": st.none() | text},
    "button_click": {},
    "form_submit": {},
}
STRING_FIELDS = {"ip", "device", "page", "buttonId", "formId"}


@st.composite
def valid_events(draw: st.DrawFn) -> dict[str, Any]:
    """Any valid event of any type, with optional and unknown fields."""
    kind = draw(st.sampled_from(EVENT_TYPES))
    payload: dict[str, Any] = {"userId": draw(text.filter(bool))}
    for name, default in REQUIRED[kind].items():
        payload[name] = draw(text) if name in STRING_FIELDS else default
    for name, strategy in OPTIONAL[kind].items():
        if draw(st.booleans()):
            payload[name] = draw(strategy)
    payload.update(draw(st.dictionaries(text.map(lambda s: "x_" + s), json_values, max_size=2)))
    offset = draw(st.integers(min_value=-(10**8), max_value=LIMITS.max_future_skew.seconds))
    zone = draw(st.sampled_from(["Z", "+00:00", "+05:30", "-08:00"]))
    ts = (NOW + timedelta(seconds=offset)).astimezone(UTC)
    stamp = ts.replace(tzinfo=None).isoformat() + "+00:00"
    if zone == "Z":
        stamp = stamp.replace("+00:00", "Z")
    return {
        "eventId": str(uuid.UUID(int=draw(st.integers(0, 2**128 - 1)))),
        "type": kind,
        "timestamp": stamp,
        "payload": payload,
    }


def dumps(value: Any) -> bytes:
    """JSON bytes (stdlib: integers of any size, as producers may send)."""
    return json.dumps(value).encode()


def check(raw: bytes | None) -> Event | Rejection:
    """Validate with the fixed clock and source."""
    return validate_message(raw, SOURCE, NOW, NOW, LIMITS)


def reason_of(obj: Any) -> Reason | None:
    """The rejection reason for a JSON-serialisable object, or None when accepted."""
    result = check(dumps(obj))
    return result.reason if isinstance(result, Rejection) else None


@given(st.binary(max_size=300))
def test_arbitrary_bytes_never_raise_and_keep_the_original(raw: bytes) -> None:
    result = check(raw)
    assert isinstance(result, Event | Rejection)
    if isinstance(result, Rejection):
        assert result.raw == raw
        assert result.reason in Reason
        assert result.detail


@given(json_values)
def test_arbitrary_json_never_raises_and_is_never_accepted_unless_schema_valid(value: Any) -> None:
    result = check(dumps(value))
    if isinstance(result, Event):
        WIRE_EVENT.validate_python(value)  # accepted ⇒ the schema accepts it too


@settings(max_examples=300)
@given(valid_events())
def test_every_valid_event_is_accepted_and_round_trips(event: dict[str, Any]) -> None:
    result = check(dumps(event))
    assert isinstance(result, Event), result
    assert result.event_id == event["eventId"]
    assert result.type == event["type"]
    assert result.user_id == event["payload"]["userId"]
    assert result.ts == datetime.fromisoformat(event["timestamp"])
    assert result.ts.tzinfo is UTC
    assert result.payload == event["payload"]


@given(valid_events(), st.data())
def test_removing_a_required_field_is_missing_field(
    event: dict[str, Any], data: st.DataObject
) -> None:
    required = [
        "eventId",
        "timestamp",
        "payload",
        *(f"payload.{k}" for k in REQUIRED[event["type"]]),
        "payload.userId",
    ]
    path = data.draw(st.sampled_from(required))
    target = event["payload"] if path.startswith("payload.") else event
    del target[path.removeprefix("payload.")]
    assert reason_of(event) is Reason.MISSING_FIELD


@given(valid_events(), st.data())
def test_a_wrong_type_in_any_field_is_wrong_type(
    event: dict[str, Any], data: st.DataObject
) -> None:
    fields = ["eventId", "timestamp", "payload", *(f"payload.{k}" for k in REQUIRED[event["type"]])]
    path = data.draw(st.sampled_from(fields))
    wrong = data.draw(st.sampled_from([123, 1.5, ["x"], True]))
    target = event["payload"] if path.startswith("payload.") else event
    target[path.removeprefix("payload.")] = wrong
    assert reason_of(event) is Reason.WRONG_TYPE


@given(valid_events(), text.filter(lambda t: t not in EVENT_TYPES))
def test_an_unknown_type_is_unknown_type(event: dict[str, Any], kind: str) -> None:
    event["type"] = kind
    assert reason_of(event) is Reason.UNKNOWN_TYPE


@given(
    valid_events(),
    st.sampled_from(["not-a-uuid", "", "1234", "zzzzzzzz-zzzz-zzzz-zzzz-zzzzzzzzzzzz"]),
)
def test_a_non_uuid_event_id_is_invalid_event_id(event: dict[str, Any], event_id: str) -> None:
    event["eventId"] = event_id
    assert reason_of(event) is Reason.INVALID_EVENT_ID


@given(
    valid_events(),
    st.sampled_from(["yesterday", "2026-13-01T00:00:00Z", "2026-06-01T12:00:00", "2026-06-01", ""]),
)
def test_an_unparseable_or_zoneless_timestamp_is_invalid_timestamp(
    event: dict[str, Any], stamp: str
) -> None:
    event["timestamp"] = stamp
    assert reason_of(event) is Reason.INVALID_TIMESTAMP


@given(valid_events(), st.integers(min_value=301, max_value=10**9))
def test_a_timestamp_beyond_the_skew_is_future_timestamp(event: dict[str, Any], ahead: int) -> None:
    event["timestamp"] = (NOW + timedelta(seconds=ahead)).isoformat()
    assert reason_of(event) is Reason.FUTURE_TIMESTAMP


@given(valid_events())
def test_an_empty_user_id_is_rejected(event: dict[str, Any]) -> None:
    event["payload"]["userId"] = ""
    assert reason_of(event) is Reason.EMPTY_USER_ID


@given(st.sampled_from([[], "x", 1, None, True]))
def test_a_non_object_is_not_an_object(value: Any) -> None:
    assert reason_of(value) is Reason.NOT_AN_OBJECT


def test_size_utf8_json_and_empty_reasons() -> None:
    big = {
        "eventId": str(uuid.uuid4()),
        "type": "login",
        "timestamp": NOW.isoformat(),
        "payload": {"userId": "u", "ip": "1", "device": "x" * 70000},
    }
    assert reason_of(big) is Reason.TOO_LARGE
    assert isinstance(r := check(b"\xff\xfe{}"), Rejection) and r.reason is Reason.INVALID_UTF8
    assert isinstance(r := check(b'{"a": '), Rejection) and r.reason is Reason.INVALID_JSON
    assert isinstance(r := check(b""), Rejection) and r.reason is Reason.EMPTY_MESSAGE
    assert isinstance(r := check(None), Rejection) and r.reason is Reason.EMPTY_MESSAGE


def test_nul_characters_are_rejected_because_postgres_cannot_store_them() -> None:
    event = {
        "eventId": str(uuid.uuid4()),
        "type": "login",
        "timestamp": NOW.isoformat(),
        "payload": {"userId": "a\x00b", "ip": "1", "device": "d"},
    }
    assert reason_of(event) is Reason.INVALID_VALUE


def test_unknown_top_level_fields_are_kept_in_the_payload() -> None:
    event = {
        "eventId": str(uuid.uuid4()),
        "type": "logout",
        "timestamp": NOW.isoformat(),
        "payload": {"userId": "u", "ip": "1", "extra": 1},
        "app": "ios",
    }
    result = check(dumps(event))
    assert isinstance(result, Event)
    assert result.payload["extra"] == 1
    assert result.payload["_envelope"] == {"app": "ios"}


@pytest.mark.parametrize("raw", [b"[" * 5000, b'{"a":' * 3000, b"1" * 5000, b'{"eventId": 1e999}'])
def test_hostile_shapes_are_rejected_not_raised(raw: bytes) -> None:
    assert isinstance(check(raw), Rejection)
