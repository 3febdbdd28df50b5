"""Stable per-user traits: id, usual devices, usual IPs.

IPs are unique per user or shared by at most ``MAX_SHARED_IP`` users (a household, an office), so
benign traffic can never look like credential stuffing. Attacker IPs come from other first octets
than benign ones, so they never collide.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from sim.catalog import BOT_AGENTS, SHORT_DEVICES, USER_AGENTS

MAX_SHARED_IP = 3
_BENIGN_OCTETS = (24, 31, 62, 71, 73, 81, 86, 92, 98, 109, 151, 176, 188, 213)
_ATTACKER_OCTETS = (5, 45, 91, 185, 193, 194)


@dataclass(frozen=True, slots=True)
class UserProfile:
    """One simulated user; ``devices[0]`` is the most used device."""

    user_id: str
    devices: tuple[str, ...]
    ips: tuple[str, ...]
    bot: bool


def user_id_for(index: int) -> str:
    """The userId of the user at ``index`` (ghost attack targets use indexes past the users)."""
    return f"user-{index:06d}"


class IpPool:
    """Hands out distinct IPv4 addresses from disjoint benign / attacker ranges."""

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng
        self._used: set[str] = set()

    def take(self, attacker: bool = False) -> str:
        """A fresh address never handed out before."""
        octets = _ATTACKER_OCTETS if attacker else _BENIGN_OCTETS
        while True:
            rng = self._rng
            ip = f"{rng.choice(octets)}.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"
            if ip not in self._used:
                self._used.add(ip)
                return ip


def build_profiles(rng: random.Random, users: int, ips: IpPool) -> list[UserProfile]:
    """``users`` profiles: 1-3 devices (2% are bots with one crawler agent), 1-2 IPs."""
    profiles: list[UserProfile] = []
    shared: list[list[str | int]] = []  # [ip, users on it] with room left
    for index in range(users):
        bot = rng.random() < 0.02
        if bot:
            devices: tuple[str, ...] = (rng.choice(BOT_AGENTS),)
        else:
            pool = SHORT_DEVICES if rng.random() < 0.8 else USER_AGENTS
            devices = tuple(rng.sample(pool, rng.choice((1, 1, 2, 2, 3))))
        user_ips = [ips.take()]
        if rng.random() < 0.4:
            if shared and rng.random() < 0.5:
                slot = rng.choice(shared)
                slot[1] = int(slot[1]) + 1
                user_ips.append(str(slot[0]))
                if int(slot[1]) >= MAX_SHARED_IP:
                    shared.remove(slot)
            else:
                ip = ips.take()
                shared.append([ip, 1])
                user_ips.append(ip)
        profiles.append(UserProfile(user_id_for(index), devices, tuple(user_ips), bot))
    return profiles
