"""An Event pickled by an earlier release (held in a recovery snapshot) restores with the fields
added since at their defaults: reading one never raises ``AttributeError``."""

from __future__ import annotations

import dataclasses
import pickle
from pathlib import Path

import pytest

from operators.records import Event

FIXTURES = Path(__file__).parent / "fixtures"
ADDED_SINCE_0_2_0 = ("country", "asn", "as_org", "city", "latitude", "longitude")


def events_in(state: object) -> list[Event]:
    """The Events anywhere in nested tuples, lists and snapshot records."""
    if isinstance(state, Event):
        return [state]
    if dataclasses.is_dataclass(state) and not isinstance(state, type):  # 0.3.0's records
        state = [getattr(state, f.name) for f in dataclasses.fields(state)]
    if isinstance(state, tuple | list):
        return [event for item in state for event in events_in(item)]
    return []


@pytest.mark.parametrize("release", ["0.2.0", "0.3.0"])
def test_events_of_an_earlier_snapshot_have_every_field(release: str) -> None:
    snapshot = (FIXTURES / release / "stuffing_in_order.pickle").read_bytes()
    events = events_in(pickle.loads(snapshot))
    assert events, f"the {release} stuffing snapshot holds failed logins"
    for event in events:
        assert event.ip == "203.0.113.9"
        assert all(getattr(event, name) is None for name in ADDED_SINCE_0_2_0)
        assert dataclasses.asdict(event)["late"] is False


def test_an_event_pickles_and_unpickles_unchanged() -> None:
    event = events_in(pickle.loads((FIXTURES / "0.2.0" / "stuffing_in_order.pickle").read_bytes()))[0]
    event = dataclasses.replace(event, country="GB", asn=20712, latitude=51.5)
    assert pickle.loads(pickle.dumps(event)) == event
