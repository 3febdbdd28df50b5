"""The simulator's pure generator: deterministic, threshold-safe benign traffic, exact labels.

The detection rules are re-implemented here from the contract's wording (a small reference, not
the pipeline's code), so a labelled incident is checked against the definition, not against the
generator's own bookkeeping. Countries come from looking the addresses up in geoip2fast's data
(the pipeline's default) here, not from the simulator: an address that does not resolve to the
country it was drawn for shows.
"""

from __future__ import annotations

import hashlib
from collections import Counter, defaultdict, deque
from collections.abc import Iterable
from datetime import UTC, datetime
from functools import cache
from importlib import resources
from itertools import pairwise
from typing import Any

import orjson
import pytest
from geoip2fast import GeoIP2Fast
from hypothesis import given, settings
from hypothesis import strategies as st

from sim.generator import Message, Shares, SimConfig, Simulator, generate
from sim.malformed import REASONS
from sim.producer import Tally
from sim.timeline import Timeline

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC).timestamp()
BURST_N, BURST_W = 5, 60.0
STUFF_N, STUFF_W = 10, 300.0
BRUTE_W = 300.0
RATE_LIMIT, RATE_W = 120, 60.0
TRAVEL_W = 1800.0
SPRAY_USERS, SPRAY_ATTEMPTS, SPRAY_W, SPRAY_PER_USER = 5, 15, 3600.0, (3, 8)
SESSION_GAP = 1800.0


@cache
def _geo() -> GeoIP2Fast:
    return GeoIP2Fast(
        geoip2fast_data_file=str(resources.files("geoip2fast") / "geoip2fast-asn-ipv6.dat.gz")
    )


@cache
def country(ip: str) -> str | None:
    found = _geo().lookup(ip)
    code = found.country_code
    return None if found.is_private or len(code) != 2 or not code.isalpha() else code


def config(**overrides: Any) -> SimConfig:
    base: dict[str, Any] = {
        "count": 6000, "users": 150, "seed": 7, "start": START, "span": 3 * 3600.0,
        "shares": Shares(attack=0.05, malformed=0.03, duplicate=0.02),
    }  # fmt: skip
    base.update(overrides)
    return SimConfig(**base)


def valid_events(messages: Iterable[Message]) -> list[dict[str, Any]]:
    """Distinct valid events in send order, with the timestamp parsed (epoch seconds)."""
    out = []
    for msg in messages:
        if msg.kind in ("benign", "attack"):
            event = orjson.loads(msg.value)
            event["ts"] = datetime.fromisoformat(event["timestamp"]).timestamp()
            out.append(event)
    return out


def _failed(e: dict[str, Any]) -> bool:
    return e["type"] == "login" and e["payload"].get("success", True) is False


def _succeeded(e: dict[str, Any]) -> bool:
    return e["type"] == "login" and e["payload"].get("success", True) is not False


def _threshold_incidents(
    events: list[dict[str, Any]], subject: str, member: str, need: int, window: float
) -> list[tuple[str, dict[str, Any], dict[str, Any], dict[str, Any]]]:
    """Contract semantics: ≥ need (distinct members) within window opens an incident; a
    qualifying event within window of the incident's last one extends it; after that, a new one.
    Returns (subject, first, threshold, last) per incident."""
    by_subject: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for e in events:
        by_subject[e["payload"][subject]].append(e)
    found = []
    for key, items in by_subject.items():
        window_q: deque[dict[str, Any]] = deque()
        current: list[Any] | None = None
        for e in sorted(items, key=lambda x: x["ts"]):
            if current is not None and e["ts"] - current[3]["ts"] <= window:
                current[3] = e
                continue
            current = None
            window_q.append(e)
            while window_q[0]["ts"] < e["ts"] - window:
                window_q.popleft()
            if len({x["payload"][member] if member else x["eventId"] for x in window_q}) >= need:
                current = [key, window_q[0], e, e]
                found.append(current)
                window_q.clear()
    return [tuple(c) for c in found]


