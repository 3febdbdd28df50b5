"""Where an IP address is: the location record, and which addresses are looked up at all.

The lookup itself reads data files (``sources/geoip.py``); it is injected here as a ``Lookup``,
so this module stays pure. Private, loopback, link-local, multicast, reserved, unspecified,
documentation and malformed addresses have no location: they are never looked up and never
raise. Results are cached per address string, bounded: a user's events repeat the same few
addresses, so the lookup is paid once per distinct address.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from functools import lru_cache
from ipaddress import IPv4Address, IPv6Address
from typing import TYPE_CHECKING, NamedTuple, Protocol

if TYPE_CHECKING:
    from functools import _lru_cache_wrapper


class Location(NamedTuple):
    """Where an address is; every field None when unknown. ``city``, ``latitude`` and
    ``longitude`` come only from a city database."""

    country: str | None = None  # ISO 3166-1 alpha-2 code
    asn: int | None = None  # autonomous system number
    as_org: str | None = None  # the autonomous system's organisation
    city: str | None = None  # English name
    latitude: float | None = None
    longitude: float | None = None


NOWHERE = Location()
"""The location of an address that has none (or that the data does not know)."""

IPAddress = IPv4Address | IPv6Address


class Lookup(Protocol):
    """Reads the location of a public address from some data (a MaxMind database, ...)."""

    def __call__(self, address: IPAddress) -> Location:
        """The address's location; ``NOWHERE`` when the data does not know it."""
        ...


Locate = Callable[[str], Location]
"""An address string → its location (``NOWHERE`` for anything without one); never raises."""


def public_address(ip: str) -> IPAddress | None:
    """The address to look up, or None when it has no location anywhere: malformed, or in a
    range that is not routed on the Internet (an IPv4-mapped IPv6 address counts as its IPv4)."""
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return None
    if isinstance(address, IPv6Address):
        if address.scope_id is not None:  # "fe80::1%eth0": an interface's, never a location
            return None
        mapped = address.ipv4_mapped
        if mapped is not None:
            address = mapped
    if (
        not address.is_global  # private, loopback, link-local, shared, documentation, ...
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
    ):
        return None
    return address


def cached_locate(lookup: Lookup, cache_size: int) -> _lru_cache_wrapper[Location]:
    """``Locate`` through ``lookup`` for public addresses, the last ``cache_size`` addresses
    cached (a hit costs one C call: what keeps enrichment cheap per event)."""

    def locate(ip: str) -> Location:
        address = public_address(ip)
        return NOWHERE if address is None else lookup(address)

    return lru_cache(maxsize=cache_size)(locate)
