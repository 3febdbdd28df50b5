"""A validated event's location reaches the stores: ``rtep.events`` (migration 004) and the
user's Redis hash, through the validate step with lookups from MaxMind databases built here."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import psycopg
import redis

from dataflows.adapters import Validator
from operators.breaker import BreakerParams, RejectionBreaker
from operators.records import Event
from operators.validation import Limits
from rtep.core.settings import Settings
from sinks.cache_writes import CacheWrites
from sinks.postgres import EventsSink
from sinks.redis_sink import RedisSink
from sources.geoip import locate_from_settings
from tests.geoip_files import LONDON, asn_db, city_db
from tests.harness import REDIS_URL
from tests.unit.factories import FakeMessage

NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)
LOCATION_SQL = (
    "SELECT user_id, host(ip), country, asn, as_org, city, latitude, longitude"
    " FROM rtep.events ORDER BY user_id"
)


def validated(tmp_path: Path, *logins: tuple[str, str]) -> list[Event]:
    """``(user, ip)`` logins through the validate step, located with test City + ASN databases."""
    settings = Settings(
        geoip_city_db=str(city_db(tmp_path)), geoip_asn_db=str(asn_db(tmp_path))
    )
    validate = Validator(
        Limits(), RejectionBreaker(BreakerParams(1000, 1.0)), locate_from_settings(settings)
    )
    documents = [
        {
            "eventId": f"00000000-0000-4000-8000-{i:012d}",
            "type": "login",
            "timestamp": (NOW - timedelta(seconds=10 - i)).isoformat(),
            "payload": {"userId": user, "ip": ip, "device": "Chrome on macOS"},
        }
        for i, (user, ip) in enumerate(logins)
    ]
    messages = [FakeMessage(orjson.dumps(doc), 0, i) for i, doc in enumerate(documents)]
    checked = validate(messages, NOW)  # type: ignore[arg-type]
    assert checked.rejections == []
    return checked.events


def test_a_validated_event_with_a_public_ip_stores_its_location(
    tmp_path: Path, database: str
) -> None:
    events = validated(tmp_path, ("ann", LONDON), ("bob", "10.1.2.3"), ("cy", "not an address"))
    part = EventsSink(database).open()
    part.write_batch(events)
    part.close()
    with psycopg.connect(database) as conn:
        rows = conn.execute(LOCATION_SQL).fetchall()
    assert rows == [
        ("ann", LONDON, "GB", 20712, "Andrews & Arnold Ltd", "London", 51.5142, -0.0931),
        ("bob", "10.1.2.3", None, None, None, None, None, None),  # private: no location
        ("cy", None, None, None, None, None, None, None),  # malformed: no address, no location
    ]


def test_the_user_hash_gets_the_country(tmp_path: Path, rprefix: str) -> None:
    events = validated(tmp_path, ("ann", LONDON), ("bob", "10.1.2.3"))
    part = RedisSink(REDIS_URL, prefix=rprefix).open()
    part.write_batch([CacheWrites(events=events)])  # the sink's input since 0.3.0
    client = redis.Redis.from_url(REDIS_URL, decode_responses=True)
    assert client.hget(f"{rprefix}user:ann", "country") == "GB"
    assert client.hget(f"{rprefix}user:bob", "country") is None
    part.close()