def reference_incidents(events: list[dict[str, Any]]) -> set[tuple[str, str, str, str]]:
    """(rule, subject, first_event_id, threshold_event_id) of every incident in ``events``."""
    failures = [e for e in events if _failed(e)]
    out: set[tuple[str, str, str, str]] = set()
    bursts = _threshold_incidents(failures, "userId", "", BURST_N, BURST_W)
    for user, first, cross, _ in bursts:
        out.add(("failed_login_burst", user, first["eventId"], cross["eventId"]))
    for _ip, first, cross, _ in _threshold_incidents(failures, "ip", "userId", STUFF_N, STUFF_W):
        out.add(("credential_stuffing", _ip, first["eventId"], cross["eventId"]))
    by_user: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for e in events:
        if e["type"] == "login":
            by_user[e["payload"]["userId"]].append(e)
    for user, first, cross, last in bursts:  # the first success soon after the burst
        for e in by_user[user]:
            if _succeeded(e) and cross["ts"] <= e["ts"] <= last["ts"] + BRUTE_W:
                out.add(("brute_force_success", user, first["eventId"], e["eventId"]))
                break
    for rule, value in (("new_device_login", lambda e: e["payload"]["device"]),
                        ("new_country_login", lambda e: country(e["payload"]["ip"]))):  # fmt: skip
        seen: dict[str, set[str]] = {}
        for e in events:
            if not _succeeded(e) or (v := value(e)) is None:
                continue
            user = e["payload"]["userId"]
            if user in seen and v not in seen[user]:
                out.add((rule, user, e["eventId"], e["eventId"]))
            seen.setdefault(user, set()).add(v)
    out |= _spraying(failures) | _travel(by_user) | _session_changes(events)
    return out


def _spraying(failures: list[dict[str, Any]]) -> set[tuple[str, str, str, str]]:
    """≥ 5 users and ≥ 15 failures from one IP within the hour, more than half of the users with
    3-8 failures each; later failures within the hour of the last extend the incident."""
    by_ip: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for e in failures:
        by_ip[e["payload"]["ip"]].append(e)
    out = set()
    for ip, items in by_ip.items():
        window: deque[dict[str, Any]] = deque()
        last: float | None = None
        for e in sorted(items, key=lambda x: x["ts"]):
            if last is not None and e["ts"] - last <= SPRAY_W:
                last = e["ts"]
                continue
            last = None
            window.append(e)
            while window[0]["ts"] < e["ts"] - SPRAY_W:
                window.popleft()
            tries = Counter(x["payload"]["userId"] for x in window)
            shaped = sum(SPRAY_PER_USER[0] <= n <= SPRAY_PER_USER[1] for n in tries.values())
            if (
                len(tries) >= SPRAY_USERS
                and len(window) >= SPRAY_ATTEMPTS
                and 2 * shaped > len(tries)
            ):
                out.add(("password_spraying", ip, window[0]["eventId"], e["eventId"]))
                last = e["ts"]
                window.clear()
    return out


def _travel(by_user: dict[str, list[dict[str, Any]]]) -> set[tuple[str, str, str, str]]:
    """Country data only: consecutive successful logins from two countries within 30 minutes;
    a hop from the incident's latest login extends it."""
    out = set()
    for user, logins in by_user.items():
        located = [e for e in logins if _succeeded(e) and country(e["payload"]["ip"])]
        chain_end: str | None = None
        for a, b in pairwise(located):
            ca, cb = country(a["payload"]["ip"]), country(b["payload"]["ip"])
            if ca != cb and b["ts"] - a["ts"] <= TRAVEL_W:
                if chain_end != a["eventId"]:
                    out.add(("impossible_travel", user, a["eventId"], b["eventId"]))
                chain_end = b["eventId"]
    return out


