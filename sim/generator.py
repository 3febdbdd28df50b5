"""The pure simulator: configuration in, a deterministic list of Kafka messages with labels out.

No I/O and no wall clock: the same ``SimConfig`` gives byte-identical messages. A run is one
"chunk" (``generate``); ``--count 0`` is an endless series of chunks (``endless``) sharing the
users, their device history and the ghost numbering.

Within a chunk: benign events (``sim.behaviour``) and injected incidents (``sim.attacks``) are
merged in timestamp order; malformed messages and duplicates (byte-identical re-sends of a recent
valid message) are inserted at random positions. Labels ride on the message they describe; an
incident's label rides on its last event, so a consumer of the stream sees it once complete.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from itertools import count as counter
from typing import Any

from sim.attacks import (
    BRUTE,
    BURST,
    SESSION_CHANGE,
    SPRAYING,
    STUFFING,
    TRAVEL,
    Injector,
    Thresholds,
    history_labellers,
    plan_incidents,
)
from sim.behaviour import benign_events
from sim.catalog import BUTTONS, PAGES
from sim.events import Sequencer, SimEvent, iso, new_event_id
from sim.geo import IpPool
from sim.malformed import REASONS, corrupt
from sim.profiles import UserProfile, build_profiles

DUPLICATE_LOOKBACK = 2000  # a re-send repeats one of the last this-many valid messages
ENDLESS_CHUNK_SECONDS = 1200.0
USER_DECOY_RULES: tuple[str, ...] = (TRAVEL, SESSION_CHANGE, BURST, BRUTE)
NAT_DECOY_RULES: tuple[str, ...] = (SPRAYING, STUFFING)


@dataclass(frozen=True, slots=True)
class Shares:
    """Shares of the messages that are attacks, malformed, and duplicates."""

    attack: float = 0.0
    malformed: float = 0.0
    duplicate: float = 0.0

    def __post_init__(self) -> None:
        for name in ("attack", "malformed", "duplicate"):
            if not 0 <= getattr(self, name) < 1:
                raise ValueError(f"--{name}-share must be in [0, 1)")
        if self.attack + self.malformed + self.duplicate >= 1:
            raise ValueError("attack + malformed + duplicate shares must add up to less than 1")


@dataclass(frozen=True, slots=True)
class SimConfig:
    """Everything that determines a finite run's messages. ``start`` is epoch seconds."""

    count: int
    users: int
    seed: int
    start: float
    span: float
    shares: Shares = field(default_factory=Shares)
    thresholds: Thresholds = field(default_factory=Thresholds)
    population_seed: int | None = None  # the users' seed (usual IPs, devices); None: ``seed``


@dataclass(frozen=True, slots=True)
class Message:
    """One Kafka message to send, with its ground truth.

    ``kind`` is benign | attack | malformed | duplicate; ``labels`` are the JSON label records
    this message completes; ``threshold`` marks an event at which some incident crosses its rule.
    """

    ts: float
    key: bytes
    value: bytes
    kind: str
    labels: tuple[dict[str, Any], ...] = ()
    event_id: str | None = None
    threshold: bool = False


