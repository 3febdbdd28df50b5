"""The non-finite pre-filter never hides a non-finite number, and skips UUID-like hex."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from operators.model import Reason, Rejection, Source
from operators.validation import _MAYBE_NON_FINITE, Limits, validate_message

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def _message(number: str) -> bytes:
    return (
        '{"eventId":"7b97c7b0-fcd7-4c44-b3b1-7598fcc3ae36","type":"button_click",'
        '"timestamp":"2026-01-01T00:00:00Z","payload":{"userId":"u","buttonId":"b",'
        f'"page":"/","n":[{number}], "m": {{"x": {number} }}}}}}'
    ).encode()


@given(
    mantissa=st.integers(1, 9),
    exponent=st.integers(300, 99999),
    sign=st.sampled_from(["", "+"]),
    e=st.sampled_from("eE"),
)
def test_out_of_range_exponent_is_rejected(mantissa: int, exponent: int, sign: str, e: str) -> None:
    """Scenario: a number whose exponent makes it infinite. We expect: invalid_json."""
    raw = _message(f"{mantissa}.5{e}{sign}{exponent}")
    assert _MAYBE_NON_FINITE.search(raw)
    result = validate_message(raw, Source("t", 0, 0), NOW, NOW, Limits())
    if exponent > 308:
        assert isinstance(result, Rejection)
        assert result.reason == Reason.INVALID_JSON


def test_uuid_hex_does_not_trigger_the_walk() -> None:
    """Scenario: 'e' followed by digits inside strings. We expect: the pre-filter stays quiet."""
    raw = _message("1").replace(b"7b97c7b0", b"7be12345")
    assert not _MAYBE_NON_FINITE.search(raw)
