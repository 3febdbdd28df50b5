"""new_device_login: a successful login from a device the user never logged in from."""

from __future__ import annotations

from datetime import datetime

from operators.detections.incidents import Incident, alert_id_for
from operators.detections.params import NewDeviceLoginParams
from operators.detections.rule import INFO, Reads, Rule
from operators.detections.snapshots import VERSION, NewDeviceLoginSnapshot
from operators.expiry import ExpiryQueue
from operators.records import Alert, Event
from operators.state import ShardClock


class NewDeviceLogin(Rule[NewDeviceLoginParams]):
    """A success from a device outside the user's history.

    History = devices of the user's successful logins (failed attempts do not teach it), at most
    ``max_devices`` (least recently used forgotten), dropped ``history_ttl`` after the user's last
    successful login. A user's first login only seeds the history. Each new device is one incident.
    """

    RULE, SEVERITY, READS = "new_device_login", INFO, Reads.LOGINS
    PARAMS = NewDeviceLoginParams

    def __init__(self, params: NewDeviceLoginParams) -> None:
        super().__init__(params)
        self._history: dict[str, dict[str, datetime]] = {}
        self._expiry: ExpiryQueue[str] = ExpiryQueue()

    def _check(self, event: Event, now: datetime) -> None:
        device = event.device
        if device is None or not event.successful_login:
            return
        user, ts = event.user_id, event.ts
        devices = self._history.get(user)
        if devices is None or ts - devices[next(reversed(devices))] > self.params.history_ttl:
            self._history[user] = {device: ts}
        elif device in devices:
            if ts > devices[device]:
                del devices[device]
                devices[device] = ts
        else:
            inc = Incident(alert_id_for(self.RULE, user, event.event_id), ts, ts, 1, now, None)
            details = {"device": device, "ip": event.ip, "known_devices": len(devices)}
            self._emit(user, inc, True, details)
            devices[device] = ts
            if len(devices) > self.params.max_devices:
                del devices[next(iter(devices))]
        self._expiry.schedule(user, ts + self.params.history_ttl)

    def _expire(self, watermark: datetime) -> list[Alert]:
        for user in self._expiry.due(watermark, self._expiry_of):
            del self._history[user]
        return []

    def _expiry_of(self, user: str) -> datetime | None:
        devices = self._history.get(user)
        return (
            None if devices is None else devices[next(reversed(devices))] + self.params.history_ttl
        )

    def _earliest(self) -> datetime | None:
        return self._expiry.earliest()

    def forget(self, user_id: str) -> None:
        """Drop the user's device history."""
        self._history.pop(user_id, None)

    def is_empty(self) -> bool:
        """No user history held."""
        return not self._history

    def snapshot(self) -> NewDeviceLoginSnapshot:
        """The versioned record."""
        history = tuple((user, tuple(d.items())) for user, d in self._history.items())
        return NewDeviceLoginSnapshot(
            VERSION, self.RULE, self.clock.snapshot(), history, self._expiry.snapshot()
        )

    def _load(self, saved: object) -> None:
        record = NewDeviceLoginSnapshot.of(saved, self.RULE)
        self.clock = ShardClock.restore(record.clock)
        self._history = {user: dict(devices) for user, devices in record.history}
        self._expiry = ExpiryQueue(record.expiry)
