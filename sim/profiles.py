"""Stable per-user traits: id, home country, usual devices, usual IPs; the two benign decoy
populations (travellers, users behind one corporate NAT).

A user's IPs are public addresses of their home country (``sim.geo``), unique per user or shared
by at most ``MAX_SHARED_IP`` users of that country (a household), so ordinary benign traffic can
never look like credential stuffing or password spraying, nor like travel. The decoys, which
detections must leave alone:

- **travellers** (``TRAVELLER_SHARE`` of the users whose home has a neighbour within
  ``TRIP_MAX_KM``): they fly to that neighbour once during a long enough run (``sim.behaviour``);
  ``abroad_ips`` are their addresses there;
- **NAT users** (``NAT_SHARE`` of the users, at least ``NAT_MIN_USERS``, none in small runs): one
  office, all of them behind the same address ``nat_ip``, mistyping passwords now and then.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from sim.catalog import BOT_AGENTS, SHORT_DEVICES, USER_AGENTS
from sim.geo import IpPool, near_country, pick_country

MAX_SHARED_IP = 3
TRAVELLER_SHARE = 0.03
TRIP_MAX_KM = 1500.0
NAT_SHARE = 0.05
NAT_MIN_USERS = 8  # fewer users than this: no NAT population
NAT_MAX_USERS = 60


@dataclass(frozen=True, slots=True)
class UserProfile:
    """One simulated user; ``devices[0]`` is the most used device.

    ``abroad`` / ``abroad_ips``: a traveller's destination and addresses there (else None / ());
    ``nat``: the user is behind the corporate NAT (``ips`` is its one address).
    """

    user_id: str
    devices: tuple[str, ...]
    ips: tuple[str, ...]
    bot: bool
    country: str
    abroad: str | None = None
    abroad_ips: tuple[str, ...] = ()
    nat: bool = False

    @property
    def decoy(self) -> bool:
        """A traveller or a NAT user: never an incident's victim, never to be alerted on."""
        return self.nat or self.abroad is not None


def user_id_for(index: int) -> str:
    """The userId of the user at ``index`` (ghost attack targets use indexes past the users)."""
    return f"user-{index:06d}"


def nat_users(users: int) -> int:
    """How many of ``users`` sit behind the corporate NAT."""
    n = min(NAT_MAX_USERS, round(NAT_SHARE * users))
    return n if n >= NAT_MIN_USERS else 0


def build_profiles(rng: random.Random, users: int, ips: IpPool) -> list[UserProfile]:
    """``users`` profiles: 1-3 devices (2% are bots with one crawler agent), 1-2 IPs of the home
    country; the last ``nat_users(users)`` are the NAT users, some others travellers."""
    profiles: list[UserProfile] = []
    shared: dict[str, list[list[str | int]]] = {}  # country -> [ip, users on it] with room left
    n_nat = nat_users(users)
    office = pick_country(rng)
    nat_ip = ips.take(office) if n_nat else ""
    for index in range(users):
        bot = rng.random() < 0.02
        if bot:
            devices: tuple[str, ...] = (rng.choice(BOT_AGENTS),)
        else:
            pool = SHORT_DEVICES if rng.random() < 0.8 else USER_AGENTS
            devices = tuple(rng.sample(pool, rng.choice((1, 1, 2, 2, 3))))
        user = user_id_for(index)
        if index >= users - n_nat:
            profiles.append(UserProfile(user, devices, (nat_ip,), bot, office, nat=True))
            continue
        country = pick_country(rng)
        user_ips = [ips.take(country)]
        slots = shared.setdefault(country, [])
        if rng.random() < 0.4:
            if slots and rng.random() < 0.5:
                slot = rng.choice(slots)
                slot[1] = int(slot[1]) + 1
                user_ips.append(str(slot[0]))
                if int(slot[1]) >= MAX_SHARED_IP:
                    slots.remove(slot)
            else:
                ip = ips.take(country)
                slots.append([ip, 1])
                user_ips.append(ip)
        abroad = near_country(country, TRIP_MAX_KM)
        if bot or abroad is None or rng.random() >= TRAVELLER_SHARE:
            profiles.append(UserProfile(user, devices, tuple(user_ips), bot, country))
            continue
        away = (ips.take(abroad),)
        profiles.append(UserProfile(user, devices, tuple(user_ips), bot, country, abroad, away))
    return profiles
