"""impossible_travel: two successful logins of one user too far apart for the time between them."""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import Any

from operators.detections.incidents import Incident, alert_id_for
from operators.detections.params import ImpossibleTravelParams
from operators.detections.rule import CRITICAL, Reads, Rule, location_details
from operators.detections.snapshots import VERSION, ImpossibleTravelSnapshot, TravelLogin
from operators.expiry import ExpiryQueue
from operators.records import Alert, Event
from operators.state import ShardClock

EARTH_RADIUS_KM = 6371.0088
HALF_CIRCUMFERENCE_KM = math.pi * EARTH_RADIUS_KM
"""No two places are further apart: a login older than this at ``max_kmh`` can never alert."""


def distance_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle (haversine) distance: what a traveller must cover at least."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(a)))


def travel_login(event: Event) -> TravelLogin | None:
    """What the rule keeps of a successful login: None when it has no location to compare."""
    if event.country is None and (event.latitude is None or event.longitude is None):
        return None
    return (event.ts, event.event_id, event.ip, event.country, event.city, event.latitude,
            event.longitude, event.asn)  # fmt: skip


class ImpossibleTravel(Rule[ImpossibleTravelParams]):
    """Two successive located successful logins of one user that no traveller could make.

    Each located success is compared with the user's latest earlier one (a late one, with the
    later one it precedes): with coordinates on both, faster than ``max_kmh`` over ``min_km`` or
    more; else two different countries within ``country_window``; never two logins from one ASN
    (see ``ImpossibleTravelParams``). One incident per chain of impossible hops: a hop starting
    at the incident's latest login extends it (the attacker's login, then the owner's again).
    """

    RULE, SEVERITY, READS = "impossible_travel", CRITICAL, Reads.LOGINS
    PARAMS = ImpossibleTravelParams

    def __init__(self, params: ImpossibleTravelParams) -> None:
        super().__init__(params)
        self._last: dict[str, TravelLogin] = {}
        self._incidents: dict[str, Incident] = {}
        self._expiry: ExpiryQueue[str] = ExpiryQueue()
        speed_horizon = timedelta(hours=HALF_CIRCUMFERENCE_KM / params.max_kmh)
        self.horizon = max(params.country_window, speed_horizon)
        """How long a login can still make an impossible pair with a later one."""

    def _check(self, event: Event, now: datetime) -> None:
        if not event.successful_login:
            return
        login = travel_login(event)
        if login is None:
            return
        user = event.user_id
        last = self._last.get(user)
        if last is None or (login[0], login[1]) >= (last[0], last[1]):
            self._last[user] = login
            self._expiry.schedule(user, login[0] + self.horizon)
            earlier, later = last, login
        else:  # a late login: it precedes the latest one
            earlier, later = login, last
        if earlier is None:
            return
        hop = self._hop(earlier, later)
        if hop is not None:
            self._alert(event, earlier, later, hop, now=now)

    def _hop(self, a: TravelLogin, b: TravelLogin) -> dict[str, Any] | None:
        """The hop's figures if going from login ``a`` to ``b`` is impossible, else None."""
        if a[7] is not None and a[7] == b[7]:
            return None  # one network's exits (VPN, carrier, company): not travel
        seconds = (b[0] - a[0]).total_seconds()
        if None not in (a[5], a[6], b[5], b[6]):
            km = distance_km(a[5], a[6], b[5], b[6])  # type: ignore[arg-type]  # checked above
            if km < self.params.min_km:
                return None
            kmh = math.inf if seconds <= 0 else km / (seconds / 3600)
            if kmh <= self.params.max_kmh:
                return None
            speed = None if math.isinf(kmh) else round(kmh, 1)
            return {"basis": "distance", "distance_km": round(km, 1), "speed_kmh": speed}
        if a[3] is None or b[3] is None or a[3] == b[3]:
            return None
        if seconds > self.params.country_window.total_seconds():
            return None
        return {"basis": "country"}

    def _alert(
        self, event: Event, a: TravelLogin, b: TravelLogin, hop: dict[str, Any], *, now: datetime
    ) -> None:
        """Open or extend the user's incident for the hop ``a`` → ``b`` (``event`` raised it)."""
        user = event.user_id
        inc = self._incidents.get(user)
        new = inc is None or not inc.window_start <= a[0] <= inc.window_end
        if new:
            alert_id = alert_id_for(self.RULE, user, a[1])
            inc = self._incidents[user] = Incident(alert_id, a[0], b[0], 2, now, None)
        else:
            assert inc is not None
            inc.window_end = max(inc.window_end, b[0])
            inc.event_count += 1
        details = {
            **hop,
            "seconds": (b[0] - a[0]).total_seconds(),
            "from": {"ip": a[2], "country": a[3], "city": a[4]},
            "to": {"ip": b[2], "country": b[3], "city": b[4]},
            **location_details(event),
        }
        self._emit(user, inc, new, details)

    def _expire(self, watermark: datetime) -> list[Alert]:
        for user in self._expiry.due(watermark, self._expiry_of):
            del self._last[user]
            self._incidents.pop(user, None)
        return []

    def _expiry_of(self, user: str) -> datetime | None:
        last = self._last.get(user)
        return None if last is None else last[0] + self.horizon

    def _earliest(self) -> datetime | None:
        return self._expiry.earliest()

    def forget(self, user_id: str) -> None:
        """Drop the user's latest login and incident."""
        self._last.pop(user_id, None)
        self._incidents.pop(user_id, None)

    def is_empty(self) -> bool:
        """No user's login held."""
        return not self._last

    def snapshot(self) -> ImpossibleTravelSnapshot:
        """The versioned record."""
        incidents = tuple((user, inc.to_row()) for user, inc in self._incidents.items())
        return ImpossibleTravelSnapshot(
            VERSION, self.RULE, self.clock.snapshot(), tuple(self._last.items()), incidents,
            self._expiry.snapshot(),
        )  # fmt: skip

    def _load(self, saved: object) -> None:
        record = ImpossibleTravelSnapshot.of(saved, self.RULE)
        self.clock = ShardClock.restore(record.clock)
        self._last = dict(record.last)
        self._incidents = {user: Incident.from_row(row) for user, row in record.incidents}
        self._expiry = ExpiryQueue(record.expiry)
