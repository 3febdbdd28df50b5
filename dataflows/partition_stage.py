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

from confluent_kafka import Message

from dataflows.adapters import Validator
from dataflows.observers import observe_alerts, observe_dedup, observe_rollups, observe_sessions
from operators.breaker import BreakerParams, RejectionBreaker
from operators.dedup import Deduplicator, DedupParams
from operators.detections.abnormal_event_rate import AbnormalEventRate
from operators.detections.brute_force_success import BruteForceSuccess
from operators.detections.failed_login_burst import FailedLoginBurst
from operators.detections.impossible_travel import ImpossibleTravel
from operators.detections.new_country_login import NewCountryLogin
from operators.detections.new_device_login import NewDeviceLogin
from operators.detections.rule import Rule, RuleBatch, RuleParams
from operators.detections.session_device_change import SessionDeviceChange
from operators.detections.snapshots import RuleSnapshot
from operators.erasure import Erase, has_erasure, split_at_erasures
from operators.geo import Locate
from operators.records import Alert, Event, Rejection, RollupRow, Session
from operators.rollups import MinuteRollup, RollupParams
from operators.sessions import Sessionizer, SessionParams
from operators.snapshots import StageSnapshot  # 0.2.0 snapshots find it here
from operators.state import InputProgress, PartitionMark, ShardClock
from operators.validation import Limits
from sources.kafka import WorkFactory

UserRule = Rule[RuleParams]

RULES: tuple[type[UserRule], ...] = (
    FailedLoginBurst,
    BruteForceSuccess,
    NewDeviceLogin,
    AbnormalEventRate,
    NewCountryLogin,
    ImpossibleTravel,
    SessionDeviceChange,
)
"""The per-user rules: adding one to the pipeline is adding it here (docs/extending.md)."""

RULES_0_2_0 = (
    "failed_login_burst",
    "brute_force_success",
    "new_device_login",
    "abnormal_event_rate",
)
"""The rules of a 0.2.0 ``StageSnapshot``, in its order (its rules' snapshots do not name them)."""


@dataclass(frozen=True, slots=True)
class StageParams:
    """Parameters of every step of a partition's stage (built from settings by
    ``dataflows.params.stage_params``)."""

    limits: Limits
    breaker: BreakerParams
    dedup: DedupParams  # max_ids: for the whole input, split over its partitions
    sessions: SessionParams
    rollups: RollupParams
    rules: tuple[RuleParams, ...] = ()
    """The per-user rules' parameters, each found by its class (the rule's ``PARAMS``); a rule
    with none here runs with its parameters' defaults."""
    locate: Locate | None = None  # geolocation of events' IPs (sources.geoip)

    def rule_params(self, rule: type[UserRule]) -> RuleParams:
        """``rule``'s parameters (a rule added without any runs with its defaults)."""
        for params in self.rules:
            if type(params) is rule.PARAMS:
                return params
        return rule.PARAMS()


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
        self._validate = Validator(params.limits, RejectionBreaker(params.breaker), params.locate)
        dedup = replace(params.dedup, max_ids=max(1, params.dedup.max_ids // parts))
        if saved is None:
            self.clock = ShardClock(params.sessions.lateness)
            self.dedup = Deduplicator(dedup)
            self.sessions = Sessionizer(params.sessions)
            self.rules = [rule(params.rule_params(rule)) for rule in RULES]
            self.rollups = MinuteRollup(params.rollups)
        else:
            if saved.version not in (1, 2):  # 1: 0.2.0's tuples; 2: records
                raise ValueError(f"unknown partition snapshot version {saved.version}")
            self.clock = ShardClock.restore(saved.clock)
            self.dedup = Deduplicator.restore(saved.dedup, dedup)
            self.sessions = Sessionizer.restore(saved.sessions, params.sessions)
            self.rules = _restore_rules(saved.rules, params)
            self.rollups = MinuteRollup.restore(saved.rollups, params.rollups)
        for clock in self._clocks():
            clock.progress = progress
        self._sent: PartitionMark | None = None  # the last mark sent to every merging key
        self._sent_at = datetime.min.replace(tzinfo=UTC)
        # the next timer, and the progress it was computed for: an idle partition is polled
        # every millisecond, and its timers only move with a batch, a tick or its progress
        self._due: datetime | None = None
        self._due_for: tuple[datetime | None, datetime | None] | None = None

    def _logics(self) -> list[Deduplicator | Sessionizer | UserRule | MinuteRollup]:
        """Every stateful operator of the stage, in the order a batch meets them."""
        return [self.dedup, self.sessions, *self.rules, self.rollups]

    def _clocks(self) -> list[ShardClock]:
        """The stage's clock and every operator's: all follow this partition's progress."""
        clocks = [self.clock]
        for logic in self._logics():
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
        batch = RuleBatch.of(unique)  # sorted, logins picked: once for every rule
        if batch.latest is not None:
            self.clock.observe(batch.latest, now)
        sessions = self.sessions.sessionize(unique, now)
        observe_sessions(self.sessions)
        out.sessions.extend(sessions)
        out.events.extend(unique)
        for rule in self.rules:
            out.alerts.extend(rule.evaluate(batch, now))
            observe_alerts(rule)
        out.rollups.extend(self.rollups.on_batch(unique, now))
        observe_rollups(self.rollups)
        out.failed_logins.extend(e for e in batch.logins if e.ip is not None and e.failed_login)

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
            tick for tick in (logic.next_tick() for logic in self._logics()) if tick is not None
        ]
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


def _restore_rules(saved: tuple[object, ...], params: StageParams) -> list[UserRule]:
    """Every rule of ``RULES`` from its saved state, found by rule name (a rule added since the
    snapshot starts empty; one removed is dropped); 0.2.0's tuples are in ``RULES_0_2_0`` order."""
    by_name = {
        snap.rule if isinstance(snap, RuleSnapshot) else RULES_0_2_0[i]: snap
        for i, snap in enumerate(saved)
    }
    return [
        rule(params.rule_params(rule))
        if rule.RULE not in by_name
        else rule.restore(by_name[rule.RULE], params.rule_params(rule))
        for rule in RULES
    ]


def stage_factory(params: StageParams) -> WorkFactory[StageOutput]:
    """The ``WorkFactory`` for ``sources.kafka.LeanKafkaSource``."""

    def build(
        partition: str, parts: int, progress: InputProgress, saved: object | None
    ) -> PartitionStage:
        assert saved is None or isinstance(saved, StageSnapshot), (
            "a partition's state: StageSnapshot"
        )
        return PartitionStage(params, partition, parts, progress, saved)

    return build
