"""Chunks, the items between the flow's steps: one per key per batch, never empty, nothing lost."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from dataflows.adapters import Validator, chunked
from operators.breaker import BreakerParams, RejectionBreaker
from operators.validation import Limits
from tests.harness import event_json
from tests.unit.factories import FakeMessage

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


messages = st.lists(
    st.tuples(
        st.sampled_from(["u1", "u2", "u3", "u4", "u5"]),  # valid event of this user...
        st.booleans(),  # ...or, when True, a malformed message
        st.integers(0, SHARDS - 1),  # Kafka partition
    ),
    max_size=40,
)


@given(messages)
def test_validator_puts_every_message_out_once_as_an_event_or_a_rejection(
    spec: list[tuple[str, bool, int]],
) -> None:
    """Valid events keep their input order; rejections carry their source partition and offset."""
    batch = [
        FakeMessage(b"{not json" if bad else event_json(user=user), partition, offset)
        for offset, (user, bad, partition) in enumerate(spec)
    ]
    step = Validator(
        Limits(max_future_skew=timedelta(days=1)), RejectionBreaker(BreakerParams(1000, 1.0))
    )
    checked = step(batch, datetime.now(UTC))  # type: ignore[arg-type]
    assert [e.user_id for e in checked.events] == [user for user, bad, _ in spec if not bad]
    assert [(r.source.partition, r.source.offset) for r in checked.rejections] == [
        (partition, offset) for offset, (_, bad, partition) in enumerate(spec) if bad
    ]