class Simulator:
    """Users and cross-chunk state; ``chunk`` produces one stretch of traffic."""

    def __init__(self, users: int, seed: int, thresholds: Thresholds | None = None) -> None:
        if users < 1:
            raise ValueError("--users must be at least 1")
        rng = random.Random(f"rtep-sim:{seed}:users")
        self.ips = IpPool(random.Random(f"rtep-sim:{seed}:ips"))
        self.profiles: list[UserProfile] = build_profiles(rng, users, self.ips)
        self.thresholds = thresholds or Thresholds()
        self.injector = Injector(users, self.ips, self.thresholds)
        self.labellers = history_labellers(self.ips.country_of)
        self.seq = Sequencer()

    def chunk(
        self, rng: random.Random, count: int, t0: float, span: float, shares: Shares
    ) -> list[Message]:
        """Exactly ``count`` messages with timestamps on ``[t0, t0 + span]``, in send order."""
        n_mal = round(shares.malformed * count)
        n_dup = round(shares.duplicate * count)
        n_valid = count - n_mal - n_dup
        if n_valid <= 0:
            n_mal, n_dup, n_valid = count, 0, 0
        n_att = min(round(shares.attack * count), n_valid)
        plans = plan_incidents(rng, n_att, self.thresholds, span)
        benign = benign_events(
            rng, self.profiles, count=n_valid - n_att, t0=t0, span=span, seq=self.seq
        )
        placed = self.injector.place(
            rng, plans=plans, benign=benign, profiles=self.profiles, t0=t0, span=span, seq=self.seq
        )
        if placed.drop_benign:
            del benign[len(benign) - placed.drop_benign :]
        valid = sorted(benign + placed.events, key=lambda e: (e.ts, e.seq))
        messages = self._encode(valid, placed.labels)
        if messages:
            last = messages[-1]
            messages[-1] = replace(last, labels=(*last.labels, *self.decoy_labels()))
        return self._with_extras(rng, messages, n_mal=n_mal, n_dup=n_dup, t0=t0, end=t0 + span)

    def decoy_labels(self) -> list[dict[str, Any]]:
        """The benign decoys (travellers, NAT users and the NAT address) and the rules that must
        not alert on them; they ride on a chunk's last message."""
        out = [
            {"kind": "decoy", "population": "nat" if p.nat else "traveller",
             "subject_type": "user", "subject": p.user_id, "rules": list(USER_DECOY_RULES)}
            for p in self.profiles
            if p.decoy
        ]  # fmt: skip
        for ip in sorted({p.ips[0] for p in self.profiles if p.nat}):
            out.append({"kind": "decoy", "population": "nat", "subject_type": "ip",
                        "subject": ip, "rules": list(NAT_DECOY_RULES)})  # fmt: skip
        return out

    def _encode(
        self,
        valid: list[SimEvent],
        incidents: list[tuple[SimEvent, dict[str, Any], SimEvent]],
    ) -> list[Message]:
        riding: dict[int, list[dict[str, Any]]] = {}
        crossing = {cross.seq for _, _, cross in incidents}
        for last, label, _ in incidents:
            riding.setdefault(last.seq, []).append(label)
        out: list[Message] = []
        for event in valid:
            labels = riding.get(event.seq, [])
            history = [x for x in (lab.observe(event) for lab in self.labellers) if x is not None]
            labels.extend(history)
            out.append(
                Message(
                    event.ts,
                    event.user.encode(),
                    event.encode(),
                    "attack" if event.attack else "benign",
                    tuple(labels),
                    event.event_id,
                    event.seq in crossing or bool(history),
                )
            )
        return out

    def _with_extras(
        self,
        rng: random.Random,
        valid: list[Message],
        *,
        n_mal: int,
        n_dup: int,
        t0: float,
        end: float,
    ) -> list[Message]:
        """Insert ``n_mal`` malformed messages and ``n_dup`` duplicates at random positions."""
        order = list(REASONS)
        rng.shuffle(order)  # the first len(REASONS) malformed messages cover every reason
        extras: list[tuple[int, int, Message]] = []
        for index in range(n_mal + n_dup):
            duplicate = index >= n_mal
            pos = rng.randint(1 if duplicate else 0, len(valid))
            ts = valid[pos - 1].ts if pos else t0
            if duplicate:
                src = valid[rng.randrange(max(0, pos - DUPLICATE_LOOKBACK), pos)]
                label = {"kind": "duplicate", "eventId": src.event_id}
                msg = Message(ts, src.key, src.value, "duplicate", (label,), src.event_id)
            else:
                reason = order[index] if index < len(order) else rng.choice(REASONS)
                msg = self._malformed(rng, reason, ts, end)
            extras.append((pos, index, msg))
        extras.sort(key=lambda e: (e[0], e[1]))
        out: list[Message] = []
        at = 0
        for pos, _, msg in extras:
            out.extend(valid[at:pos])
            at = pos
            out.append(msg)
        out.extend(valid[at:])
        return out

    def _malformed(self, rng: random.Random, reason: str, ts: float, end: float) -> Message:
        profile = rng.choice(self.profiles)
        user = profile.user_id
        kind = rng.choice(("page_view", "button_click", "login"))
        if kind == "page_view":
            payload: dict[str, Any] = {"userId": user, "page": rng.choice(PAGES),
                                       "device": profile.devices[0]}  # fmt: skip
        elif kind == "button_click":
            payload = {"userId": user, "buttonId": rng.choice(BUTTONS), "page": rng.choice(PAGES)}
        else:
            payload = {"userId": user, "ip": profile.ips[0], "device": profile.devices[0],
                       "success": True}  # fmt: skip
        event = {
            "eventId": new_event_id(rng),
            "type": kind,
            "timestamp": iso(ts),
            "payload": payload,
        }
        value = corrupt(reason, rng, event, end)
        label = {
            "kind": "malformed",
            "reason": reason,
            "key": user,
            "sha256": hashlib.sha256(value).hexdigest(),
        }
        return Message(ts, user.encode(), value, "malformed", (label,))


def generate(config: SimConfig) -> list[Message]:
    """The messages of a finite run, in send order (deterministic for ``config``)."""
    population = config.seed if config.population_seed is None else config.population_seed
    sim = Simulator(config.users, population, config.thresholds)
    rng = random.Random(f"rtep-sim:{config.seed}:chunk:0")
    return sim.chunk(rng, config.count, config.start, config.span, config.shares)


def endless(
    users: int,
    seed: int,
    *,
    start: float,
    rate: float,
    shares: Shares,
    thresholds: Thresholds | None = None,
    chunk_seconds: float = ENDLESS_CHUNK_SECONDS,
    population_seed: int | None = None,
) -> Iterator[Message]:
    """``rate`` messages per simulated second from ``start`` on, without end (``--count 0``)."""
    sim = Simulator(users, seed if population_seed is None else population_seed, thresholds)
    per_chunk = max(1, round(rate * chunk_seconds))
    for index in counter():
        rng = random.Random(f"rtep-sim:{seed}:chunk:{index}")
        yield from sim.chunk(rng, per_chunk, start + index * chunk_seconds, chunk_seconds, shares)
