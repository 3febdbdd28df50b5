"""Labelled security incidents injected into benign traffic, one alert each under the contract.

Incidents are planned first (kinds and sizes, to spend the attack budget exactly), then placed on
the final benign timeline. A user-subject incident keeps ``MARGIN`` seconds clear around it: no
other incident of that user and, for bursts, no benign login of the victim, so its failures can
neither merge with other failures nor be followed by an unlabelled successful login. Each
credential-stuffing victim fails once, so stuffing never forms a per-user burst. When no real user
is free, a "ghost" account (a userId with no other traffic, as in a leaked credential list) is
the target. Successful attacker logins of the threshold rules come from the victim's home
country (a residential proxy), so only the location incidents are about location.

Every incident with a successful login or a session (``brute_force_success``,
``new_device_login``, ``impossible_travel``, ``session_device_change``) is placed where the
victim has no benign event for longer (``LONG_QUIET``: more than the travel window and the
session gap): a successful login starts a session, and the victim's own events must not join the
attacker's. ``password_spraying`` tries each of
5-8 users 3-8 times each in rounds, an attempt per user at most every ~70 s (never a per-user burst,
never the 10 users of credential stuffing). ``new_device_login`` and ``new_country_login``
labels come from replaying those history rules over the whole stream (``HistoryLabeller``).
"""

from __future__ import annotations

import bisect
import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sim.catalog import ATTACK_FAILURES, ATTACKER_DEVICES, PAGES, SHORT_DEVICES, STUFFING_FAILURES
from sim.events import Sequencer, SimEvent, iso, new_event_id
from sim.geo import IpPool, far_country, pick_country
from sim.profiles import UserProfile, user_id_for

BURST, STUFFING, BRUTE, NEW_DEVICE = (
    "failed_login_burst",
    "credential_stuffing",
    "brute_force_success",
    "new_device_login",
)
TRAVEL, NEW_COUNTRY, SPRAYING, SESSION_CHANGE = (
    "impossible_travel",
    "new_country_login",
    "password_spraying",
    "session_device_change",
)
RULES: tuple[str, ...] = (
    BURST, STUFFING, BRUTE, NEW_DEVICE, TRAVEL, NEW_COUNTRY, SPRAYING, SESSION_CHANGE,
)  # fmt: skip
_KINDS: tuple[tuple[str, int], ...] = (
    (BURST, 3), (STUFFING, 2), (BRUTE, 3), (NEW_DEVICE, 2), (TRAVEL, 2), (SPRAYING, 2),
    (SESSION_CHANGE, 2),
)  # fmt: skip
FAR_KM = 5000.0  # impossible travel: minutes between countries at least this far apart


@dataclass(frozen=True, slots=True)
class Thresholds:
    """The contract's default detection thresholds (RTEP_* settings of the pipeline)."""

    burst_count: int = 5
    burst_window: float = 60.0
    stuffing_users: int = 10
    stuffing_window: float = 300.0
    brute_window: float = 300.0
    spray_users: int = 5
    spray_attempts: int = 15
    spray_window: float = 3600.0
    spray_min_per_user: int = 3  # "most users" (more than half) with min..max tries each
    spray_max_per_user: int = 8
    travel_window: float = 1800.0
    session_gap: float = 1800.0


MARGIN = 360.0  # > every short window, so incidents of one subject never interact
LONG_QUIET = 1800.0 + MARGIN  # > the travel window and the session gap
SPRAY_MAX_USERS = 8
SPRAY_MIN_SECONDS = 600.0
_PLACEMENT_TRIES = 60


@dataclass(frozen=True, slots=True)
class Plan:
    """An incident to inject: its kind and how many messages it takes."""

    kind: str
    size: int


def plan_incidents(rng: random.Random, budget: int, th: Thresholds, span: float) -> list[Plan]:
    """Incidents whose messages add up to exactly ``budget``, of the kinds that fit in ``span``
    (a 10-minute run has no impossible travel nor session change)."""
    fit = [(k, w) for k, w in _KINDS if incident_duration(Plan(k, 0), th, span) <= span]
    kinds, weights = [k for k, _ in fit], [w for _, w in fit]
    plans: list[Plan] = []
    left = budget
    while left > 0:
        kind = rng.choices(kinds, weights)[0]
        if kind == BURST:
            size = rng.randint(th.burst_count + 1, th.burst_count + 7)
        elif kind == STUFFING:
            size = rng.randint(th.stuffing_users, 2 * th.stuffing_users)
        elif kind == BRUTE:
            size = rng.randint(th.burst_count + 1, th.burst_count + 7) + 1
        elif kind == TRAVEL:
            size = 2
        elif kind == SPRAYING:
            size = rng.randint(th.spray_attempts, 2 * th.spray_attempts)
        elif kind == SESSION_CHANGE:
            size = rng.randint(4, 8)
        else:
            size = 1
        if size > left:
            kind, size = NEW_DEVICE, 1
        plans.append(Plan(kind, size))
        left -= size
    return plans


