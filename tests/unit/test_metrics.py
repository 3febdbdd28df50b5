"""observe_ages: the same histogram as observing each age, whatever the times."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, Histogram

from rtep.core.metrics import observe_ages

BUCKETS = (0.005, 0.1, 1.0, 5.0, 60.0)
NOW = 1_764_000_000.123456  # epoch seconds, as the events sink passes its commit time


def _samples(registry: CollectorRegistry) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for metric in registry.collect()
        for s in metric.samples
        if not s.name.endswith("_created")
    }


ages = st.floats(min_value=-10, max_value=1e6, allow_nan=False) | st.sampled_from(BUCKETS)


@given(st.lists(ages), st.floats(min_value=0, max_value=2e9))
def test_observe_ages_equals_one_observe_per_value(values: list[float], now: float) -> None:
    times = [now - v for v in values]
    one, many = CollectorRegistry(), CollectorRegistry()
    by_one = Histogram("lat", "x", buckets=BUCKETS, registry=one)
    by_many = Histogram("lat", "x", buckets=BUCKETS, registry=many)
    for t in times:
        by_one.observe(now - t)
    observe_ages(by_many, times, now)
    expected, got = _samples(one), _samples(many)
    total = ("lat_sum", ())
    assert got.pop(total) == pytest.approx(expected.pop(total), rel=1e-9, abs=1e-6 * len(times))
    assert got == expected  # every bucket and the count: exactly


def test_observe_ages_at_a_real_commit_time() -> None:
    registry = CollectorRegistry()
    histogram = Histogram("lat", "x", buckets=BUCKETS, registry=registry)
    observe_ages(histogram, [NOW - 0.05, NOW - 2.0, NOW - 2.0, NOW - 100.0], NOW)
    samples = _samples(registry)
    assert [samples[("lat_bucket", (("le", le),))] for le in ("0.1", "5.0", "+Inf")] == [1, 3, 4]
    assert samples[("lat_sum", ())] == pytest.approx(104.05)
