"""Benign user behaviour: sessions of login → page views, clicks, form submits → logout.

Users are simulated in a "natural" timeline (think times of seconds to minutes, gaps between
sessions of minutes to hours), calibrated to produce a little more than the events asked for.
The first ``count`` events in time order are kept and the timeline is stretched (never
compressed: factor ≥ 1) so the last one lands exactly at the end of the span. Stretching only
lengthens gaps, so the guarantees below, enforced in natural time, still hold:

- at most ``MAX_BENIGN_FAILURES`` failed logins per user within ``FAILURE_SPACING`` seconds
  (never a failed-login burst, hence never a brute-force success);
- think times ≥ ``MIN_THINK`` seconds (never an abnormal event rate);
- logins only from the user's usual devices and IPs (a traveller's: those of the country they
  are in), and a new device or IP only after ``SESSION_GAP`` without events (never two devices or
  IPs in one session of the pipeline);
- a traveller's first login abroad comes ``trip_gap`` (the flight and more) after their last event
  at home, so the trip implies a plausible speed and never two countries within the
  impossible-travel window; no trip when the run is shorter than ``TRIP_SPAN_FACTOR`` gaps;
- the corporate NAT address carries at most ``NAT_FAILURES_PER_HOUR`` failed logins in any hour
  (fewer than both credential stuffing's distinct users and password spraying's attempts).
"""

from __future__ import annotations

import math
import random
from typing import Any

from sim.catalog import (
    BENIGN_FAILURE,
    BUTTONS,
    EXTERNAL_REFERRERS,
    FORMS,
    PAGES,
    SITE,
    form_fields,
)
from sim.events import Sequencer, SimEvent, new_event_id
from sim.geo import distance_km
from sim.profiles import UserProfile

MAX_BENIGN_FAILURES = 2
FAILURE_SPACING = 600.0
MIN_THINK = 1.0  # < 60 events a minute: far from abnormal_event_rate (120/min)
MISTYPE_PROBABILITY = 0.04
LOGOUT_PROBABILITY = 0.8
_THINK_MEDIAN = 15.0
_THINK_SIGMA = 1.0
_THINK_MEAN = _THINK_MEDIAN * math.exp(_THINK_SIGMA**2 / 2)
_EVENTS_PER_SESSION = 1 + 11 + LOGOUT_PROBABILITY  # login, actions, logout
_OVERSHOOT = 1.25
_ATTEMPTS = 12  # intensity x 1.6 each: up to ~180x, enough for one user and one event
SESSION_GAP = 1800.0  # the pipeline's session gap (RTEP_SESSION_GAP_SECONDS default)
TRIP_GROUND_SECONDS = 2 * 3600.0  # to the airport, boarding, from the airport
TRIP_KMH = 800.0  # a jet's cruise, just under the impossible-travel default (805 km/h)
TRIP_SPAN_FACTOR = 3.0
NAT_FAILURES_PER_HOUR = 6


def trip_gap(home: str, abroad: str) -> float:
    """Seconds between a traveller's last event at home and their first login abroad."""
    return TRIP_GROUND_SECONDS + 3600.0 * distance_km(home, abroad) / TRIP_KMH


class SpanTooShort(ValueError):
    """The users cannot produce that many events in that span at a human pace."""


def benign_events(
    rng: random.Random,
    profiles: list[UserProfile],
    *,
    count: int,
    t0: float,
    span: float,
    seq: Sequencer,
) -> list[SimEvent]:
    """Exactly ``count`` benign events on ``[t0, t0 + span]``, in time order, the last at the end."""
    if count <= 0 or not profiles:
        return []
    # at least about one event per user: tiny counts otherwise draw nothing in every attempt
    intensity = _OVERSHOOT * max(count, len(profiles)) / (len(profiles) * span)
    for _ in range(_ATTEMPTS):
        events: list[SimEvent] = []
        for profile in profiles:
            _simulate_user(rng, profile, intensity=intensity, horizon=span, seq=seq, out=events)
        events = _cap_nat_failures(events, profiles)
        if len(events) >= count:
            break
        intensity *= 1.6
    else:
        raise SpanTooShort(
            f"{len(profiles)} users cannot produce {count} events in {span:.0f} s at a human "
            "pace: use more --users or a longer --span"
        )
    events.sort(key=lambda e: (e.ts, e.seq))
    del events[count:]
    stretch = span / events[-1].ts if events[-1].ts > 0 else 1.0
    for event in events:
        event.ts = t0 + event.ts * stretch
        if event.type == "logout":
            event.payload["duration"] = round(event.payload["duration"] * stretch, 3)
    events[-1].ts = t0 + span  # exactly, despite float rounding
    return events


