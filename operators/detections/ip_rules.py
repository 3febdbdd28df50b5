"""The IP-keyed rules, credential_stuffing and password_spraying, as one ordered stream's pair.

One step where partitions meet (``stuffing_in_order``) feeds both the same failed logins by IP
in event-time order. One IP's traffic must never raise both, and neither rule alone can know
whether the other will fire (a spray's first round looks like stuffing). So each failed login
goes to stuffing, then to spraying, and each rule sees the other's decision on every earlier
event: the first rule to open an incident on an IP holds it, and the other opens none there
while that incident goes on.
"""

from __future__ import annotations

from datetime import datetime
from typing import NamedTuple

from operators.detections.credential_stuffing import CredentialStuffing
from operators.detections.params import CredentialStuffingParams, PasswordSprayingParams
from operators.detections.password_spraying import PasswordSpraying
from operators.detections.rule import Reads, RuleBatch
from operators.detections.snapshots import VERSION, IpRulesSnapshot
from operators.records import Alert, Event
from operators.state import Clock


class IpParams(NamedTuple):
    """The IP-keyed rules' parameters (built from settings by ``dataflows.params.ip_params``)."""

    stuffing: CredentialStuffingParams
    spraying: PasswordSprayingParams


class IpRules:
    """credential_stuffing and password_spraying in lockstep on one stream; both rules' alerts."""

    def __init__(self, stuffing: CredentialStuffing, spraying: PasswordSpraying) -> None:
        self.stuffing, self.spraying = stuffing, spraying
        stuffing.yields_to, spraying.yields_to = spraying.active, stuffing.active

    @property
    def rules(self) -> tuple[CredentialStuffing, PasswordSpraying]:
        """Both rules, in the order each event reaches them."""
        return self.stuffing, self.spraying

    @property
    def clock(self) -> Clock:
        """Both rules' clock (``InEventTimeOrder`` sets the merged one)."""
        return self.stuffing.clock

    @clock.setter
    def clock(self, clock: Clock) -> None:
        self.stuffing.clock = self.spraying.clock = clock

    def on_batch(self, items: list[Event], now: datetime) -> list[Alert]:
        """Each failed login to stuffing then spraying, one event at a time (each rule sees the
        other's decision on every earlier event); state expires once, after the batch."""
        batch = RuleBatch.of(items)
        rules = self.rules
        for rule in rules:
            rule.begin(batch, now)
        for event in batch.read(Reads.LOGINS):  # what both rules read
            for rule in rules:
                rule.check(event, now)
        return [alert for rule in rules for alert in rule.finish(now)]

    def on_tick(self, now: datetime) -> list[Alert]:
        """Expire both rules' state."""
        self.stuffing.on_tick(now)
        self.spraying.on_tick(now)
        return []

    def next_tick(self) -> datetime | None:
        """The earlier of the two rules' expiries."""
        ticks = [t for t in (self.stuffing.next_tick(), self.spraying.next_tick()) if t]
        return min(ticks) if ticks else None

    def snapshot(self) -> IpRulesSnapshot:
        """Both rules' records."""
        return IpRulesSnapshot(VERSION, self.stuffing.snapshot(), self.spraying.snapshot())

    @classmethod
    def restore(cls, saved: object, params: IpParams) -> IpRules:
        """From ``snapshot``'s record; a stuffing step saved before spraying existed holds
        credential_stuffing's record (or its 0.2.0 tuple): spraying then starts empty."""
        stuffing_params, spraying_params = params
        if isinstance(saved, IpRulesSnapshot):
            stuffing = CredentialStuffing.restore(saved.stuffing, stuffing_params)
            spraying = PasswordSpraying.restore(saved.spraying, spraying_params)
        else:
            stuffing = CredentialStuffing.restore(saved, stuffing_params)
            spraying = PasswordSpraying(spraying_params)
        return cls(stuffing, spraying)
