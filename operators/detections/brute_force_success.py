"""brute_force_success: a successful login soon after a failed-login burst (account takeover)."""

from __future__ import annotations

from datetime import datetime

from operators.detections.failed_login_burst import FailedLoginBurst
from operators.detections.incidents import BurstTracker, Incident, alert_id_for
from operators.detections.params import BruteForceSuccessParams
from operators.detections.rule import CRITICAL, Reads, Rule, location_details
from operators.detections.snapshots import VERSION, BruteForceSuccessSnapshot
from operators.records import Alert, Event
from operators.state import ShardClock


class BruteForceSuccess(Rule[BruteForceSuccessParams]):
    """A success within ``window`` after a burst of the same user's failed logins.

    Tracks failed-login bursts itself (same thresholds as ``failed_login_burst``) and keeps each
    burst ``window`` after its last failure. One incident per burst: later successes within the
    window update the same alert. Its id derives from the burst's, so a replay gives the same id.
    """

    RULE, SEVERITY, READS = "brute_force_success", CRITICAL, Reads.LOGINS
    PARAMS = BruteForceSuccessParams

    def __init__(self, params: BruteForceSuccessParams) -> None:
        super().__init__(params)
        self._bursts = BurstTracker(
            FailedLoginBurst.RULE, params.burst_count, params.burst_window, False, params.window
        )
        self._hits: dict[str, Incident] = {}

    def _check(self, event: Event, now: datetime) -> None:
        if event.type != "login":
            return
        user, ts = event.user_id, event.ts
        if event.failed_login:
            self._bursts.add(user, ts, event.event_id, None, now)
            return
        burst = self._bursts.incident(user)
        if burst is None or ts < burst.window_start or ts - burst.window_end > self.params.window:
            return
        hit = self._hits.get(user)
        alert_id = alert_id_for(self.RULE, user, burst.alert_id)
        new = hit is None or hit.alert_id != alert_id
        if hit is None or new:
            hit = self._hits[user] = Incident(alert_id, burst.window_start, ts, 0, now, set())
        assert hit.members is not None
        hit.members.add(event.event_id)
        hit.window_end = max(hit.window_end, ts)
        hit.event_count = burst.event_count + len(hit.members)
        details = {
            "failed_logins": burst.event_count,
            "successful_logins": len(hit.members),
            "burst_alert_id": burst.alert_id,
            "window_seconds": self.params.window.total_seconds(),
            **location_details(event),
        }
        self._emit(user, hit, new, details)

    def _expire(self, watermark: datetime) -> list[Alert]:
        for user in self._bursts.expire(watermark):
            self._hits.pop(user, None)
        return []

    def _earliest(self) -> datetime | None:
        return self._bursts.expiry.earliest()

    def forget(self, user_id: str) -> None:
        """Drop the user's bursts and success incident."""
        self._bursts.subjects.pop(user_id, None)
        self._hits.pop(user_id, None)

    def is_empty(self) -> bool:
        """No burst remembered (hits only exist alongside their burst)."""
        return not self._bursts.subjects

    def snapshot(self) -> BruteForceSuccessSnapshot:
        """The versioned record."""
        hits = tuple((user, inc.to_row()) for user, inc in self._hits.items())
        return BruteForceSuccessSnapshot(
            VERSION, self.RULE, self.clock.snapshot(), self._bursts.snapshot(), hits
        )

    def _load(self, saved: object) -> None:
        record = BruteForceSuccessSnapshot.of(saved, self.RULE)
        self.clock = ShardClock.restore(record.clock)
        self._bursts.load(record.bursts)
        self._hits = {user: Incident.from_row(row) for user, row in record.hits}
