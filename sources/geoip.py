"""The IP geolocation data: MaxMind ``.mmdb`` files when settings name them, else geoip2fast's.

``RTEP_GEOIP_COUNTRY_DB``, ``RTEP_GEOIP_CITY_DB`` and ``RTEP_GEOIP_ASN_DB`` take the GeoLite2 /
GeoIP2 files users already have, read with MaxMind's ``maxminddb`` reader (memory-mapped, C).
When none is set, the country and AS data that the ``geoip2fast`` package ships (MaxMind GeoLite2
data, IPv4 and IPv6; README "Geolocation") is loaded once per process: ~0.8 s and ~120 MB.
Each is a ``operators.geo.Lookup``; ``locate_from_settings`` puts the address rules and the
per-address cache in front of it.
"""

from __future__ import annotations

import gc
from functools import cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import maxminddb
from geoip2fast import GeoIP2Fast

from operators.geo import NOWHERE, IPAddress, Locate, Location, Lookup, cached_locate
from rtep.core.logs import get_logger

if TYPE_CHECKING:
    from rtep.core.settings import Settings

log = get_logger("sources.geoip")

EMBEDDED_DATA = "geoip2fast-asn-ipv6.dat.gz"
"""geoip2fast's country + ASN data file with IPv6 (its default file is IPv4 and country only)."""

_KINDS = {
    # setting: (what the file must be, words one of which its database_type has)
    "RTEP_GEOIP_COUNTRY_DB": ("Country", ("country", "city", "enterprise")),
    "RTEP_GEOIP_CITY_DB": ("City", ("city", "enterprise")),
    "RTEP_GEOIP_ASN_DB": ("ASN", ("asn", "isp")),
}


class GeoIPDataError(ValueError):
    """A configured geolocation database cannot be used; the message says how to fix it."""


def open_mmdb(setting: str, path: str) -> maxminddb.Reader:
    """The reader of the ``.mmdb`` file ``setting`` names, checked to be of the right kind: a
    wrong path fails at start, naming the setting and the fix, not at the first lookup."""
    kind, words = _KINDS[setting]
    unset = f"or unset {setting} to use the embedded default"
    if not Path(path).is_file():
        raise GeoIPDataError(
            f"{setting}={path}: no such file. Point it at a GeoLite2-{kind}.mmdb or "
            f"GeoIP2-{kind}.mmdb (free from maxmind.com, account needed), {unset}"
        )
    try:
        reader = maxminddb.open_database(path)
    except (maxminddb.InvalidDatabaseError, ValueError, OSError) as err:
        raise GeoIPDataError(
            f"{setting}={path} is not a MaxMind DB file ({err}). Point it at the .mmdb inside "
            f"MaxMind's GeoLite2-{kind} .tar.gz download (not the CSV edition), {unset}"
        ) from None
    found = reader.metadata().database_type
    if not any(word in found.lower() for word in words):
        reader.close()
        raise GeoIPDataError(
            f"{setting}={path} is a {found} database, where GeoLite2-{kind} or GeoIP2-{kind} "
            f"is expected (each RTEP_GEOIP_*_DB takes its own kind): point {setting} at one, "
            f"{unset}"
        )
    return reader


def _get(reader: maxminddb.Reader, address: IPAddress) -> dict[str, Any]:
    """The record of ``address``, {} when the file has none or cannot hold it (IPv6 in an
    IPv4-only file)."""
    try:
        record = reader.get(address)
    except ValueError:
        return {}
    return record if isinstance(record, dict) else {}


def _part(record: dict[str, Any], key: str) -> dict[str, Any]:
    value = record.get(key)
    return value if isinstance(value, dict) else {}


