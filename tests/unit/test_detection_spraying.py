"""password_spraying: Elastic's shape (many users, a few tries each), thresholds exact, and never
both it and credential_stuffing for one IP's traffic, whichever fires first."""

from __future__ import annotations

import pickle
from datetime import timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from operators.detections.credential_stuffing import CredentialStuffing
from operators.detections.ip_rules import IpParams, IpRules
from operators.detections.params import CredentialStuffingParams, PasswordSprayingParams
from operators.detections.password_spraying import PasswordSpraying
from operators.detections.snapshots import IpRulesSnapshot
from operators.ordering import InEventTimeOrder
from operators.records import Alert, Event
from operators.state import MergedClock, PartitionMark
from tests.unit.factories import NOW, at, failed_login, login
from tests.unit.rule_runs import run

IP = "203.0.113.50"
PARAMS = IpParams(CredentialStuffingParams(), PasswordSprayingParams())


def spray(
    users: int, rounds: int, every: float = 120.0, start: float = 0.0, prefix: str = "v"
) -> list[Event]:
    """``rounds`` passwords tried on each of ``users`` accounts, one try every ``every`` s."""
    return [
        failed_login(start + (r * users + u) * every, user=f"{prefix}{u}", ip=IP)
        for r in range(rounds) for u in range(users)
    ]  # fmt: skip


def spraying(**kw: int) -> PasswordSpraying:
    return PasswordSpraying(PasswordSprayingParams(**kw))  # type: ignore[arg-type]


def test_five_users_three_tries_each_is_spraying() -> None:
    (alert,) = {a.alert_id: a for a in run(spraying(), [spray(5, 3)])}.values()
    assert (alert.rule, alert.severity, alert.subject_type, alert.subject) == (
        "password_spraying", "critical", "ip", IP,
    )  # fmt: skip
    assert (alert.event_count, alert.details["distinct_users"]) == (15, 5)


def test_min_users_and_min_attempts_are_exact() -> None:
    assert run(spraying(), [spray(4, 4)]) == []  # 16 attempts, 4 users: one user short
    assert run(spraying(), [spray(5, 3)[:-1]]) == []  # 14 attempts: one short
    assert run(spraying(min_attempts=14), [spray(5, 3)[:-1]]) != []  # 4 of 5 users at 3
    assert run(spraying(min_users=6), [spray(5, 3)]) == []
    assert run(spraying(min_users=4), [spray(5, 3)]) != []


def test_most_users_need_three_to_eight_tries() -> None:
    assert run(spraying(), [spray(8, 2)]) == []  # 16 tries, 8 users at 2: stuffing's shape
    # half the users at 3 is not most; one more is
    half = spray(4, 1, prefix="w") + spray(4, 3, start=500)
    assert run(spraying(min_attempts=10, min_users=5), [half]) == []
    most = spray(4, 1, prefix="w") + spray(5, 3, start=500)
    assert run(spraying(min_attempts=10, min_users=5), [most]) != []
    # a burst on one account (over 8 tries) is not in shape: no user of 8 is
    burst = [failed_login(t, user="v0", ip=IP) for t in range(40)] + spray(8, 1, start=100)
    assert run(spraying(min_attempts=15, min_users=5), [burst]) == []


def test_the_window_is_exact() -> None:
    w = 3600
    # 15 tries, the last exactly one window after the first: within
    times = [i * w / 14 for i in range(15)]
    at = [failed_login(t, user=f"v{i % 5}", ip=IP) for i, t in enumerate(times)]
    assert run(spraying(), [at]) != []
    past = [failed_login(t * 1.001, user=f"v{i % 5}", ip=IP) for i, t in enumerate(times)]
    assert run(spraying(), [past]) == []


def test_successes_and_other_ips_do_not_count() -> None:
    mixed = [login(t, user=f"v{t % 5}", ip=IP) for t in range(20)]
    mixed += [failed_login(t, user=f"v{t % 5}", ip=f"198.51.100.{t}") for t in range(20)]
    assert run(spraying(), [mixed]) == []


