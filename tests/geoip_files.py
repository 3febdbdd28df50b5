"""Small MaxMind databases for the geolocation tests, written with ``mmdb-writer`` in MaxMind's
GeoIP2 layout: a Country, a City (IPv4 and IPv6) and an IPv4-only ASN database."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mmdb_writer import MMDBWriter
from netaddr import IPSet

LONDON = "81.2.69.160"  # in the City and Country databases (and the ASN one)
LONDON_V6 = "2a02:8010::1"  # City and Country databases, IPv6
CLOUDFLARE = "1.1.1.1"  # ASN database only
UNKNOWN = "8.8.4.4"  # public, in none of them

_PLACES: dict[str, dict[str, Any]] = {
    "81.2.69.0/24": {
        "country": {"iso_code": "GB", "names": {"en": "United Kingdom"}},
        "city": {"names": {"en": "London"}},
        "location": {"latitude": 51.5142, "longitude": -0.0931, "accuracy_radius": 10},
    },
    "2a02:8010::/32": {
        "registered_country": {"iso_code": "GB"},  # no "country": the registered one is used
        "location": {"latitude": 51.4964, "longitude": -0.1224},
    },
}
_ASNS: dict[str, dict[str, Any]] = {
    "81.2.64.0/18": {
        "autonomous_system_number": 20712, "autonomous_system_organization": "Andrews & Arnold Ltd"
    },
    "1.1.1.0/24": {
        "autonomous_system_number": 13335, "autonomous_system_organization": "CLOUDFLARENET"
    },
}  # fmt: skip


def _write(path: Path, kind: str, networks: dict[str, dict[str, Any]], ip_version: int) -> Path:
    writer = MMDBWriter(
        ip_version=ip_version,
        ipv4_compatible=ip_version == 6,
        database_type=kind,
        languages=["en"],
        description=f"rtep test {kind}",
    )
    for network, record in networks.items():
        if ip_version == 4 and ":" in network:
            continue
        writer.insert_network(IPSet([network]), record)
    writer.to_db_file(str(path))
    return path


def country_db(folder: Path) -> Path:
    """A GeoLite2-Country database: the places' countries only."""
    countries = {
        net: {k: v for k, v in rec.items() if k in ("country", "registered_country")}
        for net, rec in _PLACES.items()
    }
    return _write(folder / "GeoLite2-Country.mmdb", "GeoLite2-Country", countries, 6)


def city_db(folder: Path) -> Path:
    """A GeoLite2-City database (IPv4 and IPv6)."""
    return _write(folder / "GeoLite2-City.mmdb", "GeoLite2-City", _PLACES, 6)


def asn_db(folder: Path) -> Path:
    """A GeoLite2-ASN database, IPv4 only (an IPv6 lookup in it must not fail)."""
    return _write(folder / "GeoLite2-ASN.mmdb", "GeoLite2-ASN", _ASNS, 4)
