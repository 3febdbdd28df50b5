"""Labelled security incidents injected into benign traffic, one alert each under the contract.

Incidents are planned first (kinds and sizes, to spend the attack budget exactly), then placed on
the final benign timeline. A user-subject incident keeps ``MARGIN`` seconds clear around it: no
other incident of that user and, for bursts, no benign login of the victim, so its failures can
neither merge with other failures nor be followed by an unlabelled successful login. Each
credential-stuffing victim fails once, so stuffing never forms a per-user burst. When no real user
is free, a "ghost" account (a userId with no other traffic, as in a leaked credential list) is
the target. ``new_device_login`` labels come from ``NewDeviceLabeller`` over the whole stream.
"""

from __future__ import annotations

import bisect
import random
from dataclasses import dataclass, field
from typing import Any

from sim.catalog import ATTACK_FAILURES, ATTACKER_DEVICES, STUFFING_FAILURES
from sim.events import Sequencer, SimEvent, iso, new_event_id
from sim.profiles import IpPool, UserProfile, user_id_for

BURST, STUFFING, BRUTE, NEW_DEVICE = (
    "failed_login_burst",
    "credential_stuffing",
    "brute_force_success",
    "new_device_login",
)
RULES: tuple[str, ...] = (BURST, STUFFING, BRUTE, NEW_DEVICE)
THRESHOLD_RULES: tuple[str, ...] = (BURST, STUFFING, BRUTE)


@dataclass(frozen=True, slots=True)
class Thresholds:
    """The contract's default detection thresholds (RTEP_* settings of the pipeline)."""

    burst_count: int = 5
    burst_window: float = 60.0
    stuffing_users: int = 10
    stuffing_window: float = 300.0
    brute_window: float = 300.0


MARGIN = 360.0  # > every window, so incidents of one subject never interact
_PLACEMENT_TRIES = 60


@dataclass(frozen=True, slots=True)
class Plan:
    """An incident to inject: its kind and how many messages it takes."""

    kind: str
    size: int


def plan_incidents(rng: random.Random, budget: int, th: Thresholds) -> list[Plan]:
    """Incidents whose messages add up to exactly ``budget``."""
    plans: list[Plan] = []
    left = budget
    while left > 0:
        kind = rng.choices((BURST, STUFFING, BRUTE, NEW_DEVICE), (3, 2, 3, 2))[0]
        if kind == BURST:
            size = rng.randint(th.burst_count + 1, th.burst_count + 7)
        elif kind == STUFFING:
            size = rng.randint(th.stuffing_users, 2 * th.stuffing_users)
        elif kind == BRUTE:
            size = rng.randint(th.burst_count + 1, th.burst_count + 7) + 1
        else:
            size = 1
        if size > left:
            kind, size = NEW_DEVICE, 1
        plans.append(Plan(kind, size))
        left -= size
    return plans


def incident_duration(plan: Plan, th: Thresholds) -> float:
    """Upper bound of an incident's length in seconds."""
    if plan.kind == STUFFING:
        return th.stuffing_window * 0.8
    if plan.kind == BRUTE:
        return th.burst_window * 0.85 + th.brute_window * 0.8
    if plan.kind == BURST:
        return th.burst_window * 0.85
    return 0.0


@dataclass
class Placed:
    """Injected events, incident labels (threshold rules), and benign events to drop."""

    events: list[SimEvent] = field(default_factory=list)
    labels: list[tuple[SimEvent, dict[str, Any], SimEvent]] = field(default_factory=list)
    drop_benign: int = 0


