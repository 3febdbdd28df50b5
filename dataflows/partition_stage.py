"""Everything a Kafka partition's messages go through before the partitions meet.

validate → de-duplicate → sessionize → per-user rules → this partition's minute rollups, run by
``sources.kafka`` on the worker that reads the partition, on the partition's own event time
(one ``InputProgress`` shared by every operator's clock). A user's events are all in one
partition (producers key by userId), so per-user state needs nothing from other partitions and
no event crosses to another worker for it. What must meet across partitions leaves as a
``StageOutput``: failed logins with an IP (credential stuffing) and partial rollups, each with the
partition's ``PartitionMark`` so the merging steps know how far every partition has come.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Union

from confluent_kafka import Message

from dataflows.adapters import Validator
from dataflows.observers import observe_alerts, observe_dedup, observe_rollups, observe_sessions
from operators.breaker import BreakerParams, RejectionBreaker
from operators.dedup import Deduplicator, DedupParams
from operators.detection import (
    AbnormalEventRate,
    AbnormalEventRateParams,
    BruteForceSuccess,
    BruteForceSuccessParams,
    FailedLoginBurst,
    FailedLoginBurstParams,
    NewDeviceLogin,
    NewDeviceLoginParams,
)
from operators.erasure import Erase, has_erasure, split_at_erasures
from operators.records import EVENT_TS, Alert, Event, Rejection, RollupRow, Session
from operators.rollups import MinuteRollup, RollupParams
from operators.sessions import Sessionizer, SessionParams
from operators.snapshots import StageSnapshot  # 0.2.0 snapshots find it here
from operators.state import InputProgress, PartitionMark, ShardClock
from operators.validation import Limits
from sources.kafka import WorkFactory

if TYPE_CHECKING:
    from rtep.core.settings import Settings

UserRule = Union[FailedLoginBurst, BruteForceSuccess, NewDeviceLogin, AbnormalEventRate]  # noqa: UP007


@dataclass(frozen=True, slots=True)
class StageParams:
    """Parameters of every step of a partition's stage."""

    limits: Limits
    breaker: BreakerParams
    dedup: DedupParams  # max_ids: for the whole input, split over its partitions
    sessions: SessionParams
    failed_login_burst: FailedLoginBurstParams
    brute_force_success: BruteForceSuccessParams
    new_device_login: NewDeviceLoginParams
    abnormal_event_rate: AbnormalEventRateParams
    rollups: RollupParams

    @classmethod
    def from_settings(cls, s: Settings) -> StageParams:
        """Every parameter from its ``RTEP_*`` setting."""
        lateness = timedelta(seconds=s.allowed_lateness_seconds)
        return cls(
            Limits(
                s.max_event_bytes, timedelta(seconds=s.max_future_skew_seconds), s.field_limits()
            ),
            BreakerParams(s.breaker_window, s.breaker_reject_share),
            DedupParams.from_settings(s),
            SessionParams.from_settings(s),
            FailedLoginBurstParams.from_settings(s),
            BruteForceSuccessParams.from_settings(s),
            NewDeviceLoginParams(
                s.new_device_max_devices, timedelta(days=s.new_device_history_days), lateness
            ),
            AbnormalEventRateParams.from_settings(s),
            RollupParams(timedelta(seconds=s.rollup_retention_seconds), lateness),
        )


@dataclass(slots=True)
class StageOutput:
    """What one batch of a partition produced (lists may be empty; never all of them and the
    mark unchanged: such a batch produces no output)."""

    partition: str
    mark: PartitionMark
    mark_changed: bool  # the mark is due to every merging key (see MARK_INTERVAL)
    events: list[Event] = field(default_factory=list)  # unique, with session_id
    rejections: list[Rejection] = field(default_factory=list)
    sessions: list[Session] = field(default_factory=list)
    alerts: list[Alert] = field(default_factory=list)
    failed_logins: list[Event] = field(default_factory=list)  # with an IP: credential stuffing
    rollups: list[RollupRow] = field(default_factory=list)  # this partition's partial counts


