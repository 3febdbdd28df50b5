"""Validator edge cases found by the poison barrage (tests/faults/poison.py): each was misclassified."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest

from operators.records import Event, Rejection, Source
from operators.validation import Limits, validate_message

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
EVENT_ID = "e1d4389c-a668-4e8c-afdc-017436e43715"


def check(raw: bytes) -> Event | Rejection:
    return validate_message(raw, Source("t", 0, 0), NOW, NOW, Limits())


def page_view(extra: str = "", timestamp: str = "2026-01-01T00:00:00Z", page: str = "/") -> bytes:
    return (
        f'{{"eventId":"{EVENT_ID}","type":"page_view","timestamp":"{timestamp}",'
        f'"payload":{{"userId":"u","page":"{page}","device":"d"{extra}}}}}'
    ).encode()


def test_the_six_characters_backslash_u0000_are_not_a_nul() -> None:
    """A string holding a backslash then ``u0000`` is storable text: it used to be rejected."""
    result = check(page_view(page="C:\\\\\\\\u0000"))
    assert isinstance(result, Event)
    assert result.payload["page"] == "C:\\\\u0000"


@pytest.mark.parametrize("extra", [',"a\\u0000":1', ',"n":"x\\u0000y"'])
def test_a_real_nul_in_a_key_or_string_is_still_refused(extra: str) -> None:
    result = check(page_view(extra))
    assert isinstance(result, Rejection) and result.reason.value == "invalid_value"


@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity", "1e400", "-1E+999"])
def test_non_finite_numbers_are_not_json(number: str) -> None:
    """pydantic's parser accepts NaN/Infinity and turns 1e400 into inf; JSON and jsonb do not."""
    result = check(page_view(f',"n":{number}'))
    assert isinstance(result, Rejection) and result.reason.value == "invalid_json"


def test_a_float_field_beyond_the_float_range_is_not_json() -> None:
    raw = (
        f'{{"eventId":"{EVENT_ID}","type":"logout","timestamp":"2026-01-01T00:00:00Z",'
        f'"payload":{{"userId":"u","ip":"10.0.0.1","duration":1{"0" * 400}}}}}'
    ).encode()
    result = check(raw)
    assert isinstance(result, Rejection) and result.reason.value == "invalid_json"


def test_huge_integers_in_extra_fields_are_kept_exactly() -> None:
    big = "9" * 400
    result = check(page_view(f',"n":{big},"e":1e300'))
    assert isinstance(result, Event)
    assert result.payload["n"] == int(big) and result.payload["e"] == 1e300


@pytest.mark.parametrize("stamp", ["0001-01-01T00:00:00+05:00", "9999-12-31T23:00:00-05:00"])
def test_timestamps_outside_the_utc_range_are_invalid_timestamps(stamp: str) -> None:
    """They overflowed in the UTC conversion and were reported as unclassifiable invalid_json."""
    result = check(page_view(timestamp=stamp))
    assert isinstance(result, Rejection) and result.reason.value == "invalid_timestamp"
    assert "out of range" in result.detail


def test_far_past_in_utc_is_valid() -> None:
    result = check(page_view(timestamp="0001-01-01T00:00:00Z"))
    assert isinstance(result, Event) and result.ts.year == 1
    assert orjson.loads(page_view())["eventId"] == result.event_id
