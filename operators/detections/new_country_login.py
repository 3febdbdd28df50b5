"""new_country_login: a successful login from a country the user never logged in from."""

from __future__ import annotations

from typing import Any

from operators.detections.history import HistoryRule
from operators.detections.params import NewCountryLoginParams
from operators.detections.rule import INFO, location_details
from operators.records import Event


class NewCountryLogin(HistoryRule[NewCountryLoginParams]):
    """A success from a country outside the user's history (``operators.detections.history``);
    logins without a known country (private or unknown addresses) neither alert nor teach it."""

    RULE, SEVERITY = "new_country_login", INFO
    PARAMS = NewCountryLoginParams

    def _item(self, event: Event) -> str | None:
        return event.country

    def _max_items(self) -> int:
        return self.params.max_countries

    def _details(self, event: Event, item: str, known: int) -> dict[str, Any]:
        return {"ip": event.ip, "known_countries": known, **location_details(event)}
