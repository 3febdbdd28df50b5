"""session_device_change: one session used from two devices or two IPs (a stolen session cookie)."""

from __future__ import annotations

from datetime import datetime

from operators.detections.incidents import Incident, alert_id_for
from operators.detections.params import SessionDeviceChangeParams
from operators.detections.rule import WARNING, Rule, location_details
from operators.detections.snapshots import VERSION, SessionDeviceChangeSnapshot, SessionSeen
from operators.expiry import ExpiryQueue
from operators.records import Alert, Event
from operators.state import ShardClock


class SeenSession:
    """The devices and IPs one session's events came from (tuples: almost always one each)."""

    __slots__ = ("changed", "devices", "events", "first", "incident", "ips", "last", "user")

    def __init__(self, user: str, ts: datetime) -> None:
        self.user = user
        self.first = self.last = ts
        self.events = 0
        self.devices: tuple[str, ...] = ()
        self.ips: tuple[str, ...] = ()
        self.changed = False  # two or more devices or IPs
        self.incident: Incident | None = None


class SessionDeviceChange(Rule[SessionDeviceChangeParams]):
    """A session (``event.session_id``, set by sessionization) whose events came from two or
    more devices, or two or more IPs (events without a device or IP say nothing).

    A successful login always starts a new session (``operators.sessions``), so logging in again
    from another device or network is never a change; a failed login is not counted either (an
    attacker's attempt on a logged-in user's account is not the user's session). One incident per
    session, its id from the session's: the alert is updated as more devices or IPs appear, and
    does not depend on which came first. A session's state is kept ``idle`` after its latest
    event (the session gap: an event after that is in another session).
    """

    RULE, SEVERITY = "session_device_change", WARNING
    PARAMS = SessionDeviceChangeParams

    def __init__(self, params: SessionDeviceChangeParams) -> None:
        super().__init__(params)
        self._sessions: dict[str, SeenSession] = {}
        self._expiry: ExpiryQueue[str] = ExpiryQueue()
        # the snapshot's rows, rebuilt only for sessions touched since the last snapshot: a
        # backlog keeps tens of thousands of sessions, and a snapshot is taken every few seconds
        self._rows: dict[str, SessionSeen] = {}
        self._dirty: set[str] = set()

    def _check(self, event: Event, now: datetime) -> None:
        session_id = event.session_id
        if session_id is None or (event.type == "login" and event.failed_login):
            return
        ts = event.ts
        seen = self._sessions.get(session_id)
        if seen is None:
            seen = self._sessions[session_id] = SeenSession(event.user_id, ts)
            self._expiry.schedule(session_id, ts + self.params.idle)
        seen.events += 1
        self._dirty.add(session_id)
        if ts > seen.last:
            seen.last = ts
        elif ts < seen.first:
            seen.first = ts
        device, ip = event.device, event.ip  # every event of every session: kept cheap
        if device is not None and device not in seen.devices:
            seen.devices = (*seen.devices, device)
            seen.changed = seen.changed or len(seen.devices) > 1
        if ip is not None and ip not in seen.ips:
            seen.ips = (*seen.ips, ip)
            seen.changed = seen.changed or len(seen.ips) > 1
        if not seen.changed:
            return
        inc = seen.incident
        new = inc is None
        if inc is None:
            alert_id = alert_id_for(self.RULE, seen.user, session_id)
            inc = seen.incident = Incident(alert_id, seen.first, seen.last, 0, now, None)
        inc.window_start, inc.window_end, inc.event_count = seen.first, seen.last, seen.events
        details = {
            "session_id": session_id,
            "devices": sorted(seen.devices),
            "ips": sorted(seen.ips),
            **location_details(event),
        }
        self._emit(seen.user, inc, new, details)

    def _expire(self, watermark: datetime) -> list[Alert]:
        for session_id in self._expiry.due(watermark, self._expiry_of):
            del self._sessions[session_id]
            self._rows.pop(session_id, None)
        return []

    def _expiry_of(self, session_id: str) -> datetime | None:
        seen = self._sessions.get(session_id)
        return None if seen is None else seen.last + self.params.idle

    def _earliest(self) -> datetime | None:
        return self._expiry.earliest()

    def forget(self, user_id: str) -> None:
        """Drop the user's sessions (rare: a scan)."""
        for session_id in [k for k, seen in self._sessions.items() if seen.user == user_id]:
            del self._sessions[session_id]
            self._rows.pop(session_id, None)

    def is_empty(self) -> bool:
        """No session held."""
        return not self._sessions

    def snapshot(self) -> SessionDeviceChangeSnapshot:
        """The versioned record."""
        rows, sessions = self._rows, self._sessions
        for key in self._dirty:
            s = sessions.get(key)
            if s is not None:
                incident = None if s.incident is None else s.incident.to_row()
                rows[key] = (s.user, s.first, s.last, s.events, s.devices, s.ips, incident)
        self._dirty.clear()
        return SessionDeviceChangeSnapshot(
            VERSION, self.RULE, self.clock.snapshot(), tuple(rows.items()), self._expiry.snapshot()
        )

    def _load(self, saved: object) -> None:
        record = SessionDeviceChangeSnapshot.of(saved, self.RULE)
        self.clock = ShardClock.restore(record.clock)
        self._rows = dict(record.sessions)
        for key, (user, first, last, events, devices, ips, incident) in record.sessions:
            seen = self._sessions[key] = SeenSession(user, first)
            seen.last, seen.events, seen.devices, seen.ips = last, events, tuple(devices), tuple(ips)
            seen.changed = len(seen.devices) > 1 or len(seen.ips) > 1
            seen.incident = None if incident is None else Incident.from_row(incident)
        self._expiry = ExpiryQueue(record.expiry)