def _session_changes(events: list[dict[str, Any]]) -> set[tuple[str, str, str, str]]:
    """A session (a successful login or a 30-minute gap starts one) whose events, failed logins
    aside, came from two devices or two IPs: one incident per session."""
    by_user: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for e in events:
        by_user[e["payload"]["userId"]].append(e)
    out = set()
    for user, items in by_user.items():
        first: dict[str, Any] | None = None
        devices: set[str] = set()
        ips: set[str] = set()
        fired, previous = False, None
        for e in sorted(items, key=lambda x: x["ts"]):
            if previous is None or e["ts"] - previous > SESSION_GAP or _succeeded(e):
                first, devices, ips, fired = e, set(), set(), False
            previous = e["ts"]
            if _failed(e):
                continue
            devices |= {e["payload"]["device"]} if "device" in e["payload"] else set()
            ips |= {e["payload"]["ip"]} if "ip" in e["payload"] else set()
            if not fired and (len(devices) > 1 or len(ips) > 1):
                assert first is not None
                out.add(("session_device_change", user, first["eventId"], e["eventId"]))
                fired = True
    return out


def labelled(messages: list[Message], kind: str) -> list[dict[str, Any]]:
    return [label for m in messages for label in m.labels if label["kind"] == kind]


def test_same_config_gives_byte_identical_messages_and_labels() -> None:
    first, second = generate(config()), generate(config())
    assert [(m.key, m.value, m.labels) for m in first] == [
        (m.key, m.value, m.labels) for m in second
    ]
    other = generate(config(seed=8))
    assert [m.value for m in other] != [m.value for m in first]


def test_population_seed_keeps_the_users_habits_and_renews_the_events() -> None:
    """More traffic of the same users (``--population-seed``): events from the same profiles
    (usual IPs and devices), none of the same eventIds; without it, another seed is another
    population."""
    profiles = {p.user_id: p for p in Simulator(150, 7).profiles}

    def habitual_share(messages: list[Message]) -> float:
        benign = [e for m in messages if m.kind == "benign" for e in valid_events([m])]
        usual = [
            value in getattr(profiles[e["payload"]["userId"]], field)
            for e in benign
            for key, field in (("ip", "ips"), ("device", "devices"))
            if (value := e["payload"].get(key)) is not None
        ]
        return sum(usual) / len(usual)

    same_users = generate(config(shares=Shares(), seed=8, population_seed=7))
    assert habitual_share(same_users) >= 0.9
    assert habitual_share(generate(config(shares=Shares(), seed=8))) < 0.5  # shared device names
    first = generate(config(shares=Shares()))
    assert not {m.value for m in first} & {m.value for m in same_users}


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_benign_traffic_never_crosses_a_threshold_rule(seed: int) -> None:
    """Scenario: attack share 0, dense traffic (many sessions, mistyped passwords).

    We expect: no failed-login burst, no credential stuffing, hence no brute-force success; no
    user above the abnormal event rate; logins only from the user's usual devices."""
    cfg = config(seed=seed, count=20_000, users=300, span=4 * 3600.0, shares=Shares())
    events = valid_events(generate(cfg))
    assert sum(_failed(e) for e in events) > 20  # benign users do mistype
    incidents = reference_incidents(events)
    assert not [i for i in incidents if i[0] not in ("new_device_login", "new_country_login")]
    per_user: dict[str, deque[float]] = defaultdict(deque)
    for e in events:
        q = per_user[e["payload"]["userId"]]
        q.append(e["ts"])
        while q[0] <= e["ts"] - RATE_W:
            q.popleft()
        assert len(q) < RATE_LIMIT
    usual = {p.user_id: set(p.devices) for p in Simulator(cfg.users, cfg.seed).profiles}
    for e in events:
        if e["type"] == "login":
            assert e["payload"]["device"] in usual[e["payload"]["userId"]]


@pytest.mark.parametrize("seed", [4, 5])
def test_labelled_incidents_are_exactly_the_rule_incidents(seed: int) -> None:
    messages = generate(config(seed=seed))
    events = valid_events(messages)
    labels = labelled(messages, "incident")
    expected = reference_incidents(events)
    got = {
        (lab["rule"], lab["subject"], lab["first_event_id"], lab["threshold_event_id"])
        for lab in labels
    }
    assert got == expected
    assert len(got) == len(labels)  # one label per incident
    rules = Counter(lab["rule"] for lab in labels if lab["injected"])
    assert set(rules) == {
        "failed_login_burst", "credential_stuffing", "brute_force_success", "new_device_login",
        "impossible_travel", "new_country_login", "password_spraying", "session_device_change",
    }  # fmt: skip
    brute = [lab for lab in labels if lab["rule"] == "brute_force_success"]
    bursts = {lab["first_event_id"] for lab in labels if lab["rule"] == "failed_login_burst"}
    assert all(lab["first_event_id"] in bursts for lab in brute)  # both are labelled
    by_id = {e["eventId"]: e for e in events}
    for lab in labels:  # label times and ids agree with the events
        for which in ("first", "last", "threshold"):
            event = by_id[lab[f"{which}_event_id"]]
            assert lab[f"{which}_ts"] == event["timestamp"]


