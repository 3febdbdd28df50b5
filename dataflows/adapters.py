"""Glue between Bytewax and the pure operators: the validate step and the merging steps.

Items travel between steps as *chunks*: ``(key, [values…])``, one per key per batch, not one per
event: Bytewax's cost is per item (routing, grouping by key, exchange between workers). Chunks are
never empty. Per-user work runs where each Kafka partition is read (``dataflows.partition_stage``);
only the steps where partitions meet (credential stuffing by IP, rollup totals) are keyed steps,
driven by ``MergeAdapter``. Metrics are updated here, once per batch, so operators stay pure.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Generic, NamedTuple, Protocol, TypeVar

from bytewax.operators import StatefulBatchLogic
from confluent_kafka import Message

from operators.breaker import RejectionBreaker
from operators.enrichment import enrich
from operators.erasure import Erase, EraseDeadLetters, erase_request
from operators.geo import Locate
from operators.records import Event, Rejection, Replay, Source
from operators.snapshots import MergeSnapshot
from operators.state import MergedClock, PartitionMark
from operators.validation import Defect, Limits, check_message
from rtep.core import metrics
from rtep.core.logs import get_logger

log = get_logger("rtep.dataflow")
In = TypeVar("In")
Out = TypeVar("Out")
T = TypeVar("T")
Chunk = tuple[str, list[T]]  # (key, values): one item per key per batch


class BreakerTripped(RuntimeError):
    """Most of the input is being rejected: stop the flow instead of dead-lettering everything."""


def chunked(pairs: Iterable[tuple[str, T]]) -> list[Chunk[T]]:
    """Group ``(key, value)`` pairs into one non-empty chunk per key, in first-seen order."""
    groups: dict[str, list[T]] = {}
    for key, value in pairs:
        group = groups.get(key)
        if group is None:
            groups[key] = [value]
        else:
            group.append(value)
    return list(groups.items())


class Checked(NamedTuple):
    """What the validate step makes of a batch of messages."""

    events: list[Event]  # valid and enriched, and erase requests (``Erase``), in input order
    rejections: list[Rejection]  # with the original bytes and where they came from; erasures


class Validator:
    """The validate step: Kafka messages → enriched Events and Rejections, counted once a batch."""

    def __init__(
        self, limits: Limits, breaker: RejectionBreaker, locate: Locate | None = None
    ) -> None:
        self.limits = limits
        self.breaker = breaker
        self.locate = locate  # where each event's IP is (None: no geolocation)

    def __call__(self, batch: list[Message], now: datetime) -> Checked:
        """Validate and enrich a batch; count it; trip the breaker if most of it is bad."""
        limits, locate = self.limits, self.locate
        events: list[Event] = []
        rejections: list[Rejection] = []
        valid: Counter[str] = Counter()
        rejected: Counter[str] = Counter()
        failed_logins = 0
        for msg in batch:
            raw = msg.value()
            result = check_message(raw, now, now, limits)
            if isinstance(result, Defect):
                erased = erase_request(msg.headers())  # only messages that fail are looked at
                if erased is not None:  # ordered with the user's events, and the rejected stream
                    erase = Erase.of(erased, f"{msg.partition()}/{msg.offset()}", now)
                    events.append(erase)
                    rejections.append(EraseDeadLetters.of(erase))
                    continue
                source = Source(msg.topic() or "", msg.partition() or 0, msg.offset() or 0)
                rejected[result.reason.value] += 1
                rejections.append(result.rejection(raw, source, now, replay_of(msg)))
                continue
            enrich(result, locate)
            kind = result.type
            valid[kind] += 1
            if kind == "login" and result.failed_login:
                failed_logins += 1
            events.append(result)
        metrics.EVENTS_CONSUMED.inc(len(batch))
        for kind, count in valid.items():
            metrics.EVENTS_VALID.labels(kind).inc(count)
        for reason, count in rejected.items():
            metrics.EVENTS_REJECTED.labels(reason).inc(count)
        if failed_logins:
            metrics.FAILED_LOGINS.inc(failed_logins)
        why = self.breaker.observe(valid.total(), rejected.total())
        if why:
            metrics.BREAKER_OPEN.set(1)
            log.error("rejection breaker tripped: stopping the flow", reason=why)
            raise BreakerTripped(why)
        return Checked(events, rejections)


def replay_of(msg: Message) -> Replay | None:
    """The dead letter a message replays (``rtep.commands.dlq_replay``'s headers), read only for the
    messages that fail validation (so a rejected replay links to its original row)."""
    headers = dict(msg.headers() or [])
    of, attempt = headers.get("rtep.replay.of"), headers.get("rtep.replay.attempt")
    if of is None or attempt is None:
        return None
    try:
        return Replay(int(of), int(attempt))
    except ValueError:
        return None


class Feed(NamedTuple, Generic[T]):
    """What one partition sends a merging step: its mark and, maybe, items."""

    mark: PartitionMark
    items: list[T]


class MergeLogic(Protocol[In, Out]):
    """A step where partitions meet (``operators.ordering``, ``operators.rollups.RollupMerge``)."""

    clock: MergedClock

    def take(self, partition: str, items: list[In]) -> None: ...

    def release(self, now: datetime) -> list[Out]: ...

    def next_tick(self) -> datetime | None: ...

    def snapshot(self) -> object: ...


class MergeAdapter(StatefulBatchLogic[Feed[In], list[Out], object], Generic[In, Out]):
    """Runs a ``MergeLogic`` as a Bytewax stateful step: marks first, then items, then release.

    Never discards its state: the partitions' marks must outlive quiet periods (a caught-up
    partition sends no new mark until it reads again).
    """

    def __init__(
        self, logic: MergeLogic[In, Out], after: Callable[[MergeLogic[In, Out]], None]
    ) -> None:
        self.logic = logic
        self.after = after

    def _done(self, out: list[Out]) -> tuple[Iterable[list[Out]], bool]:
        self.after(self.logic)
        return ([out] if out else []), False

    def on_batch(self, values: list[Feed[In]]) -> tuple[Iterable[list[Out]], bool]:
        """Take every partition's mark and items, then release what the clock allows."""
        logic = self.logic
        for feed in values:
            logic.clock.update(feed.mark)
            if feed.items:
                logic.take(feed.mark.partition, feed.items)
        return self._done(logic.release(datetime.now(UTC)))

    def on_notify(self) -> tuple[Iterable[list[Out]], bool]:
        """Wall time moved the frontier (caught-up partitions): release and expire."""
        return self._done(self.logic.release(datetime.now(UTC)))

    def notify_at(self) -> datetime | None:
        """When the logic next needs a look."""
        return self.logic.next_tick()

    def snapshot(self) -> MergeSnapshot:
        """The marks and the logic's own snapshot."""
        return MergeSnapshot(1, self.logic.clock.marks(), self.logic.snapshot())


def merge_builder(
    make: Callable[[MergedClock, object | None], MergeLogic[In, Out]],
    lateness: timedelta,
    idle_timeout: timedelta,
    after: Callable[[MergeLogic[In, Out]], None],
) -> Callable[[object | None], MergeAdapter[In, Out]]:
    """The ``builder`` Bytewax calls per key: ``make(clock, logic snapshot or None)``; ``after``
    reports the logic's statistics after each batch or notification."""

    def build(resume: object | None) -> MergeAdapter[In, Out]:
        clock = MergedClock(lateness, idle_timeout)
        if resume is None:
            return MergeAdapter(make(clock, None), after)
        saved = MergeSnapshot.of(resume)  # or 0.2.0's (marks, logic snapshot)
        clock.load(saved.marks)
        return MergeAdapter(make(clock, saved.logic), after)

    return build
