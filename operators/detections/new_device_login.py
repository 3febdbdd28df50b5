"""new_device_login: a successful login from a device the user never logged in from."""

from __future__ import annotations

from typing import Any

from operators.detections.history import HistoryRule
from operators.detections.params import NewDeviceLoginParams
from operators.detections.rule import INFO, location_details
from operators.records import Event


class NewDeviceLogin(HistoryRule[NewDeviceLoginParams]):
    """A success from a device outside the user's history (``operators.detections.history``)."""

    RULE, SEVERITY = "new_device_login", INFO
    PARAMS = NewDeviceLoginParams

    def _item(self, event: Event) -> str | None:
        return event.device

    def _max_items(self) -> int:
        return self.params.max_devices

    def _details(self, event: Event, item: str, known: int) -> dict[str, Any]:
        return {"device": item, "ip": event.ip, "known_devices": known, **location_details(event)}