def test_attack_share_is_exact() -> None:
    cfg = config()
    messages = generate(cfg)
    assert sum(m.kind == "attack" for m in messages) == round(cfg.shares.attack * cfg.count)


def test_every_malformed_message_is_rejected_for_its_labelled_reason() -> None:
    validation = pytest.importorskip(
        "operators.validation",
        reason="the lead's validator (operators.validation) is not there yet",
    )
    from operators.records import Event, Rejection, Source

    cfg = config(count=8000, shares=Shares(attack=0.02, malformed=0.1, duplicate=0.01))
    now = datetime.fromtimestamp(cfg.start + cfg.span, UTC)
    limits = validation.Limits()
    seen: Counter[str] = Counter()
    for offset, msg in enumerate(generate(cfg)):
        outcome = validation.validate_message(msg.value, Source("t", 0, offset), now, now, limits)
        if msg.kind == "malformed":
            reason = msg.labels[0]["reason"]
            assert isinstance(outcome, Rejection), (reason, msg.value[:200])
            assert outcome.reason == reason, (outcome.detail, msg.value[:200])
            assert msg.labels[0]["sha256"] == hashlib.sha256(msg.value).hexdigest()
            seen[reason] += 1
        else:
            assert isinstance(outcome, Event), getattr(outcome, "detail", "")
            assert msg.key == outcome.user_id.encode()
    assert set(seen) == set(REASONS)


def test_stream_is_in_time_order_per_user_and_never_past_the_end() -> None:
    cfg = config()
    messages = generate(cfg)
    assert len(messages) == cfg.count
    last: dict[str, float] = {}
    for e in valid_events(messages):
        user = e["payload"]["userId"]
        assert e["ts"] >= last.get(user, 0.0)
        assert cfg.start <= e["ts"] <= cfg.start + cfg.span + 0.001
        last[user] = e["ts"]
    assert max(last.values()) == pytest.approx(cfg.start + cfg.span, abs=0.001)
    assert all(a.ts <= b.ts for a, b in pairwise(messages))


@settings(max_examples=25)
@given(
    seed=st.integers(0, 2**32),
    count=st.integers(1, 1500),
    users=st.integers(1, 120),
    attack=st.sampled_from([0.0, 0.01, 0.05, 0.2]),
    malformed=st.sampled_from([0.0, 0.01, 0.1, 0.3]),
    duplicate=st.sampled_from([0.0, 0.01, 0.1]),
)
def test_label_counts_add_up(
    seed: int, count: int, users: int, attack: float, malformed: float, duplicate: float
) -> None:
    cfg = config(count=count, users=users, seed=seed, span=7200.0,
                 shares=Shares(attack, malformed, duplicate))  # fmt: skip
    messages = generate(cfg)
    assert len(messages) == count
    tally = Tally()
    for msg in messages:
        tally.add(msg)
    summary = tally.summary(interrupted=False)
    assert summary["messages"] == count
    assert summary["valid_distinct"] + summary["duplicates"] + summary["malformed"] == count
    assert sum(summary["malformed_by_reason"].values()) == summary["malformed"]
    assert len(labelled(messages, "malformed")) == summary["malformed"]
    assert len(labelled(messages, "duplicate")) == summary["duplicates"]
    if summary["malformed"] >= len(REASONS):
        assert set(summary["malformed_by_reason"]) == set(REASONS)
    seen: set[str] = set()
    for msg in messages:  # a duplicate re-sends an earlier valid message, byte for byte
        if msg.kind == "duplicate":
            assert msg.event_id in seen
        elif msg.kind != "malformed":
            assert msg.event_id not in seen
            assert msg.event_id is not None
            seen.add(msg.event_id)
    assert len(seen) == summary["valid_distinct"]


