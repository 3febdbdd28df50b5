"""The lookups of sources/geoip.py: MaxMind databases built in the test (Country, City, ASN), the
embedded geoip2fast data, and the errors a wrong RTEP_GEOIP_*_DB gets at start."""

from __future__ import annotations

import gc
from ipaddress import ip_address
from pathlib import Path

import pytest

from operators.geo import NOWHERE, Location
from rtep.core.settings import Settings
from sources.geoip import (
    EmbeddedLookup,
    GeoIPDataError,
    MmdbLookup,
    locate_from_settings,
    lookup_from_settings,
)
from tests.geoip_files import CLOUDFLARE, LONDON, LONDON_V6, UNKNOWN, asn_db, city_db, country_db


@pytest.fixture(scope="module")
def dbs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with GeoLite2-Country/City/ASN.mmdb test databases."""
    folder = tmp_path_factory.mktemp("geoip")
    for write in (country_db, city_db, asn_db):
        write(folder)
    return folder


def settings(**paths: Path | str) -> Settings:
    return Settings(**{f"geoip_{kind}_db": str(path) for kind, path in paths.items()})


def test_city_and_asn_databases_give_the_whole_location(dbs: Path) -> None:
    locate = locate_from_settings(
        settings(city=dbs / "GeoLite2-City.mmdb", asn=dbs / "GeoLite2-ASN.mmdb")
    )
    assert locate(LONDON) == Location(
        "GB", 20712, "Andrews & Arnold Ltd", "London", 51.5142, -0.0931
    )
    # IPv6: the place from the City database (its registered country), none from the IPv4 ASN one
    assert locate(LONDON_V6) == Location("GB", None, None, None, 51.4964, -0.1224)
    assert locate(CLOUDFLARE) == Location(None, 13335, "CLOUDFLARENET")
    assert locate(UNKNOWN) == NOWHERE
    assert locate("192.168.1.1") == NOWHERE


def test_a_country_database_gives_the_country_only(dbs: Path) -> None:
    lookup = lookup_from_settings(settings(country=dbs / "GeoLite2-Country.mmdb"))
    assert isinstance(lookup, MmdbLookup)
    locate = locate_from_settings(settings(country=dbs / "GeoLite2-Country.mmdb"))
    assert locate(LONDON) == Location("GB")
    assert locate(CLOUDFLARE) == NOWHERE


def test_a_city_database_is_used_instead_of_a_country_one(dbs: Path) -> None:
    locate = locate_from_settings(
        settings(country=dbs / "GeoLite2-Country.mmdb", city=dbs / "GeoLite2-City.mmdb")
    )
    assert locate(LONDON).city == "London"


def test_the_cache_size_setting_bounds_the_cache(dbs: Path) -> None:
    s = Settings(geoip_asn_db=str(dbs / "GeoLite2-ASN.mmdb"), geoip_cache_size=4)
    locate = locate_from_settings(s)
    for i in range(20):
        locate(f"1.1.1.{i}")
    assert locate.cache_info().currsize == 4
    assert locate("1.1.1.200") == Location(None, 13335, "CLOUDFLARENET")


def test_a_missing_file_names_the_setting_and_the_fix(tmp_path: Path) -> None:
    with pytest.raises(GeoIPDataError) as failed:
        lookup_from_settings(settings(city=tmp_path / "GeoLite2-City.mmdb"))
    message = str(failed.value)
    assert "RTEP_GEOIP_CITY_DB=" in message and "no such file" in message
    assert "GeoLite2-City.mmdb" in message and "unset RTEP_GEOIP_CITY_DB" in message


@pytest.mark.parametrize("content", [b"", b"network,geoname_id\n1.0.0.0/24,2077456\n"])
def test_a_file_that_is_not_an_mmdb_names_the_fix(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "GeoLite2-Country-Blocks-IPv4.csv"
    path.write_bytes(content)
    with pytest.raises(GeoIPDataError, match=r"RTEP_GEOIP_COUNTRY_DB=.*not a MaxMind DB file"):
        lookup_from_settings(settings(country=path))


def test_a_database_of_the_wrong_kind_names_the_fix(dbs: Path) -> None:
    with pytest.raises(GeoIPDataError, match=r"RTEP_GEOIP_CITY_DB=.*GeoLite2-ASN database"):
        lookup_from_settings(settings(city=dbs / "GeoLite2-ASN.mmdb"))
    with pytest.raises(GeoIPDataError, match=r"RTEP_GEOIP_ASN_DB=.*GeoLite2-City database, where GeoLite2-ASN"):
        lookup_from_settings(settings(asn=dbs / "GeoLite2-City.mmdb"))


@pytest.fixture(scope="module")
def embedded() -> EmbeddedLookup:
    lookup = lookup_from_settings(Settings())
    assert isinstance(lookup, EmbeddedLookup)
    return lookup


@pytest.mark.parametrize(
    ("ip", "country", "as_org"),
    [
        ("8.8.8.8", "US", "GOOGLE"),  # Google Public DNS
        ("2001:4860:4860::8888", "US", "GOOGLE"),
        ("81.2.69.160", "GB", "Andrews & Arnold Ltd"),  # MaxMind's own test address
    ],
)
def test_the_embedded_data_gives_country_and_as_organisation(
    embedded: EmbeddedLookup, ip: str, country: str, as_org: str
) -> None:
    locate = locate_from_settings(Settings())
    assert locate(ip) == Location(country, None, as_org)  # no AS number in geoip2fast's data
    assert "GeoLite2" in embedded.source()


def test_the_embedded_data_has_no_location_for_unknown_or_reserved_addresses(
    embedded: EmbeddedLookup,
) -> None:
    assert embedded(ip_address("10.0.0.1")) == NOWHERE  # geoip2fast's own reserved ranges
    assert locate_from_settings(Settings())("10.0.0.1") == NOWHERE


def test_the_embedded_data_is_out_of_the_garbage_collectors_reach(
    embedded: EmbeddedLookup,
) -> None:
    # its lists would otherwise be walked by every full collection (sources/geoip.py)
    assert gc.get_freeze_count() > 20_000
    assert not any(obj is embedded.data for obj in gc.get_objects())
