"""failed_login_burst: repeated failed logins on one account (password guessing)."""

from __future__ import annotations

from operators.detections.params import FailedLoginBurstParams
from operators.detections.rule import WARNING, Reads, ThresholdRule
from operators.records import Event


class FailedLoginBurst(ThresholdRule[FailedLoginBurstParams]):
    """``threshold`` failed logins of one user within ``window``."""

    RULE, SEVERITY, READS = "failed_login_burst", WARNING, Reads.LOGINS
    PARAMS = FailedLoginBurstParams

    def _member(self, event: Event) -> tuple[str, str | None] | None:
        return (event.user_id, None) if event.failed_login else None
