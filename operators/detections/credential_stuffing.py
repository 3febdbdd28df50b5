"""credential_stuffing: one source failing logins across many accounts.

Keyed by IP, so it runs where partitions meet, fed in event-time order (``operators.ordering``),
paired with password_spraying so that one IP's traffic is never both (``ip_rules``).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from operators.detections.incidents import Incident
from operators.detections.params import CredentialStuffingParams
from operators.detections.rule import CRITICAL, Reads, ThresholdRule
from operators.records import Event


class CredentialStuffing(ThresholdRule[CredentialStuffingParams]):
    """``threshold`` distinct users failing to log in from one IP within ``window``."""

    RULE, SEVERITY, SUBJECT_TYPE, READS = "credential_stuffing", CRITICAL, "ip", Reads.LOGINS
    PARAMS = CredentialStuffingParams
    DISTINCT = True

    def __init__(self, params: CredentialStuffingParams) -> None:
        super().__init__(params)
        self.yields_to: Callable[[str, datetime], bool] | None = None
        """Whether another rule holds the IP at that time (``ip_rules.IpRules`` sets it)."""

    def active(self, ip: str, ts: datetime) -> bool:
        """An incident on ``ip`` goes on at ``ts`` (within ``window`` of its last failure)."""
        inc = self._tracker.incident(ip)
        window = self.params.window
        return inc is not None and inc.window_start <= ts <= inc.window_end + window

    def _may_open(self, subject: str, ts: datetime) -> bool:
        return self.yields_to is None or not self.yields_to(subject, ts)

    def _member(self, event: Event) -> tuple[str, str | None] | None:
        if event.ip is None or not event.failed_login:
            return None
        return event.ip, event.user_id

    def _details(self, inc: Incident) -> dict[str, Any]:
        details = super()._details(inc)
        details["distinct_users"] = len(inc.members or ())
        return details
