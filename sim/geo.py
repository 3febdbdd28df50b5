"""Where simulated users are: home countries, and public IPv4 addresses drawn from the
geolocation data itself (geoip2fast's embedded MaxMind GeoLite2 country + AS data, the pipeline's
default), so that every address the simulator sends resolves to the country it was drawn for.

The simulator shares no code with the platform: it reads the same data file through the
``geoip2fast`` package directly. Addresses are drawn by rejection sampling (a random public
address, kept when the data places it in the wanted country and names its network's AS), which
weights networks by their real size, ~20 µs a lookup.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from functools import cache
from importlib import resources

from geoip2fast import GeoIP2Fast

DATA_FILE = "geoip2fast-asn-ipv6.dat.gz"  # the file the pipeline's embedded default reads


@dataclass(frozen=True, slots=True)
class Country:
    """A home country of simulated users: ISO code, share of users, and a main city's
    coordinates (for travel distances only; the pipeline never sees them)."""

    code: str
    weight: int
    lat: float
    lon: float


COUNTRIES: tuple[Country, ...] = (
    Country("US", 30, 40.71, -74.01), Country("GB", 10, 51.51, -0.13),
    Country("DE", 10, 52.52, 13.40), Country("FR", 8, 48.86, 2.35),
    Country("BR", 6, -23.55, -46.63), Country("JP", 6, 35.68, 139.69),
    Country("CA", 5, 43.65, -79.38), Country("IN", 5, 19.08, 72.88),
    Country("NL", 4, 52.37, 4.90), Country("ES", 4, 40.42, -3.70),
    Country("IT", 4, 41.90, 12.50), Country("AU", 3, -33.87, 151.21),
    Country("MX", 3, 19.43, -99.13), Country("SE", 2, 59.33, 18.07),
    Country("PL", 2, 52.23, 21.01), Country("KR", 2, 37.57, 126.98),
)  # fmt: skip
BY_CODE: dict[str, Country] = {c.code: c for c in COUNTRIES}


def distance_km(a: str, b: str) -> float:
    """Great-circle distance between the main cities of countries ``a`` and ``b``."""
    ca, cb = BY_CODE[a], BY_CODE[b]
    la, lb = math.radians(ca.lat), math.radians(cb.lat)
    dlon = math.radians(cb.lon - ca.lon)
    cos = math.sin(la) * math.sin(lb) + math.cos(la) * math.cos(lb) * math.cos(dlon)
    return 6371.0 * math.acos(max(-1.0, min(1.0, cos)))


def pick_country(rng: random.Random) -> str:
    """A home country, weighted like an international shop's users."""
    return rng.choices(COUNTRIES, [c.weight for c in COUNTRIES])[0].code


def far_country(rng: random.Random, home: str, min_km: float) -> str:
    """A country at least ``min_km`` from ``home``: where an impossible login comes from
    (every country of the table has some over 5,000 km away)."""
    return rng.choice([c.code for c in COUNTRIES if distance_km(home, c.code) >= min_km])


def near_country(home: str, max_km: float) -> str | None:
    """The nearest other country when it is within ``max_km`` of ``home`` (a short trip)."""
    nearest = min((c for c in COUNTRIES if c.code != home), key=lambda c: distance_km(home, c.code))
    return nearest.code if distance_km(home, nearest.code) <= max_km else None


@cache
def _data() -> GeoIP2Fast:
    """The embedded data, loaded once per process (~0.4 s; geoip2fast keeps it in globals)."""
    return GeoIP2Fast(geoip2fast_data_file=str(resources.files("geoip2fast") / DATA_FILE))


class IpPool:
    """Hands out public IPv4 addresses of a wanted country, each in a /24 never handed out
    before: attackers' networks are never benign users' networks, and no two incidents share one.
    Remembers each address's country (``country_of``) for the labellers."""

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng
        self._used: set[int] = set()
        self.country_of: dict[str, str] = {}

    def take(self, country: str) -> str:
        """A fresh address that the geolocation data places in ``country``."""
        data, rng = _data(), self._rng
        while True:
            net = rng.getrandbits(24)
            if net in self._used:
                continue
            ip = f"{net >> 16}.{(net >> 8) & 255}.{net & 255}.{rng.randrange(1, 255)}"
            found = data.lookup(ip)
            if found.is_private or found.country_code != country or not found.asn_name:
                continue
            self._used.add(net)
            self.country_of[ip] = country
            return ip
