"""Event time per partition: a partition's clock, and the minimum where partitions meet."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from operators.state import InputProgress, MergedClock, PartitionMark, ShardClock

T0 = datetime(2026, 1, 1, tzinfo=UTC)
WALL = T0 + timedelta(days=1)
LATE = timedelta(seconds=60)
IDLE = timedelta(seconds=10)


def mark(
    p: int, latest: float | None, caught_up: float | None = None, parts: int = 3
) -> PartitionMark:
    return PartitionMark(
        f"{p}-t",
        None if latest is None else T0 + timedelta(seconds=latest),
        None if caught_up is None else WALL + timedelta(seconds=caught_up),
        parts,
    )


def at(seconds: float) -> datetime:
    return WALL + timedelta(seconds=seconds)


def test_nothing_advances_until_every_partition_has_reported() -> None:
    clock = MergedClock(LATE, IDLE)
    clock.update(mark(0, 100))
    clock.update(mark(1, 200))
    assert clock.frontier(at(0)) is None
    clock.update(mark(2, 50))
    assert clock.frontier(at(0)) == T0 + timedelta(seconds=50)
    assert clock.watermark(at(0)) == T0 + timedelta(seconds=50) - LATE


@given(st.floats(0, 10_000))
def test_a_partition_with_a_backlog_always_holds_the_others_back(wall: float) -> None:
    """However long it has not reported (paused, back-pressured), it is never taken as idle."""
    clock = MergedClock(LATE, IDLE)
    clock.update(mark(0, 100))  # behind, not caught up
    clock.update(mark(1, 5000, caught_up=0))
    clock.update(mark(2, 6000, caught_up=0))
    assert clock.frontier(at(wall)) == T0 + timedelta(seconds=100)


def test_a_caught_up_quiet_partition_stops_holding_back_after_the_idle_timeout() -> None:
    clock = MergedClock(LATE, IDLE)
    clock.update(mark(0, 100, caught_up=0))  # quiet
    clock.update(mark(1, 5000))
    clock.update(mark(2, 6000))
    assert clock.frontier(at(5)) == T0 + timedelta(seconds=105)  # wall time moves it meanwhile
    assert clock.frontier(at(10)) == T0 + timedelta(seconds=5000)  # then it is left out
    clock.update(mark(0, 200))  # it reads again: it counts again
    assert clock.frontier(at(11)) == T0 + timedelta(seconds=200)


def test_when_every_partition_is_idle_the_slowest_moves_on_with_wall_time() -> None:
    clock = MergedClock(LATE, IDLE)
    for p in range(3):
        clock.update(mark(p, 100 * (p + 1), caught_up=0))
    assert clock.frontier(at(30)) == T0 + timedelta(seconds=130)


def test_restored_marks_are_not_caught_up() -> None:
    """After a restart every partition may have a backlog: none is left out as idle."""
    clock = MergedClock(LATE, IDLE)
    for p in range(3):
        clock.update(mark(p, 100 * (p + 1), caught_up=0))
    restored = MergedClock(LATE, IDLE)
    restored.load(clock.marks())
    assert restored.frontier(at(1000)) == T0 + timedelta(seconds=100)


def test_event_time_never_goes_back() -> None:
    clock = MergedClock(LATE, IDLE)
    clock.update(mark(0, 300, parts=1))
    clock.update(mark(0, 200, parts=1))
    assert clock.frontier(at(0)) == T0 + timedelta(seconds=300)


def test_a_partition_clock_moves_by_wall_time_only_once_caught_up() -> None:
    progress = InputProgress()
    clock = ShardClock(LATE, progress)
    clock.observe(T0, at(0))
    assert clock.watermark(at(3600)) == T0 - LATE  # a backlog: wall time does not count
    assert clock.tick_for(T0) is None
    progress.caught_up_since = at(10)
    assert clock.watermark(at(70)) == T0 - LATE + timedelta(seconds=60)
    progress.follow = T0 + timedelta(hours=1)  # the other partitions of the process are ahead
    assert clock.watermark(at(10)) == T0 + timedelta(hours=1) - LATE