def _number(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


class MmdbLookup:
    """Locations from MaxMind databases: ``place`` a Country or City one, ``asn`` an ASN one
    (either may be absent). The records' layout is MaxMind's GeoIP2 one."""

    def __init__(self, place: maxminddb.Reader | None, asn: maxminddb.Reader | None) -> None:
        self.place = place
        self.asn = asn

    def __call__(self, address: IPAddress) -> Location:
        """The address's country (else its registered country), city and coordinates, and
        its autonomous system."""
        country = city = latitude = longitude = None
        if self.place is not None:
            record = _get(self.place, address)
            code = _part(record, "country").get("iso_code") or _part(
                record, "registered_country"
            ).get("iso_code")
            country = code if isinstance(code, str) else None
            name = _part(_part(record, "city"), "names").get("en")
            city = name if isinstance(name, str) else None
            where = _part(record, "location")
            latitude, longitude = _number(where.get("latitude")), _number(where.get("longitude"))
        number = org = None
        if self.asn is not None:
            record = _get(self.asn, address)
            found = record.get("autonomous_system_number")
            number = found if isinstance(found, int) and not isinstance(found, bool) else None
            name = record.get("autonomous_system_organization")
            org = name if isinstance(name, str) else None
        return Location(country, number, org, city, latitude, longitude)


class EmbeddedLookup:
    """geoip2fast's shipped data: country and AS organisation. No AS number (the file keeps the
    organisation's name only) and no city."""

    def __init__(self) -> None:
        data = resources.files("geoip2fast") / EMBEDDED_DATA
        self.data = GeoIP2Fast(geoip2fast_data_file=str(data))

    def __call__(self, address: IPAddress) -> Location:
        """The address's country and AS organisation, ``NOWHERE`` where the data has none."""
        found = self.data.lookup(str(address))
        if found.is_private:  # geoip2fast's own reserved list: "--" and "IANA.ORG"
            return NOWHERE
        code = found.country_code
        country = code if len(code) == 2 and code.isalpha() else None  # "##": not found
        org = found.asn_name or None
        return NOWHERE if country is None and org is None else Location(country, None, org)

    def source(self) -> str:
        """Which data and release, e.g. ``MAXMIND:GeoLite2-CountryASN-IPv4IPv6-en-20240618``."""
        return str(self.data.get_database_info().get("source_info", EMBEDDED_DATA))


@cache
def embedded_lookup() -> EmbeddedLookup:
    """The one ``EmbeddedLookup`` of the process (geoip2fast keeps its data in module globals:
    a second instance would load the same ~120 MB again for nothing).

    The data is a few huge Python lists that never change and hold no cycles, yet every full
    collection of the garbage collector walks them (~40 ms each with CPython's default
    thresholds). The dataflow process freezes what its start-up made (``rtep.core.process``),
    but the data is loaded after that; ``gc.freeze`` takes it out of the collector's reach."""
    lookup = EmbeddedLookup()
    gc.freeze()
    return lookup


def lookup_from_settings(s: Settings) -> Lookup:
    """The configured MaxMind databases (a City one instead of a Country one when both are
    set), or the embedded data when no ``RTEP_GEOIP_*_DB`` is set."""
    place_setting, place_path = (
        ("RTEP_GEOIP_CITY_DB", s.geoip_city_db)
        if s.geoip_city_db
        else ("RTEP_GEOIP_COUNTRY_DB", s.geoip_country_db)
    )
    if not place_path and not s.geoip_asn_db:
        embedded = embedded_lookup()
        log.info("geolocation: embedded geoip2fast data", source=embedded.source())
        return embedded
    place = open_mmdb(place_setting, place_path) if place_path else None
    asn = open_mmdb("RTEP_GEOIP_ASN_DB", s.geoip_asn_db) if s.geoip_asn_db else None
    log.info(
        "geolocation: MaxMind databases",
        place=place.metadata().database_type if place else None,
        asn=asn.metadata().database_type if asn else None,
    )
    return MmdbLookup(place, asn)


def locate_from_settings(s: Settings) -> Locate:
    """The enrichment's ``Locate``: the configured lookup behind the address rules and a cache
    of ``RTEP_GEOIP_CACHE_SIZE`` addresses."""
    return cached_locate(lookup_from_settings(s), s.geoip_cache_size)