# --- stuffing vs spraying: never both for one IP's traffic ---------------------------------------
def both(events: list[Event], batches: int = 1) -> tuple[list[Alert], list[Alert]]:
    """The IP step's alerts for an ordered stream: (credential_stuffing's, password_spraying's)."""
    size = max(1, len(events) // batches)
    cuts = [events[i : i + size] for i in range(0, len(events), size)]
    alerts = run(IpRules(CredentialStuffing(PARAMS.stuffing), PasswordSpraying(PARAMS.spraying)), cuts)
    return (
        [a for a in alerts if a.rule == CredentialStuffing.RULE],
        [a for a in alerts if a.rule == PasswordSpraying.RULE],
    )


def test_stuffing_traffic_is_stuffing_only() -> None:
    pairs = [failed_login(t, user=f"v{t}", ip=IP) for t in range(30)]  # 30 users, 1 try each
    stuffing, sprayed = both(pairs)
    assert {a.rule for a in stuffing} == {"credential_stuffing"} and sprayed == []


def test_a_slow_spray_is_spraying_only() -> None:
    stuffing, sprayed = both(spray(6, 4))  # 6 users: never 10 in 5 minutes
    assert stuffing == [] and {a.rule for a in sprayed} == {"password_spraying"}


def test_a_fast_spray_first_looks_like_stuffing_and_stays_stuffing() -> None:
    """12 users a round, all in a minute: round one is stuffing's shape, and stuffing holds the
    IP while its incident goes on: spraying opens none there (the other direction)."""
    fast = spray(12, 4, every=5)
    assert run(spraying(), [fast]) != []  # spraying alone would fire
    stuffing, sprayed = both(fast)
    assert len({a.alert_id for a in stuffing}) == 1 and sprayed == []


def test_spraying_holds_the_ip_against_a_later_stuffing_shape() -> None:
    """A slow spray fires first; a burst of 10 new users follows within its incident: stuffing
    would fire alone, but spraying holds the IP."""
    slow = spray(6, 3)
    burst = [failed_login(2040 + 60 + t, user=f"w{t}", ip=IP) for t in range(12)]
    alone = CredentialStuffing(PARAMS.stuffing)
    assert run(alone, [burst]) != []
    stuffing, sprayed = both(slow + burst)
    assert stuffing == [] and len({a.alert_id for a in sprayed}) == 1


@settings(max_examples=60)
@given(
    users=st.integers(1, 14), rounds=st.integers(1, 5), every=st.sampled_from([1, 5, 30, 120]),
    cuts=st.integers(1, 8),
)  # fmt: skip
def test_never_both_and_cutting_does_not_matter(
    users: int, rounds: int, every: int, cuts: int
) -> None:
    events = spray(users, rounds, every=every)
    stuffing, sprayed = both(events)
    assert not (stuffing and sprayed)

    def final(alerts: list[Alert]) -> dict[str, tuple[object, ...]]:
        return {a.alert_id: (a.rule, a.event_count, a.window_end) for a in alerts}

    cut_stuffing, cut_sprayed = both(events, cuts)
    assert (final(cut_stuffing), final(cut_sprayed)) == (final(stuffing), final(sprayed))


def test_ip_rules_snapshot_restores_both_and_the_old_stuffing_record() -> None:
    events = spray(6, 4)
    step = IpRules(CredentialStuffing(PARAMS.stuffing), PasswordSpraying(PARAMS.spraying))
    expected = {a.alert_id: a.event_count for a in run(step, [events])}
    step = IpRules(CredentialStuffing(PARAMS.stuffing), PasswordSpraying(PARAMS.spraying))
    first = run(step, [events[:10]])
    saved = pickle.loads(pickle.dumps(step.snapshot()))
    assert isinstance(saved, IpRulesSnapshot)
    restored = IpRules.restore(saved, PARAMS)
    got = {a.alert_id: a.event_count for a in first + run(restored, [events[10:]])}
    assert got == expected
    # a stuffing step saved before spraying existed: its rule's own record
    old = CredentialStuffing(PARAMS.stuffing)
    run(old, [[failed_login(t, user=f"v{t}", ip=IP) for t in range(3)]])
    resumed = IpRules.restore(old.snapshot(), PARAMS)
    assert resumed.spraying.is_empty() and not resumed.stuffing.is_empty()
    alerts = run(resumed, [[failed_login(10 + t, user=f"w{t}", ip=IP) for t in range(7)]])
    assert [a.rule for a in alerts] == ["credential_stuffing"]


def test_spraying_state_expires() -> None:
    rule = spraying()
    run(rule, [spray(5, 3)])
    run(rule, [[failed_login(10 * 3600, user="x", ip="198.51.100.1")]])
    assert list(rule._ips) == ["198.51.100.1"]
    assert timedelta(seconds=3600) == rule.params.window


def test_a_backlog_released_at_once_is_evaluated_before_its_state_expires() -> None:
    """Scenario: the IP step in event-time order after a backlog: every partition is read hours
    past the failed logins, so the watermark is far ahead of them when they are released. We
    expect: both rules see the whole batch before expiring (stuffing fires on stuffing's traffic,
    spraying on spraying's)."""
    ahead = PartitionMark("p0", at(10 * 3600), None, 1)
    for events, rule in (
        ([failed_login(t, user=f"v{t}", ip=IP) for t in range(12)], "credential_stuffing"),
        (spray(6, 4, every=10), "password_spraying"),
    ):
        clock = MergedClock(timedelta(seconds=60), timedelta(seconds=10))
        clock.update(ahead)
        rules = IpRules(CredentialStuffing(PARAMS.stuffing), PasswordSpraying(PARAMS.spraying))
        step = InEventTimeOrder(rules, clock)
        step.take("p0", events)
        assert {a.rule for a in step.release(NOW)} == {rule}
        assert rules.stuffing.is_empty() and rules.spraying.is_empty()  # expired after