class Injector:
    """Places planned incidents on a benign timeline; keeps ghost numbering across chunks."""

    def __init__(self, users: int, ips: IpPool, th: Thresholds) -> None:
        self.th = th
        self.ips = ips
        self._next_ghost = users

    def place(
        self,
        rng: random.Random,
        *,
        plans: list[Plan],
        benign: list[SimEvent],
        profiles: list[UserProfile],
        t0: float,
        span: float,
        seq: Sequencer,
    ) -> Placed:
        """Turn ``plans`` into events on ``[t0, t0 + span]`` (attack events only)."""
        logins: dict[str, list[float]] = {}
        successes: dict[str, float] = {}
        for event in benign:
            if event.type == "login":
                logins.setdefault(event.user, []).append(event.ts)
                if event.successful_login:
                    successes.setdefault(event.user, event.ts)
        ctx = _Context(rng, logins, successes, [p for p in profiles if not p.bot], seq)
        out = Placed()
        for plan in plans:
            duration = incident_duration(plan, self.th)
            margin = min(MARGIN, max(0.0, (span - duration) / 2))
            if span < duration:
                raise ValueError(f"--span {span:.0f}s is too short for attacks (need ≥ 600 s)")
            lo, hi = t0 + margin, t0 + span - duration - margin
            if plan.kind == STUFFING:
                self._stuffing(ctx, plan, lo, hi, out)
            elif plan.kind == NEW_DEVICE:
                self._new_device(ctx, lo, hi, t0, out)
            else:
                self._burst(ctx, plan, lo, hi, out)
        return out

    def _ghost(self) -> str:
        self._next_ghost += 1
        return user_id_for(self._next_ghost - 1)

    def _burst(self, ctx: _Context, plan: Plan, lo: float, hi: float, out: Placed) -> None:
        th, rng = self.th, ctx.rng
        brute = plan.kind == BRUTE
        failures = plan.size - (1 if brute else 0)
        duration = incident_duration(plan, th)
        start, victim = ctx.pick(lo, hi, duration, needs_quiet=True)
        if victim is None:
            victim = self._ghost()
        ip, device = self.ips.take(attacker=True), rng.choice(ATTACKER_DEVICES)
        span = rng.uniform(th.burst_window * 0.15, th.burst_window * 0.85)
        times = sorted(
            [start, start + span, *(start + rng.uniform(0, span) for _ in range(failures - 2))]
        )
        base = {"userId": victim, "ip": ip, "device": device}
        fails = [
            ctx.event(
                t, victim, {**base, "success": False, "failureReason": rng.choice(ATTACK_FAILURES)}
            )
            for t in times
        ]
        out.events.extend(fails)
        cross = fails[th.burst_count - 1]
        out.labels.append(
            (fails[-1], _label(BURST, "user", victim, fails[0], fails[-1], cross), cross)
        )
        if brute:
            won = ctx.event(
                times[-1] + rng.uniform(5, th.brute_window * 0.8), victim, {**base, "success": True}
            )
            out.events.append(won)
            out.labels.append((won, _label(BRUTE, "user", victim, fails[0], won, won), won))
        ctx.reserve(victim, times[0], out.events[-1].ts)

    def _stuffing(self, ctx: _Context, plan: Plan, lo: float, hi: float, out: Placed) -> None:
        th, rng = self.th, ctx.rng
        duration = rng.uniform(th.stuffing_window * 0.2, th.stuffing_window * 0.8)
        start = rng.uniform(lo, max(lo, hi))
        victims = ctx.free_users(start, start + duration, plan.size)
        while len(victims) < plan.size:
            victims.append(self._ghost())
        ip, device = self.ips.take(attacker=True), rng.choice(ATTACKER_DEVICES)
        times = sorted(
            [
                start,
                start + duration,
                *(start + rng.uniform(0, duration) for _ in range(plan.size - 2)),
            ]
        )
        tries = [
            ctx.event(t, v, {"userId": v, "ip": ip, "device": device, "success": False,
                             "failureReason": rng.choice(STUFFING_FAILURES)})
            for t, v in zip(times, victims, strict=True)
        ]  # fmt: skip
        for attempt in tries:
            ctx.reserve(attempt.user, attempt.ts, attempt.ts)
        out.events.extend(tries)
        cross = tries[th.stuffing_users - 1]
        out.labels.append(
            (tries[-1], _label(STUFFING, "ip", ip, tries[0], tries[-1], cross), cross)
        )

    def _new_device(self, ctx: _Context, lo: float, hi: float, t0: float, out: Placed) -> None:
        rng = ctx.rng
        at, victim = ctx.pick(lo, hi, 0.0, needs_history=True)
        if victim is None:  # a ghost with one earlier login from its own device: its history
            victim = self._ghost()
            seed = ctx.event(
                rng.uniform(t0, at), victim, {"userId": victim, "ip": self.ips.take(),
                                              "device": "Safari on iOS", "success": True},
            )  # fmt: skip
            seed.attack = False
            out.events.append(seed)
            out.drop_benign += 1
        login = {"userId": victim, "ip": self.ips.take(attacker=True),
                 "device": rng.choice(ATTACKER_DEVICES), "success": True}  # fmt: skip
        out.events.append(ctx.event(at, victim, login))
        ctx.reserve(victim, at, at)


