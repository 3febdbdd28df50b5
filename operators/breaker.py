"""The rejection breaker: stop the flow when most input turns bad (a bad deploy, not bad data).

Counts valid and rejected messages in tumbling windows of ``window`` messages; when a full window's
rejected share exceeds ``max_share`` it trips. Pure: the dataflow decides what tripping does.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class BreakerParams:
    """Window size (messages) and the rejected share that trips the breaker."""

    window: int = 2000
    max_share: float = 0.5


class RejectionBreaker:
    """Tumbling-window rejected-share check."""

    __slots__ = ("_rejected", "_seen", "params")

    def __init__(self, params: BreakerParams) -> None:
        self.params = params
        self._seen = 0
        self._rejected = 0

    def observe(self, valid: int, rejected: int) -> str | None:
        """Add a batch's counts; return why the breaker trips, or None while the share is fine."""
        self._seen += valid + rejected
        self._rejected += rejected
        if self._seen < self.params.window:
            return None
        share = self._rejected / self._seen
        seen, bad = self._seen, self._rejected
        self._seen = self._rejected = 0
        if share > self.params.max_share:
            return (
                f"{bad} of the last {seen} messages were rejected ({share:.0%} > "
                f"{self.params.max_share:.0%}): an upstream producer is probably broken. Fix it, "
                "or raise RTEP_BREAKER_REJECT_SHARE; nothing was lost (rejects are in the DLQ)"
            )
        return None