def _cap_nat_failures(events: list[SimEvent], profiles: list[UserProfile]) -> list[SimEvent]:
    """``events`` without the NAT address's failed logins beyond ``NAT_FAILURES_PER_HOUR`` in any
    hour (natural time: stretching only thins them out). Users are simulated one by one, so the
    office's shared budget is enforced here, over all of them."""
    nat = {p.ips[0] for p in profiles if p.nat}
    failures = sorted(
        (e for e in events if e.type == "login" and e.payload.get("success") is False
         and e.payload["ip"] in nat),
        key=lambda e: (e.ts, e.seq),
    )  # fmt: skip
    kept: list[float] = []
    drop: set[int] = set()
    for failure in failures:
        if len([k for k in kept if k > failure.ts - 3600.0]) >= NAT_FAILURES_PER_HOUR:
            drop.add(failure.seq)
        else:
            kept.append(failure.ts)
    return [e for e in events if e.seq not in drop] if drop else events


def _simulate_user(
    rng: random.Random,
    profile: UserProfile,
    *,
    intensity: float,
    horizon: float,
    seq: Sequencer,
    out: list[SimEvent],
) -> None:
    """Append one user's sessions in natural time (seconds from 0) until ``horizon``."""
    cycle = _EVENTS_PER_SESSION / intensity
    think_scale = min(1.0, cycle / (2 * _EVENTS_PER_SESSION * _THINK_MEAN))
    mean_gap = cycle - _EVENTS_PER_SESSION * _THINK_MEAN * think_scale
    failures: list[float] = []
    t = -rng.uniform(0, cycle)  # start mid-life, so the total rate is steady from time 0
    user = profile.user_id
    depart, gap = math.inf, 0.0
    if profile.abroad is not None:
        gap = trip_gap(profile.country, profile.abroad)
        if TRIP_SPAN_FACTOR * gap <= horizon:
            depart = rng.uniform(0.15, 0.45) * horizon
    ips, previous, ended = profile.ips, ("", ""), -math.inf

    def emit(ts: float, kind: str, payload: dict[str, Any]) -> None:
        if ts >= 0:
            out.append(SimEvent(ts, seq(), user, kind, payload, new_event_id(rng)))

    def think() -> float:
        return max(
            MIN_THINK, rng.lognormvariate(math.log(_THINK_MEDIAN), _THINK_SIGMA) * think_scale
        )

    while t < horizon:
        if t >= depart and ips is profile.ips:
            t, ips = max(t, ended + gap), profile.abroad_ips
            if t >= horizon:
                return
        device, ip = _usual(rng, profile.devices), _usual(rng, ips)
        if t - ended < SESSION_GAP:
            device, ip = previous
        previous = (device, ip)
        login = {"userId": user, "ip": ip, "device": device}
        recent = sum(1 for f in failures if f > t - FAILURE_SPACING)
        if not profile.bot and rng.random() < MISTYPE_PROBABILITY:
            for _ in range(min(rng.choice((1, 1, 2)), MAX_BENIGN_FAILURES - recent)):
                emit(t, "login", {**login, "success": False, "failureReason": BENIGN_FAILURE})
                failures.append(t)
                t += rng.uniform(MIN_THINK + 1, 20)
        emit(t, "login", login if rng.random() < 0.2 else {**login, "success": True})
        started, page = t, "/"
        for index in range(rng.randint(2, 20)):
            t += think()
            if t >= horizon:
                return
            page = _action(rng, profile, device=device, page=page, index=index, emit=emit, t=t)
        if rng.random() < LOGOUT_PROBABILITY:
            t += think()
            if t >= horizon:
                return
            emit(t, "logout", {"userId": user, "ip": ip, "duration": round(t - started, 3)})
        ended = t
        # short breaks and long absences (> 30 min ends the session for the pipeline)
        t += max(
            5 * MIN_THINK, rng.expovariate(1 / (mean_gap * (0.3 if rng.random() < 0.7 else 2.63)))
        )


def _usual(rng: random.Random, options: tuple[str, ...]) -> str:
    """The first option most of the time, the others sometimes."""
    return options[0] if len(options) == 1 or rng.random() < 0.7 else rng.choice(options[1:])


def _action(
    rng: random.Random,
    profile: UserProfile,
    *,
    device: str,
    page: str,
    index: int,
    emit: Any,
    t: float,
) -> str:
    """Emit one in-session action at ``t``; return the page the user is on afterwards."""
    user = profile.user_id
    roll = 0.0 if profile.bot else rng.random()
    if roll < 0.6:
        target = rng.choice(PAGES)
        payload: dict[str, Any] = {"userId": user, "page": target, "device": device}
        if index == 0:
            if rng.random() < 0.6:
                payload["referrer"] = rng.choice(EXTERNAL_REFERRERS)
        else:
            payload["referrer"] = SITE + page
        emit(t, "page_view", payload)
        return target
    if roll < 0.85:
        emit(t, "button_click", {"userId": user, "buttonId": rng.choice(BUTTONS), "page": page})
        return page
    form = rng.choice(FORMS)
    emit(t, "form_submit", {"userId": user, "formId": form, "fields": form_fields(rng, form, user)})
    return page