def _label(rule: str, subject_type: str, subject: str, *events: SimEvent) -> dict[str, Any]:
    first, last, cross = events
    return incident_label(
        rule, subject_type, subject, first=first, last=last, cross=cross, injected=True
    )


def incident_label(
    rule: str,
    subject_type: str,
    subject: str,
    *,
    first: SimEvent,
    last: SimEvent,
    cross: SimEvent,
    injected: bool,
) -> dict[str, Any]:
    """The ground-truth record of one incident (see docs/simulator.md)."""
    return {
        "kind": "incident",
        "rule": rule,
        "subject_type": subject_type,
        "subject": subject,
        "first_event_id": first.event_id,
        "last_event_id": last.event_id,
        "first_ts": iso(first.ts),
        "last_ts": iso(last.ts),
        "threshold_event_id": cross.event_id,
        "threshold_ts": iso(cross.ts),
        "injected": injected,
    }


@dataclass
class _Context:
    """Victim selection with per-user reservations, for one chunk.

    ``logins``: benign login times per user (sorted); ``first_success``: each user's first
    benign successful login; ``candidates``: users that may be targeted (not bots).
    """

    rng: random.Random
    logins: dict[str, list[float]]
    first_success: dict[str, float]
    candidates: list[UserProfile]
    seq: Sequencer
    reserved: dict[str, list[tuple[float, float]]] = field(default_factory=dict)

    def event(self, ts: float, user: str, payload: dict[str, Any]) -> SimEvent:
        """A new attack login event."""
        return SimEvent(ts, self.seq(), user, "login", payload, new_event_id(self.rng), attack=True)

    def reserve(self, user: str, start: float, end: float) -> None:
        """Keep ``MARGIN`` around ``[start, end]`` free of other incidents of ``user``."""
        self.reserved.setdefault(user, []).append((start - MARGIN, end + MARGIN))

    def _free(self, user: str, start: float, end: float) -> bool:
        return all(hi < start or lo > end for lo, hi in self.reserved.get(user, ()))

    def _quiet(self, user: str, start: float, end: float) -> bool:
        times = self.logins.get(user, [])
        i = bisect.bisect_left(times, start - MARGIN)
        return i == len(times) or times[i] > end + MARGIN

    def pick(
        self,
        lo: float,
        hi: float,
        duration: float,
        needs_quiet: bool = False,
        needs_history: bool = False,
    ) -> tuple[float, str | None]:
        """A start time and a real victim meeting the conditions, or a time and None."""
        rng = self.rng
        start = rng.uniform(lo, max(lo, hi))
        if not self.candidates:
            return start, None
        for _ in range(_PLACEMENT_TRIES):
            start = rng.uniform(lo, max(lo, hi))
            user = rng.choice(self.candidates).user_id
            if not self._free(user, start, start + duration):
                continue
            if needs_quiet and not self._quiet(user, start, start + duration):
                continue
            if needs_history and not self.first_success.get(user, start) < start:
                continue
            return start, user
        return start, None

    def free_users(self, start: float, end: float, n: int) -> list[str]:
        """Up to ``n`` distinct real users with no incident near ``[start, end]``."""
        pool = [p.user_id for p in self.candidates if self._free(p.user_id, start, end)]
        return self.rng.sample(pool, min(n, len(pool)))


class NewDeviceLabeller:
    """Labels every successful login from a device new to a user who has history (the rule).

    History = devices of the user's earlier successful logins, as the pipeline keeps it (its
    30-day expiry and 16-device cap never matter for simulated spans and 1-3 devices).
    """

    def __init__(self) -> None:
        self._seen: dict[str, set[str]] = {}

    def observe(self, event: SimEvent) -> dict[str, Any] | None:
        """The incident label if ``event`` is a new-device login, else None."""
        if not event.successful_login:
            return None
        device = event.payload["device"]
        seen = self._seen.get(event.user)
        if seen is None:
            self._seen[event.user] = {device}
            return None
        if device in seen:
            return None
        seen.add(device)
        return incident_label(
            NEW_DEVICE, "user", event.user, first=event, last=event, cross=event,
            injected=event.attack,
        )  # fmt: skip
