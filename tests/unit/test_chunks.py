"""Chunks, the items between the flow's steps: one per key per batch, never empty, nothing lost."""

from __future__ import annotations

from collections import defaultdict
from datetime import timedelta

from hypothesis import given
from hypothesis import strategies as st

from dataflows.adapters import ValidateBatch, chunked, shard_key
from operators.breaker import BreakerParams, RejectionBreaker
from operators.model import Event, Rejection
from operators.validation import Limits
from tests.harness import event_json

SHARDS = 4


@given(st.lists(st.tuples(st.sampled_from("0123"), st.integers())))
def test_chunked_keeps_every_value_in_order_once_per_key(pairs: list[tuple[str, int]]) -> None:
    chunks = chunked(pairs)
    assert len({key for key, _ in chunks}) == len(chunks)
    assert all(values for _, values in chunks)
    expected: dict[str, list[int]] = defaultdict(list)
    for key, value in pairs:
        expected[key].append(value)
    assert dict(chunks) == expected


class _Message:
    """The parts of a confluent_kafka.Message that the validate step reads."""

    def __init__(self, value: bytes, partition: int, offset: int) -> None:
        self._value, self._partition, self._offset = value, partition, offset

    def value(self) -> bytes:
        return self._value

    def topic(self) -> str:
        return "events"

    def partition(self) -> int:
        return self._partition

    def offset(self) -> int:
        return self._offset

    def headers(self) -> list[tuple[str, bytes]] | None:
        return None


messages = st.lists(
    st.tuples(
        st.sampled_from(["u1", "u2", "u3", "u4", "u5"]),  # valid event of this user...
        st.booleans(),  # ...or, when True, a malformed message
        st.integers(0, SHARDS - 1),  # Kafka partition
    ),
    max_size=40,
)


@given(messages)
def test_validate_batch_chunks_events_by_user_shard_and_rejections_by_partition(
    spec: list[tuple[str, bool, int]],
) -> None:
    """Events and rejections never share a chunk, even where a shard and a partition are both
    named "1"; every message comes out exactly once."""
    batch = [
        _Message(b"{not json" if bad else event_json(user=user), partition, offset)
        for offset, (user, bad, partition) in enumerate(spec)
    ]
    step = ValidateBatch(
        Limits(max_future_skew=timedelta(days=1)),
        RejectionBreaker(BreakerParams(1000, 1.0)),
        SHARDS,
    )
    chunks = step(batch)  # type: ignore[arg-type]
    assert all(values for _, values in chunks)
    event_keys = [key for key, values in chunks if isinstance(values[0], Event)]
    rejection_keys = [key for key, values in chunks if isinstance(values[0], Rejection)]
    assert len(set(event_keys)) == len(event_keys)
    assert len(set(rejection_keys)) == len(rejection_keys)
    seen = []
    for key, values in chunks:
        kinds = {type(v) for v in values}
        assert len(kinds) == 1
        for value in values:
            if isinstance(value, Event):
                assert key == shard_key(value.user_id, SHARDS)
                seen.append(("event", value.user_id))
            else:
                assert key == str(value.source.partition)
                seen.append(("rejected", value.source.offset))
    expected = [
        ("rejected", offset) if bad else ("event", user)
        for offset, (user, bad, _) in enumerate(spec)
    ]
    assert sorted(seen) == sorted(expected)
