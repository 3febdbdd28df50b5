"""observe_many: the same histogram as observing each value, whatever the values."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, Histogram

from rtep.metrics import observe_many

BUCKETS = (0.005, 0.1, 1.0, 5.0, 60.0)


def _samples(registry: CollectorRegistry) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for metric in registry.collect()
        for s in metric.samples
        if not s.name.endswith("_created")
    }


@given(
    st.lists(st.floats(min_value=-10, max_value=1e6, allow_nan=False) | st.sampled_from(BUCKETS))
)
def test_observe_many_equals_one_observe_per_value(values: list[float]) -> None:
    one, many = CollectorRegistry(), CollectorRegistry()
    by_one = Histogram("lat", "x", buckets=BUCKETS, registry=one)
    by_many = Histogram("lat", "x", buckets=BUCKETS, registry=many)
    for value in values:
        by_one.observe(value)
    observe_many(by_many, values)
    assert _samples(one) == _samples(many)