def spray_seconds(th: Thresholds, span: float) -> float:
    """How long a password spraying incident lasts: most of its window, less in short chunks."""
    return min(th.spray_window * 0.6, max(SPRAY_MIN_SECONDS, span / 2))


def incident_duration(plan: Plan, th: Thresholds, span: float) -> float:
    """Upper bound of an incident's length in seconds."""
    if plan.kind == SPRAYING:
        return spray_seconds(th, span)
    if plan.kind == TRAVEL:
        return th.travel_window * 0.6
    if plan.kind == SESSION_CHANGE:
        return 900.0
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
        """Ghosts are numbered from ``users`` on; ``ips`` is shared with the benign users."""
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
        activity: dict[str, list[float]] = {}
        successes: dict[str, float] = {}
        for event in benign:
            activity.setdefault(event.user, []).append(event.ts)
            if event.type == "login":
                logins.setdefault(event.user, []).append(event.ts)
                if event.successful_login:
                    successes.setdefault(event.user, event.ts)
        victims = [p for p in profiles if not p.bot and not p.decoy]
        ctx = _Context(rng, logins, activity, successes, victims, seq)
        out = Placed()
        for plan in plans:
            duration = incident_duration(plan, self.th, span)
            margin = min(MARGIN, max(0.0, (span - duration) / 2))  # plans fit: duration ≤ span
            lo, hi = t0 + margin, t0 + span - duration - margin
            if plan.kind == STUFFING:
                self._stuffing(ctx, plan, lo, hi, out)
            elif plan.kind == SPRAYING:
                self._spraying(ctx, plan, lo=lo, hi=hi, span=span, out=out)
            elif plan.kind == TRAVEL:
                self._travel(ctx, lo, hi, out)
            elif plan.kind == SESSION_CHANGE:
                self._session_change(ctx, plan, lo=lo, hi=hi, duration=duration, out=out)
            elif plan.kind == NEW_DEVICE:
                self._new_device(ctx, lo, hi, t0, out)
            else:
                self._burst(ctx, plan, lo=lo, hi=hi, duration=duration, out=out)
        return out

    def _ghost(self) -> str:
        self._next_ghost += 1
        return user_id_for(self._next_ghost - 1)

    def _own(self, ctx: _Context, victim: str | None) -> tuple[str, str, str, str]:
        """(user, home country, device, IP) of a real victim, or of a new ghost when None."""
        if victim is None:
            ghost, home = self._ghost(), pick_country(ctx.rng)
            return ghost, home, ctx.rng.choice(SHORT_DEVICES), self.ips.take(home)
        profile = ctx.profiles[victim]
        return victim, profile.country, profile.devices[0], profile.ips[0]

    def _burst(
        self, ctx: _Context, plan: Plan, *, lo: float, hi: float, duration: float, out: Placed
    ) -> None:
        th, rng = self.th, ctx.rng
        brute = plan.kind == BRUTE
        failures = plan.size - (1 if brute else 0)
        quiet = LONG_QUIET if brute else 0.0  # the attacker's session: none of the victim's events
        start, victim = ctx.pick(lo, hi, duration, needs_quiet=True, quiet=quiet)
        if victim is None:
            victim, home = self._ghost(), pick_country(rng)
        else:
            home = ctx.profiles[victim].country
        ip = self.ips.take(home if brute else pick_country(rng))
        device = rng.choice(ATTACKER_DEVICES)
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
        ip, device = self.ips.take(pick_country(rng)), rng.choice(ATTACKER_DEVICES)
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
        at, victim = ctx.pick(lo, hi, 0.0, needs_history=True, quiet=LONG_QUIET)
        if victim is None:  # a ghost with one earlier login from its own device: its history
            victim, home = self._ghost(), pick_country(rng)
            seed = ctx.event(
                rng.uniform(t0, at), victim, {"userId": victim, "ip": self.ips.take(home),
                                              "device": "Safari on iOS", "success": True},
            )  # fmt: skip
            seed.attack = False
            out.events.append(seed)
            out.drop_benign += 1
        else:
            home = ctx.profiles[victim].country
        login = {"userId": victim, "ip": self.ips.take(home),
                 "device": rng.choice(ATTACKER_DEVICES), "success": True}  # fmt: skip
        out.events.append(ctx.event(at, victim, login))
        ctx.reserve(victim, at, at)

    def _spraying(
        self, ctx: _Context, plan: Plan, *, lo: float, hi: float, span: float, out: Placed
    ) -> None:
        """One IP, 5-8 users tried 3-8 times each in rounds (a user's tries ≥ ~70 s apart)."""
        th, rng = self.th, ctx.rng
        low, high = th.spray_min_per_user, th.spray_max_per_user
        users = rng.randint(th.spray_users, min(SPRAY_MAX_USERS, plan.size // low))
        tries = [low] * users
        for _ in range(plan.size - low * users):
            tries[rng.choice([i for i, n in enumerate(tries) if n < high])] += 1
        duration = rng.uniform(SPRAY_MIN_SECONDS, spray_seconds(th, span))
        start = rng.uniform(lo, max(lo, hi))
        victims = ctx.free_users(start, start + duration, users)
        while len(victims) < users:
            victims.append(self._ghost())
        ip, device = self.ips.take(pick_country(rng)), rng.choice(ATTACKER_DEVICES)
        rounds = max(tries)
        step = duration / rounds
        attempts = [
            ctx.event(
                start + r * step + (i + rng.uniform(0, 0.3)) * step / users, victim,
                {"userId": victim, "ip": ip, "device": device, "success": False,
                 "failureReason": rng.choice(ATTACK_FAILURES)},
            )
            for r in range(rounds)
            for i, victim in enumerate(victims)
            if tries[i] > r
        ]  # fmt: skip
        for victim in victims:
            mine = [a.ts for a in attempts if a.user == victim]
            ctx.reserve(victim, mine[0], mine[-1])
        out.events.extend(attempts)
        cross = _spray_threshold(attempts, th)
        out.labels.append(
            (attempts[-1], _label(SPRAYING, "ip", ip, attempts[0], attempts[-1], cross), cross)
        )

    def _travel(self, ctx: _Context, lo: float, hi: float, out: Placed) -> None:
        """The user's own login at home, then minutes later one from ≥ ``FAR_KM`` away."""
        th, rng = self.th, ctx.rng
        gap = rng.uniform(120.0, th.travel_window * 0.6)
        start, found = ctx.pick(lo, hi, gap, quiet=LONG_QUIET)
        victim, home, device, ip = self._own(ctx, found)
        first = ctx.event(
            start, victim, {"userId": victim, "ip": ip, "device": device, "success": True}
        )
        away = self.ips.take(far_country(rng, home, FAR_KM))
        second = ctx.event(start + gap, victim, {"userId": victim, "ip": away,
                                                 "device": rng.choice(ATTACKER_DEVICES),
                                                 "success": True})  # fmt: skip
        out.events.extend((first, second))
        out.labels.append((second, _label(TRAVEL, "user", victim, first, second, second), second))
        ctx.reserve(victim, start - LONG_QUIET, start + gap + LONG_QUIET)

    def _session_change(
        self, ctx: _Context, plan: Plan, *, lo: float, hi: float, duration: float, out: Placed
    ) -> None:
        """A session of the user (login, page views), continued minutes later from another
        device and IP without a login: a stolen session cookie."""
        rng = ctx.rng
        start, found = ctx.pick(lo, hi, duration, quiet=LONG_QUIET)
        victim, _, device, ip = self._own(ctx, found)
        own = rng.randint(1, plan.size - 3)
        t = start
        events = [ctx.event(t, victim, {"userId": victim, "ip": ip, "device": device,
                                        "success": True})]  # fmt: skip
        for _ in range(own):
            t += rng.uniform(10.0, 60.0)
            events.append(ctx.page_view(t, victim, rng.choice(PAGES), device))
        thief = rng.choice(ATTACKER_DEVICES)
        t += rng.uniform(30.0, 300.0)
        cross = ctx.page_view(t, victim, rng.choice(PAGES), thief)
        events.append(cross)
        for _ in range(plan.size - own - 3):
            t += rng.uniform(10.0, 60.0)
            events.append(ctx.page_view(t, victim, rng.choice(PAGES), thief))
        t += rng.uniform(10.0, 60.0)
        events.append(ctx.event(t, victim, {"userId": victim, "ip": self.ips.take(
            pick_country(rng)), "duration": round(t - start, 3)}, kind="logout"))  # fmt: skip
        out.events.extend(events)
        label = _label(SESSION_CHANGE, "user", victim, events[0], events[-1], cross)
        out.labels.append((events[-1], label, cross))
        ctx.reserve(victim, start - LONG_QUIET, t + LONG_QUIET)


def _spray_threshold(attempts: list[SimEvent], th: Thresholds) -> SimEvent:
    """The attempt at which the spraying rule's conditions first all hold: enough users and
    attempts, and more than half of the users tried ``spray_min_per_user``..``max`` times."""
    tried: Counter[str] = Counter()
    for n, attempt in enumerate(attempts, 1):
        tried[attempt.user] += 1
        shaped = sum(th.spray_min_per_user <= k <= th.spray_max_per_user for k in tried.values())
        if len(tried) >= th.spray_users and n >= th.spray_attempts and 2 * shaped > len(tried):
            return attempt
    raise AssertionError("a planned spraying incident always crosses the rule's threshold")


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

    ``logins``: benign login times per user (sorted); ``activity``: the times of all their
    benign events (sorted); ``first_success``: each user's first benign successful login;
    ``candidates``: users that may be targeted (neither bots nor decoys).
    """

    rng: random.Random
    logins: dict[str, list[float]]
    activity: dict[str, list[float]]
    first_success: dict[str, float]
    candidates: list[UserProfile]
    seq: Sequencer
    reserved: dict[str, list[tuple[float, float]]] = field(default_factory=dict)
    profiles: dict[str, UserProfile] = field(init=False)

    def __post_init__(self) -> None:
        self.profiles = {p.user_id: p for p in self.candidates}

    def event(self, ts: float, user: str, payload: dict[str, Any], kind: str = "login") -> SimEvent:
        """A new attack event (a login unless ``kind`` says otherwise)."""
        return SimEvent(ts, self.seq(), user, kind, payload, new_event_id(self.rng), attack=True)

    def page_view(self, ts: float, user: str, page: str, device: str) -> SimEvent:
        """A page view of an incident (the victim's own or the session thief's)."""
        return self.event(ts, user, {"userId": user, "page": page, "device": device}, "page_view")

    def reserve(self, user: str, start: float, end: float) -> None:
        """Keep ``MARGIN`` around ``[start, end]`` free of other incidents of ``user``."""
        self.reserved.setdefault(user, []).append((start - MARGIN, end + MARGIN))

    def _free(self, user: str, start: float, end: float) -> bool:
        return all(hi < start or lo > end for lo, hi in self.reserved.get(user, ()))

    def _quiet(self, times: list[float], start: float, end: float, margin: float) -> bool:
        i = bisect.bisect_left(times, start - margin)
        return i == len(times) or times[i] > end + margin

    def pick(
        self,
        lo: float,
        hi: float,
        duration: float,
        *,
        needs_quiet: bool = False,
        needs_history: bool = False,
        quiet: float = 0.0,
    ) -> tuple[float, str | None]:
        """A start time and a real victim meeting the conditions, or a time and None.

        ``needs_quiet``: no benign login within ``MARGIN``; ``quiet``: no benign event within
        ``quiet`` seconds (a successful attacker login starts a session of the victim's that
        none of the victim's own events may join)."""
        rng = self.rng
        start = rng.uniform(lo, max(lo, hi))
        if not self.candidates:
            return start, None
        for _ in range(_PLACEMENT_TRIES):
            start = rng.uniform(lo, max(lo, hi))
            user = rng.choice(self.candidates).user_id
            if not self._free(user, start, start + duration):
                continue
            logins = self.logins.get(user, [])
            if needs_quiet and not self._quiet(logins, start, start + duration, MARGIN):
                continue
            if quiet and not self._quiet(
                self.activity.get(user, []), start, start + duration, quiet
            ):
                continue
            if needs_history and not self.first_success.get(user, start) < start:
                continue
            return start, user
        return start, None

    def free_users(self, start: float, end: float, n: int) -> list[str]:
        """Up to ``n`` distinct real users with no incident near ``[start, end]``."""
        pool = [p.user_id for p in self.candidates if self._free(p.user_id, start, end)]
        return self.rng.sample(pool, min(n, len(pool)))


class HistoryLabeller:
    """Labels every successful login whose device (or country) is new to a user who has history:
    what the history rules ``new_device_login`` and ``new_country_login`` alert on.

    History = the values of the user's earlier successful logins, as the pipeline keeps it (its
    30-day expiry and 16-value cap never matter for simulated spans and a few values). A login
    whose value is unknown (``None``: no country) neither alerts nor joins the history.
    """

    def __init__(self, rule: str, value: Callable[[SimEvent], str | None]) -> None:
        self.rule = rule
        self._value = value
        self._seen: dict[str, set[str]] = {}

    def observe(self, event: SimEvent) -> dict[str, Any] | None:
        """The incident label if ``event`` is a login with a new value, else None."""
        if not event.successful_login:
            return None
        value = self._value(event)
        if value is None:
            return None
        seen = self._seen.get(event.user)
        if seen is None:
            self._seen[event.user] = {value}
            return None
        if value in seen:
            return None
        seen.add(value)
        return incident_label(
            self.rule, "user", event.user, first=event, last=event, cross=event,
            injected=event.attack,
        )  # fmt: skip


def history_labellers(country_of: dict[str, str]) -> tuple[HistoryLabeller, ...]:
    """The labellers of ``new_device_login`` and of ``new_country_login`` (countries of the
    addresses the simulator handed out)."""
    return (
        HistoryLabeller(NEW_DEVICE, lambda e: str(e.payload["device"])),
        HistoryLabeller(NEW_COUNTRY, lambda e: country_of.get(e.payload["ip"])),
    )