MARK_INTERVAL = timedelta(milliseconds=100)
"""A partition's progress goes to every key of the merging steps at most this often (and at once
when it turns caught up or reads again): live, a batch is a few events, and each broadcast is one
item per IP shard. Feeds that carry failed logins or rollups always carry the latest mark."""

RULES = (FailedLoginBurst, BruteForceSuccess, NewDeviceLogin, AbnormalEventRate)
"""The per-user rules, in the order their parameters appear in ``StageParams``."""


class PartitionStage:
    """``PartitionWork`` for one partition: see the module docstring."""

    def __init__(
        self,
        params: StageParams,
        partition: str,
        parts: int,
        progress: InputProgress,
        saved: StageSnapshot | None = None,
    ) -> None:
        self.partition = partition
        self.parts = parts
        self.progress = progress
        self._validate = Validator(params.limits, RejectionBreaker(params.breaker))
        dedup = replace(params.dedup, max_ids=max(1, params.dedup.max_ids // parts))
        rule_params = (
            params.failed_login_burst,
            params.brute_force_success,
            params.new_device_login,
            params.abnormal_event_rate,
        )
        if saved is None:
            self.clock = ShardClock(params.sessions.lateness)
            self.dedup = Deduplicator(dedup)
            self.sessions = Sessionizer(params.sessions)
            self.rules: list[UserRule] = [
                rule(p)
                for rule, p in zip(RULES, rule_params, strict=True)
            ]
            self.rollups = MinuteRollup(params.rollups)
        else:
            if saved.version not in (1, 2):  # 1: 0.2.0's tuples; 2: records
                raise ValueError(f"unknown partition snapshot version {saved.version}")
            self.clock = ShardClock.restore(saved.clock)
            self.dedup = Deduplicator.restore(saved.dedup, dedup)
            self.sessions = Sessionizer.restore(saved.sessions, params.sessions)
            self.rules = [
                rule.restore(snap, p)  # type: ignore[attr-defined]
                for rule, snap, p in zip(RULES, saved.rules, rule_params, strict=True)
            ]
            self.rollups = MinuteRollup.restore(saved.rollups, params.rollups)
        for clock in self._clocks():
            clock.progress = progress
        self._sent: PartitionMark | None = None  # the last mark sent to every merging key
        self._sent_at = datetime.min.replace(tzinfo=UTC)
        # the next timer, and the progress it was computed for: an idle partition is polled
        # every millisecond, and its timers only move with a batch, a tick or its progress
        self._due: datetime | None = None
        self._due_for: tuple[datetime | None, datetime | None] | None = None

    def _clocks(self) -> list[ShardClock]:
        """The stage's clock and every operator's: all follow this partition's progress."""
        clocks = [self.clock]
        for logic in (self.dedup, self.sessions, *self.rules, self.rollups):
            assert isinstance(logic.clock, ShardClock), "a partition's logic has its own clock"
            clocks.append(logic.clock)
        return clocks

    def process(self, messages: list[Message], now: datetime) -> list[StageOutput]:
        """Run a batch (maybe empty) through every step; fire due timers; report progress."""
        checked = self._validate(messages, now) if messages else None
        out = StageOutput(self.partition, self._sent or self._mark(), False)
        if checked is not None:
            out.rejections = checked.rejections
            self._run(checked.events, now, out)
        progress = self.progress
        moved = (progress.caught_up_since, progress.follow)
        if checked is not None or moved != self._due_for:  # else the timers are as they were
            self._due, self._due_for = self._next_tick(), moved
        if self._due is not None and self._due <= now:
            self._tick(now, out)
            self._due = self._next_tick()
        mark = self._mark()
        sent = self._sent
        out.mark = mark
        out.mark_changed = mark != sent and (
            sent is None
            or mark.caught_up_since != sent.caught_up_since
            or now - self._sent_at >= MARK_INTERVAL
        )
        if out.mark_changed:
            self._sent, self._sent_at = mark, now
        if not (
            out.mark_changed or out.events or out.rejections or out.sessions or out.alerts
            or out.rollups
        ):  # fmt: skip
            return []
        return [out]

    def latest(self) -> datetime | None:
        """The latest (clamped) event time of this partition."""
        return self.clock.latest()

    def snapshot(self) -> StageSnapshot:
        """Every operator's snapshot record (version 2)."""
        return StageSnapshot(
            2,
            self.clock.snapshot(),
            self.dedup.snapshot(),
            self.sessions.snapshot(),
            tuple(rule.snapshot() for rule in self.rules),
            self.rollups.snapshot(),
        )

    def _run(self, events: list[Event], now: datetime, out: StageOutput) -> None:
        if not has_erasure(events):
            self._steps(events, now, out)
            return
        for run, erase in split_at_erasures(events):  # rare: a user's erasure, in stream order
            if run:
                self._steps(run, now, out)
            if isinstance(erase, Erase):
                self._erase(erase, out)

    def _steps(self, events: list[Event], now: datetime, out: StageOutput) -> None:
        """The batch through every step. Sessionization writes each event's ``session_id`` and
        ``late``, before any later step reads the batch; after it, the events are read-only
        (shared by the rules, the rollups, the sinks' threads and the stuffing step)."""
        unique = self.dedup.on_batch(events, now)
        observe_dedup(self.dedup)
        self.clock.advance(now)
        self.clock.observe_latest(map(EVENT_TS, unique), now)
        sessions = self.sessions.sessionize(unique, now)
        observe_sessions(self.sessions)
        out.sessions.extend(sessions)
        out.events.extend(unique)
        for rule in self.rules:
            out.alerts.extend(rule.on_batch(unique, now))
            observe_alerts(rule)
        out.rollups.extend(self.rollups.on_batch(unique, now))
        observe_rollups(self.rollups)
        out.failed_logins.extend(e for e in unique if e.ip is not None and e.failed_login)

    def _erase(self, erase: Erase, out: StageOutput) -> None:
        """Forget the user in every per-user step, then send the erasure to every sink, after
        whatever this batch produced before it (operators/erasure.py)."""
        erase.session_ids += self.sessions.forget(erase.user_id)
        for rule in self.rules:
            rule.forget(erase.user_id)
        out.events.append(erase)
        out.sessions.append(erase)  # type: ignore[arg-type]  # the sinks delete on an Erase
        out.alerts.append(erase)  # type: ignore[arg-type]

    def _next_tick(self) -> datetime | None:
        ticks = [
            tick
            for tick in (logic.next_tick() for logic in (self.dedup, self.sessions, *self.rules,
                                                          self.rollups))
            if tick is not None
        ]  # fmt: skip
        return min(ticks) if ticks else None

    def _tick(self, now: datetime, out: StageOutput) -> None:
        self.dedup.on_tick(now)
        closed = self.sessions.on_tick(now)
        if closed:
            out.sessions.extend(closed)
            observe_sessions(self.sessions)
        for rule in self.rules:
            rule.on_tick(now)
        self.rollups.on_tick(now)

    def _mark(self) -> PartitionMark:
        return PartitionMark(
            self.partition, self.clock.latest(), self.progress.caught_up_since, self.parts
        )


def stage_factory(params: StageParams) -> WorkFactory[StageOutput]:
    """The ``WorkFactory`` for ``sources.kafka.LeanKafkaSource``."""

    def build(
        partition: str, parts: int, progress: InputProgress, saved: object | None
    ) -> PartitionStage:
        assert saved is None or isinstance(saved, StageSnapshot), "a partition's state: StageSnapshot"
        return PartitionStage(params, partition, parts, progress, saved)

    return build
