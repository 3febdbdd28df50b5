"""Glue between Bytewax and the pure operators: the generic stateful adapter and the batch steps.

Items travel between steps as *chunks*: ``(key, [values…])``, one per key per batch, not one per
event. Bytewax's cost is per item (routing, grouping by key, exchange between workers), so a
batch of 5,000 events crosses each keyed step as at most ``RTEP_USER_SHARDS`` items. Chunks are
never empty. Metrics are updated here, once per batch, so operators stay pure and the hot path
stays cheap.
"""

from __future__ import annotations

import zlib
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

from bytewax.operators import StatefulBatchLogic
from confluent_kafka import Message

from operators.breaker import RejectionBreaker
from operators.enrichment import enrich
from operators.erasure import (
    Erase,
    EraseDeadLetters,
    erase_request,
    has_erasure,
    split_at_erasures,
)
from operators.model import Replay, Source
from operators.state import ShardLogic
from operators.validation import Defect, Limits, check_message
from rtep import metrics
from rtep.logs import get_logger

log = get_logger("rtep.dataflow")
In = TypeVar("In")
Out = TypeVar("Out")


class BreakerTripped(RuntimeError):
    """Most of the input is being rejected: stop the flow instead of dead-lettering everything."""


def shard_key(value: str, shards: int) -> str:
    """A stable shard name for ``value`` (crc32: the same in every process, unlike ``hash``)."""
    return str(zlib.crc32(value.encode("utf-8", "surrogatepass")) % shards)


Keyed = tuple[str, Any]
Chunk = tuple[str, list[Any]]  # (key, values): one item per key per batch


def chunked(pairs: Iterable[tuple[str, Any]]) -> list[Chunk]:
    """Group ``(key, value)`` pairs into one non-empty chunk per key, in first-seen order."""
    groups: dict[str, list[Any]] = {}
    for key, value in pairs:
        group = groups.get(key)
        if group is None:
            groups[key] = [value]
        else:
            group.append(value)
    return list(groups.items())


def chunk_values(chunk: Chunk) -> list[Any]:
    """``flat_map`` mapper: a chunk's values, one item each, key dropped (Kafka topic sinks)."""
    return chunk[1]


def values_of(batch: Iterable[Chunk]) -> Iterator[Any]:
    """Every value of a batch of chunks, in order."""
    for _, values in batch:
        yield from values


class ValidateBatch:
    """The ``validate`` step: Kafka messages → chunks of enriched Events and of Rejections.

    Events come out chunked by user shard (what the per-user steps need), Rejections by their
    Kafka partition (what spreads the rejected-events sink), so no keying step follows.
    """

    def __init__(self, limits: Limits, breaker: RejectionBreaker, shards: int) -> None:
        self.limits = limits
        self.breaker = breaker
        self.shards = shards

    def __call__(self, batch: list[Message]) -> list[Chunk]:
        """Validate and enrich a batch; count it; trip the breaker if most of it is bad."""
        now = datetime.now(UTC)
        shards, limits = self.shards, self.limits
        events: dict[str, list[Any]] = {}  # chunks as they fill: no (key, event) pair per event
        rejections: list[Keyed] = []
        valid: Counter[str] = Counter()
        rejected: Counter[str] = Counter()
        failed_logins = 0
        for msg in batch:
            raw = msg.value()
            result = check_message(raw, now, now, limits)
            if isinstance(result, Defect):
                erased = erase_request(msg.headers())  # only messages that fail are looked at
                if erased is not None:  # in the user's shard (the steps) and the rejected stream
                    erase = Erase.of(erased, f"{msg.partition()}/{msg.offset()}", now)
                    events.setdefault(shard_key(erased, shards), []).append(erase)
                    rejections.append((str(msg.partition() or 0), EraseDeadLetters.of(erase)))
                    continue
                source = Source(msg.topic() or "", msg.partition() or 0, msg.offset() or 0)
                rejected[result.reason.value] += 1
                rejection = result.rejection(raw, source, now, replay_of(msg))
                rejections.append((str(source.partition), rejection))
                continue
            enrich(result)
            kind = result.type
            valid[kind] += 1
            if kind == "login" and result.failed_login:
                failed_logins += 1
            key = shard_key(result.user_id, shards)
            chunk = events.get(key)
            if chunk is None:
                events[key] = [result]
            else:
                chunk.append(result)
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
        return list(events.items()) + chunked(rejections)  # apart: their keys overlap ("1")


