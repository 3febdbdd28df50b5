"""Enrichment is total (any device string gives an answer) and classifies the usual forms."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from operators.enrichment import DEVICE_CLASSES, normalise_ip, parse_device


@given(st.none() | st.text(max_size=300))
def test_parse_device_is_total(device: str | None) -> None:
    info = parse_device(device)
    assert info.device_class in DEVICE_CLASSES


@given(st.none() | st.text(max_size=60))
def test_normalise_ip_is_total_and_idempotent(ip: str | None) -> None:
    normal = normalise_ip(ip)
    assert normal is None or normalise_ip(normal) == normal


@pytest.mark.parametrize(
    ("device", "browser", "os", "device_class"),
    [
        ("Chrome on macOS", "Chrome", "macOS", "desktop"),
        ("Safari on iOS", "Safari", "iOS", "mobile"),
        ("Firefox on Windows", "Firefox", "Windows", "desktop"),
        ("Safari on iPadOS", "Safari", "iPadOS", "tablet"),
        ("Googlebot/2.1 (+http://www.google.com/bot.html)", "Googlebot", None, "bot"),
        (
            "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 "
            "(KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1",
            "Mobile Safari",
            "iOS",
            "mobile",
        ),
        (
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/120.0 Safari/537.36",
            "Chrome",
            "Windows",
            "desktop",
        ),
        ("", None, None, "other"),
    ],
)
def test_known_devices(device: str, browser: str | None, os: str | None, device_class: str) -> None:
    assert tuple(parse_device(device)) == (browser, os, device_class)


def test_ip_normalisation() -> None:
    assert normalise_ip(" 10.0.0.1 ") == "10.0.0.1"
    assert normalise_ip("2001:DB8::1") == "2001:db8::1"
    assert normalise_ip("999.1.1.1") is None
