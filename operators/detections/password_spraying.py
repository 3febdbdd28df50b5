"""password_spraying: one source trying a few passwords across many accounts.

Keyed by IP, so it runs where partitions meet, fed in event-time order (``operators.ordering``),
paired with credential_stuffing so that one IP's traffic is never both (``ip_rules``).

The split from credential_stuffing is the attempts per user: stuffing replays leaked pairs, one
or two tries per account (many users, at most ``min_per_user - 1`` each); spraying tries each
account with a handful of common passwords (most users with ``min_per_user``..``max_per_user``
tries). Early on (the first round of a spray, the first pairs of a stuffing run) the two look
alike, so the first to fire for an IP holds it: while one rule's incident on an IP goes on, the
other opens none there (``IpRules``).
"""

from __future__ import annotations

import bisect
from collections import Counter
from collections.abc import Callable
from datetime import datetime

from operators.detections.incidents import Incident, alert_id_for
from operators.detections.params import PasswordSprayingParams
from operators.detections.rule import CRITICAL, Reads, Rule, location_details
from operators.detections.snapshots import VERSION, PasswordSprayingSnapshot
from operators.expiry import ExpiryQueue
from operators.records import Alert, Event
from operators.state import ShardClock

Attempt = tuple[datetime, str, str]
"""A failed login: (time, event id, user)."""


class SprayWindow:
    """One IP's failed logins within the window, attempts per user, and its incident."""

    __slots__ = ("attempts", "incident", "users")

    def __init__(self) -> None:
        self.attempts: list[Attempt] = []
        self.users: Counter[str] = Counter()
        self.incident: Incident | None = None

    def add(self, attempt: Attempt) -> None:
        """One attempt at its place in (time, event id) order."""
        bisect.insort(self.attempts, attempt)
        self.users[attempt[2]] += 1

    def drop_before(self, horizon: datetime) -> None:
        """Forget the attempts older than ``horizon``."""
        stale = bisect.bisect_left(self.attempts, (horizon,))
        for _, _, user in self.attempts[:stale]:
            self.users[user] -= 1
            if not self.users[user]:
                del self.users[user]
        del self.attempts[:stale]


class PasswordSpraying(Rule[PasswordSprayingParams]):
    """``min_users`` users and ``min_attempts`` failed logins from one IP within ``window``, most
    users with ``min_per_user``..``max_per_user`` attempts (see the module docstring)."""

    RULE, SEVERITY, SUBJECT_TYPE, READS = "password_spraying", CRITICAL, "ip", Reads.LOGINS
    PARAMS = PasswordSprayingParams

    def __init__(self, params: PasswordSprayingParams) -> None:
        super().__init__(params)
        self._ips: dict[str, SprayWindow] = {}
        self._expiry: ExpiryQueue[str] = ExpiryQueue()
        self.yields_to: Callable[[str, datetime], bool] | None = None
        """Whether another rule holds the IP at that time (``ip_rules.IpRules`` sets it)."""

    def active(self, ip: str, ts: datetime) -> bool:
        """An incident on ``ip`` goes on at ``ts`` (within ``window`` of its last attempt)."""
        sub = self._ips.get(ip)
        inc = None if sub is None else sub.incident
        return inc is not None and inc.window_start <= ts <= inc.window_end + self.params.window

    def _check(self, event: Event, now: datetime) -> None:
        ip = event.ip
        if ip is None or not event.failed_login:
            return
        p, ts = self.params, event.ts
        sub = self._ips.get(ip)
        if sub is None:
            sub = self._ips[ip] = SprayWindow()
            self._expiry.schedule(ip, ts + p.window)
        sub.add((ts, event.event_id, event.user_id))
        sub.drop_before(sub.attempts[-1][0] - p.window)
        inc = sub.incident
        if inc is not None and self.active(ip, ts):
            inc.event_count += 1
            inc.window_start, inc.window_end = min(inc.window_start, ts), max(inc.window_end, ts)
            assert inc.members is not None, "a spraying incident counts its users"
            inc.members.add(event.user_id)
            self._emit(ip, inc, False, self._details(sub, event))
            return
        users, attempts = len(sub.users), len(sub.attempts)
        if users < p.min_users or attempts < p.min_attempts:
            return
        shaped = sum(1 for n in sub.users.values() if p.min_per_user <= n <= p.max_per_user)
        if 2 * shaped <= users or (self.yields_to is not None and self.yields_to(ip, ts)):
            return
        first = sub.attempts[0]
        inc = sub.incident = Incident(
            alert_id_for(self.RULE, ip, first[1]), first[0], sub.attempts[-1][0], attempts, now,
            set(sub.users),
        )  # fmt: skip
        self._emit(ip, inc, True, self._details(sub, event))

    def _details(self, sub: SprayWindow, event: Event) -> dict[str, object]:
        p = self.params
        per_user = sorted(sub.users.values())
        return {
            "distinct_users": len(sub.incident.members or ()) if sub.incident else len(sub.users),
            "attempts_per_user_median": per_user[len(per_user) // 2],
            "min_users": p.min_users,
            "min_attempts": p.min_attempts,
            "window_seconds": p.window.total_seconds(),
            **location_details(event),
        }

    def _expire(self, watermark: datetime) -> list[Alert]:
        for ip in self._expiry.due(watermark, self._expiry_of):
            del self._ips[ip]
        return []

    def _expiry_of(self, ip: str) -> datetime | None:
        sub = self._ips.get(ip)
        if sub is None:
            return None
        end = sub.attempts[-1][0] if sub.attempts else None
        if sub.incident is not None and (end is None or sub.incident.window_end > end):
            end = sub.incident.window_end
        return None if end is None else end + self.params.window

    def _earliest(self) -> datetime | None:
        return self._expiry.earliest()

    def forget(self, user_id: str) -> None:
        """Keyed by IP: an erased user's attempts age out with the window (as credential_stuffing)."""

    def is_empty(self) -> bool:
        """No IP held."""
        return not self._ips

    def snapshot(self) -> PasswordSprayingSnapshot:
        """The versioned record."""
        ips = tuple(
            (ip, tuple(sub.attempts), None if sub.incident is None else sub.incident.to_row())
            for ip, sub in self._ips.items()
        )
        return PasswordSprayingSnapshot(
            VERSION, self.RULE, self.clock.snapshot(), ips, self._expiry.snapshot()
        )

    def _load(self, saved: object) -> None:
        record = PasswordSprayingSnapshot.of(saved, self.RULE)
        self.clock = ShardClock.restore(record.clock)
        for ip, attempts, incident in record.ips:
            sub = self._ips[ip] = SprayWindow()
            for attempt in attempts:
                sub.add(attempt)
            sub.incident = None if incident is None else Incident.from_row(incident)
        self._expiry = ExpiryQueue(record.expiry)
