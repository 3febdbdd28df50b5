"""One partition's traffic cut in two by a snapshot: what the upgrade fixtures record.

``generate`` runs it with a release's code and writes, per stateful step of the flow, the
snapshot Bytewax would hold at the cut and what the steps produced after it; the upgrade test
restores those snapshots in the current code, runs the same continuation and compares.
The traffic gives every stateful operator state to carry across the cut: open sessions,
remembered event ids, failed-login windows, an open burst before its successful login, a device
history, a rate window, failed logins held for event-time order (the other partition lags),
partial rollups.
"""

from __future__ import annotations

import uuid
from dataclasses import fields, is_dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from dataflows.partition_stage import PartitionStage, StageOutput, StageParams
from operators.breaker import BreakerParams
from operators.dedup import DedupParams
from operators.detections.credential_stuffing import CredentialStuffing
from operators.detections.ip_rules import IpParams, IpRules
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
from operators.rollups import RollupMerge, RollupParams
from operators.sessions import SessionParams
from operators.snapshots import MergeSnapshot
from operators.state import InputProgress, MergedClock, PartitionMark
from operators.validation import Limits
from tests.unit.factories import FakeMessage

BASE = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
WALL = BASE + timedelta(days=1)  # the wall clock starts after every event time
LATENESS = timedelta(seconds=30)
IDLE = timedelta(seconds=10)
PARTITION = "0-activity"
OTHER = "1-activity"  # a second partition, only seen through its marks: it lags at the cut
STUFFING = CredentialStuffingParams(3, timedelta(seconds=300), LATENESS)
SPRAYING = PasswordSprayingParams(lateness=LATENESS)
PARAMS = StageParams(
    Limits(max_future_skew=timedelta(days=2)),
    BreakerParams(1000, 1.0),
    DedupParams(lateness=LATENESS),
    SessionParams(gap=timedelta(minutes=10), lateness=LATENESS, update_interval=timedelta(0)),
    RollupParams(timedelta(minutes=30), LATENESS),
    rules=(
        FailedLoginBurstParams(3, timedelta(seconds=60), LATENESS),
        BruteForceSuccessParams(3, timedelta(seconds=60), timedelta(seconds=300), LATENESS),
        NewDeviceLoginParams(lateness=LATENESS),
        AbnormalEventRateParams(8, timedelta(seconds=60), LATENESS),
    ),
)
STEPS = ("kafka_in", "stuffing_in_order", "rollup_totals")
"""The flow's stateful steps, each with a fixture: the partition stage and the two merges."""


def _message(n: int, kind: str, user: str, at: float, **payload: object) -> bytes:
    body = {
        "eventId": str(uuid.uuid5(uuid.NAMESPACE_URL, f"rtep-upgrade-{n}")),
        "type": kind,
        "timestamp": (BASE + timedelta(seconds=at)).isoformat(),
        "payload": {"userId": user, **payload},
    }
    return orjson.dumps(body)


def _traffic() -> tuple[list[bytes], list[bytes]]:
    """(before the cut, after it): every kind of state is open at the cut."""
    rows: list[tuple[str, str, float, dict[str, object]]] = []
    for u in range(5):  # sessions for everyone
        rows.append(("page_view", f"u{u}", u, {"page": "/home", "device": "Firefox on Linux"}))
    for i in range(3):  # u1: a failed-login burst ...
        rows.append(
            ("login", "u1", 10 + i, {"ip": "198.51.100.1", "device": "curl", "success": False})
        )
    rows.append(("login", "u2", 20, {"ip": "198.51.100.2", "device": "Chrome on macOS"}))
    for i in range(6):  # u3: a rate window short of its threshold
        rows.append(("button_click", "u3", 30 + i, {"buttonId": "b", "page": "/cart"}))
    for u in (0, 2):  # 203.0.113.9: stuffing short of its threshold
        rows.append(
            ("login", f"u{u}", 40 + u, {"ip": "203.0.113.9", "device": "curl", "success": False})
        )
    before = [_message(n, kind, user, at, **p) for n, (kind, user, at, p) in enumerate(rows)]
    after_rows: list[tuple[str, str, float, dict[str, object]]] = [
        ("login", "u1", 50, {"ip": "198.51.100.1", "device": "Chrome on Windows"}),  # takeover
        ("login", "u2", 55, {"ip": "198.51.100.2", "device": "Safari on iOS"}),  # new device
        (
            "login",
            "u4",
            58,
            {"ip": "203.0.113.9", "device": "curl", "success": False},
        ),  # stuffing: 3rd user
    ]
    for i in range(4):  # u3 crosses the rate threshold
        after_rows.append(("button_click", "u3", 60 + i, {"buttonId": "b", "page": "/cart"}))
    after_rows.append(("logout", "u0", 70, {"ip": "10.0.0.1"}))
    after_rows.append(
        ("page_view", "u4", 200, {"page": "/docs", "device": "Firefox on Linux"})
    )  # a later minute
    after = [
        _message(len(rows) + n, kind, user, at, **p)
        for n, (kind, user, at, p) in enumerate(after_rows)
    ]
    after.append(before[3])  # a redelivered message: de-duplication must remember it
    after.append(b'{"eventId": "not json')  # rejected, with its original bytes
    return before, after


