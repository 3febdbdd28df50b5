"""The IP-keyed rules, credential_stuffing and password_spraying, as one ordered stream's pair.

Each runs in its own step where partitions meet (``stuffing_in_order``, ``spraying_in_order``),
both fed the same failed logins by IP in the same event-time order. One IP's traffic must never
raise both, and neither rule alone can know whether the other will fire (a spray's first round
looks like stuffing). So each step runs both rules, in the same order on the same stream, and
emits one rule's alerts: both steps then hold the same state, and each knows exactly what the
other decided. The first rule to open an incident on an IP holds it: the other opens none there
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
    """credential_stuffing and password_spraying in lockstep, emitting ``emits``'s alerts."""

    def __init__(
        self,
        stuffing: CredentialStuffing,
        spraying: PasswordSpraying,
        emits: type[CredentialStuffing | PasswordSpraying],
    ) -> None:
        self.stuffing, self.spraying = stuffing, spraying
        stuffing.yields_to, spraying.yields_to = spraying.active, stuffing.active
        self.rule: CredentialStuffing | PasswordSpraying = (
            stuffing if emits is CredentialStuffing else spraying
        )
        """The rule whose alerts (and metrics) are this step's; the other is its rival's copy."""
        self._rival = spraying if self.rule is stuffing else stuffing

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
        rules = (self.stuffing, self.spraying)
        for rule in rules:
            rule.begin(batch, now)
        for event in batch.read(Reads.LOGINS):  # what both rules read
            for rule in rules:
                rule.check(event, now)
        stuffing, spraying = (rule.finish(now) for rule in rules)
        self._drop_rival_stats()
        return stuffing if self.rule is self.stuffing else spraying

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
        return IpRulesSnapshot(
            VERSION, self.rule.RULE, self.stuffing.snapshot(), self.spraying.snapshot()
        )

    @classmethod
    def restore(
        cls,
        saved: object,
        params: IpParams,
        emits: type[CredentialStuffing | PasswordSpraying],
    ) -> IpRules:
        """From ``snapshot``'s record; a stuffing step saved before spraying existed holds
        credential_stuffing's record (or its 0.2.0 tuple): spraying then starts empty."""
        stuffing_params, spraying_params = params
        if isinstance(saved, IpRulesSnapshot):
            stuffing = CredentialStuffing.restore(saved.stuffing, stuffing_params)
            spraying = PasswordSpraying.restore(saved.spraying, spraying_params)
        else:
            stuffing = CredentialStuffing.restore(saved, stuffing_params)
            spraying = PasswordSpraying(spraying_params)
        return cls(stuffing, spraying, emits)

    def _drop_rival_stats(self) -> None:
        """The rival's incidents are counted by its own step."""
        self._rival.stats.take()
        self._rival.stats.take_countries()
