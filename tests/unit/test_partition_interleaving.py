"""Results do not depend on how Kafka partitions are read: any cut into batches, any interleaving.

Each partition's events are in time order (producers key by userId); Hypothesis chooses how many
partitions, the users' histories, how each partition is cut into batches and in which order the
partitions' batches arrive, as after a restart with a backlog. The per-partition stages, the
credential-stuffing step (held in event-time order) and the rollup totals must then give exactly
the in-order result: the sessions of the offline reference, the alerts of one pass over the
sorted history (credential stuffing and password spraying in their paired steps too), per-minute counts of the history, no event late and every event in a session.
"""

from __future__ import annotations

import zlib
from collections import Counter, deque
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import event as label
from hypothesis import given, settings
from hypothesis import strategies as st

from dataflows.partition_stage import PartitionStage, StageOutput, StageParams
from operators.breaker import BreakerParams
from operators.dedup import DedupParams
from operators.detections.credential_stuffing import CredentialStuffing
from operators.detections.failed_login_burst import FailedLoginBurst
from operators.detections.ip_rules import IpRules
from operators.detections.params import (
    AbnormalEventRateParams,
    BruteForceSuccessParams,
    CredentialStuffingParams,
    FailedLoginBurstParams,
    NewDeviceLoginParams,
    PasswordSprayingParams,
)
from operators.detections.password_spraying import PasswordSpraying
from operators.ordering import InEventTimeOrder
from operators.records import Alert, Event, RollupRow, Session
from operators.rollups import RollupMerge, RollupParams
from operators.sessions import SessionParams
from operators.state import InputProgress, MergedClock
from operators.validation import Limits, check_message
from tests.harness import event_json
from tests.unit.factories import FakeMessage
from tests.unit.session_oracle import reference_sessions

BASE = datetime(2026, 1, 1, tzinfo=UTC)
WALL = BASE + timedelta(days=2)  # the (fake) wall clock starts after every event time
GAP = timedelta(minutes=10)
LATENESS = timedelta(seconds=60)
IPS = ("203.0.113.7", "198.51.100.9")
STUFFING = CredentialStuffingParams(3, timedelta(seconds=300), LATENESS)
BURST = FailedLoginBurstParams(3, timedelta(seconds=60), LATENESS)
SPRAYING = PasswordSprayingParams(2, 3, timedelta(seconds=300), 1, 8, LATENESS)  # any shape
PAIRED = CredentialStuffingParams(3, timedelta(seconds=300), LATENESS)  # both fire, each first
PARAMS = StageParams(
    Limits(max_future_skew=timedelta(days=1)),
    BreakerParams(1000, 1.0),
    DedupParams(lateness=LATENESS),
    SessionParams(gap=GAP, lateness=LATENESS, update_interval=timedelta(0)),
    RollupParams(timedelta(minutes=5), LATENESS),
    rules=(
        BURST,
        BruteForceSuccessParams(3, timedelta(seconds=60), timedelta(seconds=300), LATENESS),
        NewDeviceLoginParams(lateness=LATENESS),
        AbnormalEventRateParams(1000, timedelta(seconds=60), LATENESS),
    ),
)


KINDS = ("page_view", "page_view", "login", "failed", "failed", "failed", "logout")


@st.composite
def backlogs(draw: st.DrawFn) -> tuple[int, list[list[bytes]], list[bytes]]:
    """(partitions, each partition's messages in time order, all of them in production order);
    users hashed to partitions."""
    parts = draw(st.integers(2, 4))
    users = draw(st.integers(3, 9))
    steps = draw(
        st.lists(
            st.tuples(
                st.integers(0, users - 1),  # who
                st.integers(0, 90),  # seconds after the previous event (any user)
                st.sampled_from(KINDS),
                st.sampled_from(IPS),
            ),
            min_size=1,
            max_size=80,
        )
    )
    queues: list[list[bytes]] = [[] for _ in range(parts)]
    produced: list[bytes] = []
    ts = BASE
    for user_index, delta, kind, ip in steps:
        ts += timedelta(seconds=delta)
        user = f"user{user_index}"
        stamp = ts.isoformat()
        if kind == "failed":
            body = event_json("login", user, stamp, ip=ip, success=False)
        elif kind in ("login", "logout"):
            body = event_json(kind, user, stamp, ip=ip)
        else:
            body = event_json(kind, user, stamp)
        queues[zlib.crc32(user.encode()) % parts].append(body)
        produced.append(body)
    return parts, queues, produced