class Steps:
    """The three stateful steps, fed like the flow feeds them, on a fake wall clock."""

    def __init__(self, saved: dict[str, Any] | None = None) -> None:
        self.progress = InputProgress()
        stage_state = None if saved is None else saved["kafka_in"].work
        self.stage = PartitionStage(PARAMS, PARTITION, 2, self.progress, stage_state)
        self.other = PartitionMark(OTHER, BASE + timedelta(seconds=35), None, 2)
        clocks = [MergedClock(LATENESS, IDLE) for _ in range(2)]
        if saved is None:
            rules = IpRules(CredentialStuffing(STUFFING), PasswordSpraying(SPRAYING))
            self.stuffing = InEventTimeOrder(rules, clocks[0])
            self.rollups = RollupMerge(PARAMS.rollups, clocks[1])
        else:
            stuffing = MergeSnapshot.of(saved["stuffing_in_order"])
            clocks[0].load(stuffing.marks)
            self.stuffing = InEventTimeOrder.restore(  # as the flow: the IP rules' pair
                stuffing.logic,
                lambda rule: IpRules.restore(rule, IpParams(STUFFING, SPRAYING)),
                clocks[0],
            )
            rollups = MergeSnapshot.of(saved["rollup_totals"])
            clocks[1].load(rollups.marks)
            self.rollups = RollupMerge.restore(rollups.logic, PARAMS.rollups, clocks[1])
        self.outputs: list[StageOutput] = []
        self.merged: list[Any] = []

    def run(self, batch: list[bytes], offset: int, now: datetime, at_end: bool) -> None:
        """One poll of the partition, then the merges, as ``sources.kafka`` and the flow do."""
        if batch:
            self.progress.caught_up_since = None
        messages: list[Any] = [FakeMessage(v, 0, offset + i) for i, v in enumerate(batch)]
        for out in self.stage.process(messages, now):
            self.outputs.append(out)
            for logic in (self.stuffing, self.rollups):
                logic.clock.update(self.other)
                logic.clock.update(out.mark)
            self.stuffing.take(out.partition, out.failed_logins)
            self.rollups.take(out.partition, out.rollups)
        self.merged.extend(self.stuffing.release(now))
        self.merged.extend(self.rollups.release(now))
        if at_end and self.progress.caught_up_since is None:
            self.progress.caught_up_since = now

    def snapshots(self, offset: int) -> dict[str, Any]:
        """What Bytewax holds per step at a snapshot (the partition's with its next offset)."""
        from sources.kafka import PartitionState

        return {
            "kafka_in": PartitionState(offset, self.stage.snapshot()),
            "stuffing_in_order": MergeSnapshot(
                1, self.stuffing.clock.marks(), self.stuffing.snapshot()
            ),
            "rollup_totals": MergeSnapshot(1, self.rollups.clock.marks(), self.rollups.snapshot()),
        }


def first_half() -> tuple[Steps, int]:
    """The steps after the traffic before the cut (still reading: not caught up)."""
    before, _ = _traffic()
    steps = Steps()
    steps.run(before[:9], 0, WALL, at_end=False)
    steps.run(before[9:], 9, WALL + timedelta(seconds=1), at_end=False)
    return steps, len(before)


def second_half(steps: Steps, offset: int) -> dict[str, list[dict[str, Any]]]:
    """Run the continuation, reach the end, let an hour of wall time pass; what came out."""
    _, after = _traffic()
    steps.outputs.clear()
    steps.merged.clear()
    start = WALL + timedelta(seconds=5)
    steps.other = PartitionMark(OTHER, BASE + timedelta(seconds=250), start, 2)
    steps.run(after[:4], offset, start, at_end=False)
    steps.run(after[4:], offset + 4, start + timedelta(seconds=1), at_end=True)
    for minutes in (0, 1, 61, 62):  # caught up: wall time closes windows and sessions
        steps.run([], offset + len(after), start + timedelta(minutes=minutes, seconds=2), True)
    return {
        "events": [plain(e) for out in steps.outputs for e in out.events],
        "rejections": [plain(r) for out in steps.outputs for r in out.rejections],
        "sessions": [plain(s) for out in steps.outputs for s in out.sessions],
        "alerts": [plain(a) for out in steps.outputs for a in out.alerts],
        "partial_rollups": [plain(r) for out in steps.outputs for r in out.rollups],
        "merged": [plain(item) for item in steps.merged],
    }


def plain(value: Any) -> Any:
    """A record as JSON-ready data (datetimes as ISO text), field by field."""
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, datetime | timedelta):
        return str(value) if isinstance(value, timedelta) else value.isoformat()
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value
