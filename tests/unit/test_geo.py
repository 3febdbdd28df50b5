"""The address rules and the cache of operators/geo.py: any string is answered without an error,
addresses that are not routed on the Internet are never looked up, the cache stays bounded."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv6Address, ip_network

import pytest
from hypothesis import given
from hypothesis import strategies as st

from operators.enrichment import enrich
from operators.geo import NOWHERE, IPAddress, Location, cached_locate, public_address
from tests.unit.factories import make_event

HERE = Location("GB", 20712, "Andrews & Arnold Ltd", "London", 51.5, -0.09)

NOT_ROUTED = (
    "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12",
    "192.0.2.0/24", "192.168.0.0/16", "198.18.0.0/15", "198.51.100.0/24", "203.0.113.0/24",
    "224.0.0.0/4", "240.0.0.0/4", "255.255.255.255/32",
    "::/128", "::1/128", "fc00::/7", "fe80::/10", "ff00::/8", "2001:db8::/32", "::ffff:10.0.0.0/104",
)  # fmt: skip
"""Unspecified, private, shared, loopback, link-local, documentation, benchmarking, multicast,
reserved and broadcast ranges (and a private IPv4 address written as IPv4-mapped IPv6)."""


class Recorder:
    """A lookup that answers ``HERE`` for everything and remembers what it was asked."""

    def __init__(self) -> None:
        self.asked: list[IPAddress] = []

    def __call__(self, address: IPAddress) -> Location:
        self.asked.append(address)
        return HERE


@given(st.text(max_size=80))
def test_any_string_is_answered_without_an_error(text: str) -> None:
    address = public_address(text)
    assert address is None or address.is_global
    assert cached_locate(Recorder(), 8)(text) in (NOWHERE, HERE)


@given(st.sampled_from(NOT_ROUTED).flatmap(lambda net: st.ip_addresses(network=net)))
def test_addresses_not_routed_on_the_internet_are_never_looked_up(address: IPAddress) -> None:
    lookup = Recorder()
    assert cached_locate(lookup, 8)(str(address)) == NOWHERE
    assert lookup.asked == []


@given(st.ip_addresses())
def test_only_global_addresses_are_looked_up(address: IPAddress) -> None:
    lookup = Recorder()
    if cached_locate(lookup, 8)(str(address)) == HERE:
        (asked,) = lookup.asked
        assert asked.is_global
        assert not any(asked in ip_network(net) for net in NOT_ROUTED)


@pytest.mark.parametrize(
    ("text", "asked"),
    [
        ("81.2.69.160", IPv4Address("81.2.69.160")),
        ("2a02:8010::1", IPv6Address("2a02:8010::1")),
        ("::ffff:81.2.69.160", IPv4Address("81.2.69.160")),  # mapped: looked up as its IPv4
    ],
)
def test_public_addresses_are_looked_up(text: str, asked: IPAddress) -> None:
    lookup = Recorder()
    assert cached_locate(lookup, 8)(text) == HERE
    assert lookup.asked == [asked]


@pytest.mark.parametrize("text", ["", "garbage", "999.1.1.1", "fe80::1%eth0", "1.2.3", " "])
def test_malformed_and_scoped_addresses_have_no_location(text: str) -> None:
    lookup = Recorder()
    assert cached_locate(lookup, 8)(text) == NOWHERE
    assert lookup.asked == []


def test_each_address_is_looked_up_once_and_the_cache_stays_bounded() -> None:
    lookup = Recorder()
    locate = cached_locate(lookup, 100)
    addresses = [f"81.2.{i // 256}.{i % 256}" for i in range(1000)]
    for _ in range(3):
        for address in addresses[:50]:
            locate(address)
    assert len(lookup.asked) == 50  # the repeats were hits
    for address in addresses:
        locate(address)
    assert locate.cache_info().currsize == 100
    assert len(lookup.asked) == 50 + 950


def test_enrich_fills_the_location_of_an_event_with_an_ip() -> None:
    lookup = Recorder()
    locate = cached_locate(lookup, 8)
    located = enrich(make_event("login", ip=" 81.2.69.160 "), locate)
    assert (located.country, located.asn, located.as_org) == ("GB", 20712, "Andrews & Arnold Ltd")
    assert (located.city, located.latitude, located.longitude) == ("London", 51.5, -0.09)
    assert located.ip == "81.2.69.160"

    for event in (make_event("login", ip=None), make_event("login", ip="10.0.0.1")):
        enrich(event, locate)
        assert (event.country, event.asn, event.as_org, event.city) == (None, None, None, None)
    assert lookup.asked == [IPv4Address("81.2.69.160")]


def test_enrich_without_a_locate_leaves_the_location_empty() -> None:
    event = enrich(make_event("login", ip="81.2.69.160"))
    assert (event.country, event.asn, event.latitude) == (None, None, None)
