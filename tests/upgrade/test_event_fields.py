"""An Event pickled by an earlier release (held in a recovery snapshot) restores with the fields
added since at their defaults: reading one never raises ``AttributeError``."""

from __future__ import annotations

import dataclasses
import pickle
from pathlib import Path

from operators.records import Event

FIXTURES = Path(__file__).parent / "fixtures"
ADDED_SINCE_0_2_0 = ("country", "asn", "as_org", "city", "latitude", "longitude")


def events_in(state: object) -> list[Event]:
    """The Events anywhere in nested tuples and lists."""
    if isinstance(state, Event):
        return [state]
    if isinstance(state, tuple | list):
        return [event for item in state for event in events_in(item)]
    return []


def test_events_of_a_0_2_0_snapshot_have_every_field() -> None:
    events = events_in(pickle.loads((FIXTURES / "0.2.0" / "stuffing_in_order.pickle").read_bytes()))
    assert events, "the 0.2.0 stuffing snapshot holds failed logins"
    for event in events:
        assert event.ip == "203.0.113.9"
        assert all(getattr(event, name) is None for name in ADDED_SINCE_0_2_0)
        assert dataclasses.asdict(event)["late"] is False


def test_an_event_pickles_and_unpickles_unchanged() -> None:
    event = events_in(pickle.loads((FIXTURES / "0.2.0" / "stuffing_in_order.pickle").read_bytes()))[0]
    event = dataclasses.replace(event, country="GB", asn=20712, latitude=51.5)
    assert pickle.loads(pickle.dumps(event)) == event
