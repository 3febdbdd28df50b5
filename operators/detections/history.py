"""Login-history rules: a successful login with something the user never logged in with.

``new_device_login`` (the device) and ``new_country_login`` (the country) share it: a user's
history is what their successful logins had (failed attempts do not teach it), at most
``max_items`` of them (least recently used forgotten), dropped ``history_ttl`` after the user's
last successful login that had one. A user's first such login only seeds the history; each new
item is one incident.
"""

from __future__ import annotations

from abc import abstractmethod
from datetime import datetime, timedelta
from typing import Any, Protocol, TypeVar

from operators.detections.incidents import Incident, alert_id_for
from operators.detections.rule import Reads, Rule, RuleParams
from operators.detections.snapshots import VERSION, NewDeviceLoginSnapshot
from operators.expiry import ExpiryQueue
from operators.records import Alert, Event
from operators.state import ShardClock


class HistoryParams(RuleParams, Protocol):
    """What a history rule's parameters say: how long a history lives."""

    @property
    def history_ttl(self) -> timedelta: ...


HP = TypeVar("HP", bound=HistoryParams)


class HistoryRule(Rule[HP]):
    """A success whose ``_item`` is outside the user's history (see the module docstring)."""

    READS = Reads.LOGINS

    def __init__(self, params: HP) -> None:
        super().__init__(params)
        self._history: dict[str, dict[str, datetime]] = {}
        self._expiry: ExpiryQueue[str] = ExpiryQueue()

    @abstractmethod
    def _item(self, event: Event) -> str | None:
        """What the history remembers of a successful login (None: the login does not count)."""

    @abstractmethod
    def _max_items(self) -> int:
        """How many items a user's history keeps."""

    @abstractmethod
    def _details(self, event: Event, item: str, known: int) -> dict[str, Any]:
        """The alert's details for a login with a new ``item`` (``known`` items before it)."""

    def _check(self, event: Event, now: datetime) -> None:
        item = self._item(event)
        if item is None or not event.successful_login:
            return
        user, ts = event.user_id, event.ts
        items = self._history.get(user)
        if items is None or ts - items[next(reversed(items))] > self.params.history_ttl:
            self._history[user] = {item: ts}
        elif item in items:
            if ts > items[item]:
                del items[item]
                items[item] = ts
        else:
            inc = Incident(alert_id_for(self.RULE, user, event.event_id), ts, ts, 1, now, None)
            self._emit(user, inc, True, self._details(event, item, len(items)))
            items[item] = ts
            if len(items) > self._max_items():
                del items[next(iter(items))]
        self._expiry.schedule(user, ts + self.params.history_ttl)

    def _expire(self, watermark: datetime) -> list[Alert]:
        for user in self._expiry.due(watermark, self._expiry_of):
            del self._history[user]
        return []

    def _expiry_of(self, user: str) -> datetime | None:
        items = self._history.get(user)
        return None if items is None else items[next(reversed(items))] + self.params.history_ttl

    def _earliest(self) -> datetime | None:
        return self._expiry.earliest()

    def forget(self, user_id: str) -> None:
        """Drop the user's history."""
        self._history.pop(user_id, None)

    def is_empty(self) -> bool:
        """No user history held."""
        return not self._history

    def snapshot(self) -> NewDeviceLoginSnapshot:
        """The versioned record (the same record for every history rule: it names the rule)."""
        history = tuple((user, tuple(d.items())) for user, d in self._history.items())
        return NewDeviceLoginSnapshot(
            VERSION, self.RULE, self.clock.snapshot(), history, self._expiry.snapshot()
        )

    def _load(self, saved: object) -> None:
        record = NewDeviceLoginSnapshot.of(saved, self.RULE)
        self.clock = ShardClock.restore(record.clock)
        self._history = {user: dict(items) for user, items in record.history}
        self._expiry = ExpiryQueue(record.expiry)