def replay_of(msg: Message) -> Replay | None:
    """The dead letter a message replays (``rtep.dlq_replay``'s headers), read only for the
    messages that fail validation (so a rejected replay links to its original row)."""
    headers = dict(msg.headers() or [])
    of, attempt = headers.get("rtep.replay.of"), headers.get("rtep.replay.attempt")
    if of is None or attempt is None:
        return None
    try:
        return Replay(int(of), int(attempt))
    except ValueError:
        return None


def failed_logins_by_ip(shards: int) -> Callable[[list[Chunk]], list[Chunk]]:
    """The failed logins that carry an IP, re-chunked by IP shard (one call per batch)."""

    def rekey(batch: list[Chunk]) -> list[Chunk]:
        return chunked(
            (shard_key(e.ip, shards), e)
            for e in values_of(batch)
            if e.failed_login and e.ip is not None
        )

    return rekey


def by_type(batch: list[Chunk]) -> list[Chunk]:
    """Events re-chunked by event type, for the per-type rollups (one call per batch)."""
    return chunked((e.type, e) for e in values_of(batch))


def split_chunk(kind: type) -> Callable[[Chunk], Chunk | None]:
    """The values of a chunk that are ``kind``, as a chunk (None when there are none); an
    ``Erase`` goes to every split, so that every sink downstream sees it in order."""

    def pick(chunk: Chunk) -> Chunk | None:
        key, values = chunk
        if has_erasure(values):
            picked = [v for v in values if isinstance(v, kind) or type(v) is Erase]
        else:
            picked = [v for v in values if isinstance(v, kind)]
        return (key, picked) if picked else None

    return pick


class ShardAdapter(StatefulBatchLogic[list[In], list[Out], object], Generic[In, Out]):
    """Runs one pure ``ShardLogic`` as a Bytewax stateful step (timers, discard, snapshots).

    Takes chunks and emits at most one chunk per call: the logic's output, if any.
    """

    def __init__(self, logic: ShardLogic[In, Out], after: Callable[[Any, list[Out]], None]) -> None:
        self.logic = logic
        self.after = after

    def _done(self, out: list[Out]) -> tuple[Iterable[list[Out]], bool]:
        self.after(self.logic, out)
        return ([out] if out else []), self.logic.is_empty()

    def on_batch(self, values: list[list[In]]) -> tuple[Iterable[list[Out]], bool]:
        """Feed the chunks that arrived to the logic, as one batch, at the current wall time."""
        items = values[0] if len(values) == 1 else [v for chunk in values for v in chunk]
        now = datetime.now(UTC)
        if has_erasure(items):
            return self._done(self._with_erasures(items, now))
        return self._done(self.logic.on_batch(items, now))

    def _with_erasures(self, items: list[Any], now: datetime) -> list[Any]:
        """The batch cut at each ``Erase``: the items before it, then the logic forgets the user
        (if it keeps users), then the erasure goes downstream, in order."""
        forget = getattr(self.logic, "forget", None)
        out: list[Any] = []
        for run, erase in split_at_erasures(items):
            if run:
                out += self.logic.on_batch(run, now)
            if isinstance(erase, Erase):
                if forget is not None:
                    erase.session_ids += forget(erase.user_id)
                out.append(erase)
        return out

    def on_notify(self) -> tuple[Iterable[list[Out]], bool]:
        """Let the logic close what the advancing watermark has passed."""
        return self._done(self.logic.on_tick(datetime.now(UTC)))

    def notify_at(self) -> datetime | None:
        """When the logic next needs a tick (never a busy loop: see bytewax #578)."""
        return self.logic.next_tick()

    def snapshot(self) -> object:
        """The logic's own immutable snapshot."""
        return self.logic.snapshot()


def shard_builder(
    cls: Any, params: Any, after: Callable[[Any, list[Any]], None] | None = None
) -> Callable[[object | None], ShardAdapter[Any, Any]]:
    """The ``builder`` Bytewax calls per key: a fresh logic, or one restored from its snapshot."""
    hook = after or (lambda _logic, _out: None)

    def build(resume: object | None) -> ShardAdapter[Any, Any]:
        logic = cls(params) if resume is None else cls.restore(resume, params)
        return ShardAdapter(logic, hook)

    return build