def _read(
    parts: int, queues: list[list[bytes]], cuts: list[int], order: list[int]
) -> tuple[list[StageOutput], list[Alert], list[RollupRow], list[Alert]]:
    """Run the stages and the merging steps over the backlog in the drawn order and cuts."""
    names = [f"{p}-events" for p in range(parts)]
    progress = [InputProgress() for _ in range(parts)]
    stages = [PartitionStage(PARAMS, names[p], parts, progress[p]) for p in range(parts)]
    stuffing = InEventTimeOrder(
        CredentialStuffing(STUFFING), MergedClock(LATENESS, timedelta(seconds=10))
    )
    rollups = RollupMerge(PARAMS.rollups, MergedClock(LATENESS, timedelta(seconds=10)))
    ip_steps = [  # as the flow: stuffing_in_order, on IpRules
        InEventTimeOrder(
            IpRules(CredentialStuffing(PAIRED), PasswordSpraying(SPRAYING)),
            MergedClock(LATENESS, timedelta(seconds=10)),
        )
    ]
    ip_alerts: list[Alert] = []
    pending = [deque(FakeMessage(v, p, i) for i, v in enumerate(q)) for p, q in enumerate(queues)]
    outputs: list[StageOutput] = []
    alerts: list[Alert] = []
    rows: list[RollupRow] = []
    now = WALL
    step = 0

    def run(p: int, batch: list[Any]) -> None:
        nonlocal now
        now += timedelta(milliseconds=1)
        if batch:
            progress[p].caught_up_since = None
        others = [s.latest() for i, s in enumerate(stages) if i != p]
        progress[p].follow = max((t for t in others if t is not None), default=None)
        for out in stages[p].process(batch, now):
            outputs.append(out)
            stuffing.clock.update(out.mark)
            rollups.clock.update(out.mark)
            stuffing.take(out.partition, out.failed_logins)
            rollups.take(out.partition, out.rollups)
            for ip_step in ip_steps:
                ip_step.clock.update(out.mark)
                ip_step.take(out.partition, out.failed_logins)
        alerts.extend(stuffing.release(now))
        for ip_step in ip_steps:
            ip_alerts.extend(ip_step.release(now))
        rows.extend(rollups.release(now))
        if not pending[p] and progress[p].caught_up_since is None:
            progress[p].caught_up_since = now  # the end of the partition was reached

    while any(pending):
        p = order[step % len(order)] % parts
        size = cuts[step % len(cuts)]
        step += 1
        if not pending[p]:
            p = next(i for i in range(parts) if pending[i])
        run(p, [pending[p].popleft() for _ in range(min(size, len(pending[p])))])
    for _ in range(2):  # every partition reports that it reached its end
        for p in range(parts):
            run(p, [])
    now += timedelta(days=30)  # then wall time passes: every session and window closes
    for p in range(parts):
        run(p, [])
    return outputs, alerts, rows, ip_alerts


def _last(items: list[Any], key: str) -> dict[Any, Any]:
    return {getattr(item, key): item for item in items}


@settings(max_examples=150)
@given(
    backlogs(),
    st.lists(st.integers(1, 12), min_size=1, max_size=8),
    st.lists(st.integers(0, 3), min_size=1, max_size=12),
)
def test_sessions_alerts_and_rollups_equal_the_in_order_result(
    backlog: tuple[int, list[list[bytes]], list[bytes]], cuts: list[int], order: list[int]
) -> None:
    parts, queues, produced = backlog
    outputs, stuffing_alerts, rollup_rows, ip_alerts = _read(parts, queues, cuts, order)

    history = [  # production order: time order, ties as produced
        event
        for raw in produced
        if isinstance(event := check_message(raw, WALL, WALL, PARAMS.limits), Event)
    ]

    events = [e for out in outputs for e in out.events]
    assert sorted(e.event_id for e in events) == sorted(e.event_id for e in history)
    assert not any(e.late for e in events)
    assert all(e.session_id is not None for e in events)

    sessions: dict[str, Session] = _last([s for out in outputs for s in out.sessions], "session_id")
    expected = reference_sessions(history, GAP)
    assert {sid: (s.started_at, s.event_count, s.ended_by) for sid, s in sessions.items()} == {
        r.session_id: (r.started_at, r.event_count, r.ended_by) for r in expected
    }

    def incidents(alerts: list[Alert]) -> dict[str, tuple[Any, ...]]:
        return {
            a.alert_id: (a.subject, a.window_start, a.window_end, a.event_count)
            for a in _last(alerts, "alert_id").values()
        }

    failed = [e for e in history if e.failed_login]
    assert incidents(stuffing_alerts) == incidents(
        CredentialStuffing(STUFFING).on_batch(failed, WALL)
    )
    label(f"IP rules fired: {sorted({a.rule for a in ip_alerts})}")
    one_pass = IpRules(CredentialStuffing(PAIRED), PasswordSpraying(SPRAYING))  # in order
    assert incidents(ip_alerts) == incidents(one_pass.on_batch(failed, WALL))
    user_alerts = [a for out in outputs for a in out.alerts if a.rule == FailedLoginBurst.RULE]
    assert incidents(user_alerts) == incidents(FailedLoginBurst(BURST).on_batch(failed, WALL))

    counts: Counter[tuple[datetime, str]] = Counter()
    users: dict[tuple[datetime, str], set[str]] = {}
    for e in history:
        key = (e.ts.replace(second=0, microsecond=0), e.type)
        counts[key] += 1
        users.setdefault(key, set()).add(e.user_id)
    totals = {(r.minute, r.type): (r.events, r.unique_users) for r in rollup_rows}
    assert totals == {key: (n, len(users[key])) for key, n in counts.items()}
