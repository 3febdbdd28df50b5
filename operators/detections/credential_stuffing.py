"""credential_stuffing: one source failing logins across many accounts.

Keyed by IP, so it runs where partitions meet, fed in event-time order (``operators.ordering``).
"""

from __future__ import annotations

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

    def _member(self, event: Event) -> tuple[str, str | None] | None:
        if event.ip is None or not event.failed_login:
            return None
        return event.ip, event.user_id

    def _details(self, inc: Incident) -> dict[str, Any]:
        details = super()._details(inc)
        details["distinct_users"] = len(inc.members or ())
        return details