@settings(max_examples=200)
@given(
    count=st.integers(1, 10**7),
    rate=st.sampled_from([0.0, 0.5, 50.0, 10_000.0]),
    users=st.integers(1, 10**5),
    span=st.one_of(st.none(), st.floats(1.0, 10**7)),
    fraction=st.floats(0, 1),
)
def test_no_timestamp_is_in_the_future_when_sent(
    count: int, rate: float, users: int, span: float | None, fraction: float
) -> None:
    """Without --start, an event stamped ts is sent at wall + send_offset(ts) ≥ ts."""
    wall = START
    plan = Timeline.plan(count=count, rate=rate, users=users, wall=wall, span=span)
    ts = plan.t0 + fraction * plan.span
    assert wall + plan.send_offset(ts) >= ts - 1e-6 * max(1.0, plan.span)
    assert not plan.ends_in_future(wall, skew=1e-3)
    if span is None or span >= plan.duration:  # the timeline ends with the last send
        assert plan.t0 + plan.span == pytest.approx(wall + plan.duration)


def test_travellers_and_the_nat_office_fire_nothing_but_history_rules() -> None:
    """Scenario: 16 h of benign traffic (no attacks) of 400 users: travellers fly abroad once,
    5% of the users share one office NAT address and mistype passwords now and then.

    We expect: the only incidents are new-device and new-country logins (a traveller's first
    login abroad); some traveller logs in from two countries; the NAT address carries failed
    logins of several users; every login's address resolves to a country; the decoy labels name
    the travellers, the NAT users and the NAT address."""
    cfg = config(seed=9, count=12_000, users=400, span=16 * 3600.0, shares=Shares())
    messages = generate(cfg)
    events = valid_events(messages)
    incidents = reference_incidents(events)
    assert {i[0] for i in incidents} <= {"new_device_login", "new_country_login"}
    profiles = {p.user_id: p for p in Simulator(cfg.users, cfg.seed).profiles}
    logins = [e for e in events if e["type"] == "login"]
    assert all(country(e["payload"]["ip"]) for e in logins)
    countries: dict[str, set[str | None]] = defaultdict(set)
    for e in logins:
        countries[e["payload"]["userId"]].add(country(e["payload"]["ip"]))
    travelled = [u for u, seen in countries.items() if len(seen) > 1]
    assert travelled and all(profiles[u].abroad is not None for u in travelled)
    assert {i[1] for i in incidents if i[0] == "new_country_login"} == set(travelled)
    nat = {p.ips[0] for p in profiles.values() if p.nat}
    assert len(nat) == 1
    nat_failures = {
        e["payload"]["userId"] for e in logins if _failed(e) and e["payload"]["ip"] in nat
    }
    assert len(nat_failures) >= 2
    decoys = labelled(messages, "decoy")
    assert {d["subject"] for d in decoys if d["subject_type"] == "user"} == {
        u for u, p in profiles.items() if p.decoy
    }
    assert [d["subject"] for d in decoys if d["subject_type"] == "ip"] == sorted(nat)


def test_short_runs_plan_only_the_incidents_that_fit() -> None:
    """Scenario: a 10-minute run with 5% attacks (the live-query test's).

    We expect: no impossible travel (18 min) nor session change (15 min) planned, the others
    injected, every label still exactly a rule incident."""
    messages = generate(config(count=6000, users=200, seed=11, span=600.0))
    labels = labelled(messages, "incident")
    rules = {lab["rule"] for lab in labels if lab["injected"]}
    assert not rules & {"impossible_travel", "session_device_change"}
    assert {"password_spraying", "credential_stuffing", "brute_force_success"} <= rules
    got = {(lab["rule"], lab["subject"], lab["first_event_id"], lab["threshold_event_id"])
           for lab in labels}  # fmt: skip
    assert got == reference_incidents(valid_events(messages))
