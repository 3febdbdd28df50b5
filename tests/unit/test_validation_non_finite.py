"""Non-finite numbers (NaN, Infinity, out of float range) are rejected wherever they are."""

from __future__ import annotations

import math
from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from operators.records import Event, Reason, Rejection, Source
from operators.validation import Limits, validate_message

NOW = datetime(2026, 1, 1, tzinfo=UTC)
PLACES = [
    '"payload":{{"userId":"u","buttonId":"b","page":"/","n":{x}}}',
    '"payload":{{"userId":"u","buttonId":"b","page":"/","n":[1,{{"m":[{x}]}}]}}',
    '"payload":{{"userId":"u","buttonId":"b","page":"/"}},"extra":{{"deep":[{x}]}}',
    '"payload":{{"userId":"u","buttonId":"b","page":"/"}},"extra":{x}',
]


def _message(number: str, place: str) -> bytes:
    return (
        '{"eventId":"7b97c7b0-fcd7-4c44-b3b1-7598fcc3ae36","type":"button_click",'
        '"timestamp":"2026-01-01T00:00:00Z",' + place.format(x=number) + "}"
    ).encode()


def _validate(raw: bytes) -> Event | Rejection:
    return validate_message(raw, Source("t", 0, 0), NOW, NOW, Limits())


@given(
    mantissa=st.integers(1, 9),
    exponent=st.integers(300, 99999),
    sign=st.sampled_from(["", "+", "-"]),
    e=st.sampled_from("eE"),
    place=st.sampled_from(PLACES),
)
def test_out_of_range_exponent_is_rejected(
    mantissa: int, exponent: int, sign: str, e: str, place: str
) -> None:
    """Scenario: a number whose exponent makes it infinite, anywhere. We expect: invalid_json."""
    number = f"{mantissa}.5{e}{sign}{exponent}"
    result = _validate(_message(number, place))
    if math.isinf(float(number)):  # from 1.8e308 on: 2.5e308 is infinite, 1.5e308 is not
        assert isinstance(result, Rejection) and result.reason == Reason.INVALID_JSON
    else:
        assert isinstance(result, Event)


@given(
    token=st.sampled_from(["NaN", "Infinity", "-Infinity", "1" * 320 + ".5"]),
    place=st.sampled_from(PLACES),
)
def test_non_finite_tokens_are_rejected(token: str, place: str) -> None:
    """Scenario: NaN, Infinity or 320 digits in a nested value. We expect: invalid_json."""
    result = _validate(_message(token, place))
    assert isinstance(result, Rejection) and result.reason == Reason.INVALID_JSON


def test_finite_floats_and_hex_in_strings_are_accepted() -> None:
    """Scenario: ordinary floats, and 'e' followed by digits inside strings. We expect: valid."""
    raw = _message('[1.5e3, -2.25, 0.0, "7be12345", {"x": 1e308}]', PLACES[0])
    assert isinstance(_validate(raw), Event)
