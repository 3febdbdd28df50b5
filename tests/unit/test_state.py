"""The shard clock (watermark, tick scheduling) and the lazy expiry queue."""

from __future__ import annotations

from datetime import timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from operators.expiry import ExpiryQueue
from operators.state import MIN_TICK, ShardClock
from tests.unit.factories import at

SEC = timedelta(seconds=1)


def test_watermark_follows_max_event_time_then_wall_time_when_idle() -> None:
    clock = ShardClock(lateness=10 * SEC)
    wall = at(1000)
    assert clock.watermark(wall) is None
    clock.observe(at(100), wall)
    clock.observe(at(50), wall)  # older events do not move it back
    assert clock.watermark(wall) == at(90)
    assert clock.watermark(wall + 5 * SEC) == at(95)  # idle: advances with wall time


def test_future_event_is_clamped_to_the_wall_clock() -> None:
    clock = ShardClock(lateness=10 * SEC)
    clock.observe(at(400), at(100))  # 300 s ahead of the wall clock
    assert clock.watermark(at(100)) == at(90)


def test_tick_is_when_the_watermark_passes_and_never_sooner_than_a_second() -> None:
    clock = ShardClock(lateness=10 * SEC)
    clock.advance(at(100))
    clock.observe(at(100), at(100))
    tick = clock.tick_for(at(150))
    assert tick is not None
    watermark = clock.watermark(tick)
    assert watermark is not None and watermark > at(150)
    assert clock.tick_for(at(0)) == at(100) + MIN_TICK  # already passed: no busy loop
    assert clock.tick_for(None) is None


@settings(max_examples=100)
@given(
    st.lists(
        st.tuples(st.sampled_from("abcdef"), st.integers(min_value=0, max_value=100)), max_size=40
    ),
    st.integers(min_value=0, max_value=120),
)
def test_expiry_queue_returns_exactly_the_keys_whose_real_expiry_passed(
    schedule: list[tuple[str, int]], watermark: int
) -> None:
    queue: ExpiryQueue[str] = ExpiryQueue()
    real: dict[str, int] = {}
    for key, t in schedule:
        if key not in real:
            queue.schedule(key, at(t))  # the first time is a lower bound
        real[key] = max(real.get(key, t), t)  # later events only push expiries later
    due = queue.due(at(watermark), lambda k: at(real[k]))
    assert sorted(due) == sorted(k for k, t in real.items() if t < watermark)
    assert [real[k] for k in due] == sorted(real[k] for k in due)  # in expiry order
    remaining = ExpiryQueue(queue.snapshot())
    assert len(remaining) == len(real) - len(due)
    earliest = remaining.earliest()
    rest = [t for k, t in real.items() if k not in due]
    if rest:  # a lower bound of the real earliest expiry
        assert earliest is not None and earliest <= at(min(rest))
    else:
        assert earliest is None
