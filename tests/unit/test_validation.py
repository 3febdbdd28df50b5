"""Validation: never raises, never accepts what the schema forbids, names the right reason."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from operators.records import Event, Reason, Rejection, Source
from operators.schemas import BOUNDED_FIELDS, EVENT_TYPES, LIMIT_SETTINGS, WIRE_EVENT, FieldLimits
from operators.validation import Limits, validate_message

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
SOURCE = Source("activity.events", 3, 42)
LIMITS = Limits(fields=FieldLimits())

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


SMALL = FieldLimits(
    user_id=8, identifier=6, url=10, device=12, ip=45, text=7, form_field_name=5, form_field_value=9
)
SMALL_LIMITS = Limits(fields=SMALL)
BOUNDED: dict[str, list[str]] = {
    "login": ["userId", "ip", "device", "failureReason"],
    "logout": ["userId", "ip"],
    "page_view": ["userId", "page", "referrer", "device"],
    "button_click": ["userId", "buttonId", "page"],
    "form_submit": ["userId", "formId"],
}


def small_event(kind: str) -> dict[str, Any]:
    """A valid event of ``kind`` whose bounded fields all fit ``SMALL``."""
    payload = {**REQUIRED[kind], **dict.fromkeys(BOUNDED[kind], "x")}
    if kind == "form_submit":
        payload["fields"] = {"a": "b"}
    return {"eventId": str(uuid.uuid4()), "type": kind, "timestamp": NOW.isoformat(),
            "payload": payload}  # fmt: skip


@given(st.sampled_from(EVENT_TYPES), st.data(), st.integers(min_value=0, max_value=3))
def test_a_bounded_field_over_its_limit_is_too_long_naming_field_and_setting(
    kind: str, data: st.DataObject, over: int
) -> None:
    """Every bounded field: at its limit it is accepted, one character more is too_long, and
    the detail names the field, the limit and the setting that raises it."""
    name = data.draw(st.sampled_from(BOUNDED[kind]))
    limit = getattr(SMALL, BOUNDED_FIELDS[name])
    char = data.draw(st.sampled_from(["a", "漢", "\U0001f600", "*", "\r"]))
    event = small_event(kind)
    event["payload"][name] = char * limit
    accepted = validate_message(dumps(event), SOURCE, NOW, NOW, SMALL_LIMITS)
    assert isinstance(accepted, Event), accepted
    event["payload"][name] = char * (limit + 1 + over)
    result = validate_message(dumps(event), SOURCE, NOW, NOW, SMALL_LIMITS)
    assert isinstance(result, Rejection) and result.reason is Reason.TOO_LONG
    assert f"payload.{name} is {limit + 1 + over} characters" in result.detail
    assert f"the limit is {limit} ({LIMIT_SETTINGS[BOUNDED_FIELDS[name]]})" in result.detail


@given(st.text(min_size=1, max_size=8), st.text(min_size=0, max_size=12))
def test_form_field_names_and_values_are_bounded(name: str, value: str) -> None:
    """A form field name beyond 5 or a value beyond 9 characters is too_long; else accepted."""
    event = small_event("form_submit")
    event["payload"]["fields"] = {name: value}
    result = validate_message(dumps(event), SOURCE, NOW, NOW, SMALL_LIMITS)
    if "\x00" in name + value:
        assert isinstance(result, Rejection)
    elif len(name) > 5 or len(value) > 9:
        assert isinstance(result, Rejection) and result.reason is Reason.TOO_LONG
        setting = "NAME" if len(name) > 5 else "VALUE"
        assert f"RTEP_MAX_FORM_FIELD_{setting}_CHARS" in result.detail
    else:
        assert isinstance(result, Event)


@settings(max_examples=200)
@given(json_values, st.sampled_from(EVENT_TYPES))
def test_nothing_accepted_exceeds_a_limit(value: Any, kind: str) -> None:
    """Arbitrary payload values: whatever is accepted has every bounded field within its limit."""
    event = small_event(kind)
    for name in BOUNDED[kind]:
        event["payload"][name] = value if isinstance(value, str) else event["payload"][name]
    result = validate_message(dumps(event), SOURCE, NOW, NOW, SMALL_LIMITS)
    if isinstance(result, Event):
        for name in BOUNDED[kind]:
            field_value = result.payload.get(name)
            assert field_value is None or len(field_value) <= getattr(SMALL, BOUNDED_FIELDS[name])


def test_the_hostile_user_ids_of_issue_16_are_too_long_with_the_defaults() -> None:
    """A 2,700-character base64 userId and a 1,000-character CJK one (which PostgreSQL's btree
    indexes refused, stopping all ingestion) are rejected by the default limits."""
    for user in ("Qm9i" * 675, "漢" * 1000):
        event = small_event("login")
        event["payload"]["userId"] = user
        result = validate_message(dumps(event), SOURCE, NOW, NOW, Limits(fields=FieldLimits()))
        assert isinstance(result, Rejection) and result.reason is Reason.TOO_LONG
        assert "RTEP_MAX_USER_ID_CHARS" in result.detail
