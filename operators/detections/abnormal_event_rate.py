"""abnormal_event_rate: a user producing events faster than a human could (bot, scraper)."""

from __future__ import annotations

from operators.detections.params import AbnormalEventRateParams
from operators.detections.rule import WARNING, ThresholdRule
from operators.records import Event


class AbnormalEventRate(ThresholdRule[AbnormalEventRateParams]):
    """``threshold`` events of any type of one user within ``window``."""

    RULE, SEVERITY = "abnormal_event_rate", WARNING
    PARAMS = AbnormalEventRateParams

    def _member(self, event: Event) -> tuple[str, str | None] | None:
        return event.user_id, None
