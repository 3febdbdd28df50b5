"""The console of ``rtep run``: numbers read from /metrics, rates, and what a frame shows."""

from __future__ import annotations

import io
from datetime import UTC, datetime

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from rich.console import Console

from rtep.commands.console import (
    AlertRow,
    Rates,
    Sample,
    Screen,
    View,
    parse_metrics,
    plain_line,
    render,
)
from rtep.core import metrics


def _page() -> str:
    """A /metrics page as the pipeline serves it: rtep's metric names on a private registry."""
    registry = CollectorRegistry()
    Counter(metrics.EVENTS_CONSUMED._name, "", registry=registry).inc(1200)
    stored = Counter(metrics.EVENTS_STORED._name, "", ["sink"], registry=registry)
    stored.labels("events").inc(1100)
    stored.labels("redis").inc(900)
    rejected = Counter(metrics.EVENTS_REJECTED._name, "", ["reason"], registry=registry)
    rejected.labels("invalid_json").inc(7)
    rejected.labels("too_large")
    alerts = Counter(metrics.ALERTS._name, "", ["rule", "severity"], registry=registry)
    alerts.labels("failed_login_burst", "warning").inc(3)
    alerts.labels("credential_stuffing", "critical")
    Gauge(metrics.ACTIVE_SESSIONS._name, "", registry=registry).set(42)
    lag = Gauge(metrics.CONSUMER_LAG, "", ["partition"], registry=registry)
    lag.labels("0").set(5)
    lag.labels("1").set(2)
    return generate_latest(registry).decode()


PAGE = _page()
ALERT = AlertRow(
    "failed_login_burst", "warning", "user-000042", datetime(2026, 12, 3, 10, 0, 5, tzinfo=UTC)
)


def test_parse_metrics_reads_what_the_console_shows() -> None:
    sample = parse_metrics(PAGE, at=10.0)
    assert sample.consumed == 1200
    assert sample.stored == 1100  # rows in rtep.events, not Redis writes
    assert sample.rejected == {"invalid_json": 7, "too_large": 0}
    assert sample.alerts == {"failed_login_burst": 3, "credential_stuffing": 0}
    assert sample.open_sessions == 42
    assert sample.lag == 7


def test_lag_is_unknown_until_reported() -> None:
    assert parse_metrics(f"{metrics.ACTIVE_SESSIONS._name} 1.0\n", at=0).lag is None


def test_rates_are_slopes_over_the_window_and_restart_with_the_pipeline() -> None:
    rates = Rates(window=5.0)
    assert rates.per_second("consumed") is None
    for second in range(11):
        rates.add(Sample(at=float(second), consumed=200.0 * second, stored=100.0 * second))
    assert rates.per_second("consumed") == 200.0
    assert rates.per_second("stored") == 100.0
    rates.add(Sample(at=11.0, consumed=10.0))  # counters began again: a restarted pipeline
    assert rates.per_second("consumed") is None


def _frame(view: View, width: int) -> str:
    console = Console(record=True, width=width, file=io.StringIO())
    console.print(render(view, width))
    return console.export_text()


def test_a_frame_shows_rates_rejections_sessions_lag_and_alerts() -> None:
    view = View(65.0, parse_metrics(PAGE, at=65.0), 201.4, 198.0, (ALERT,))
    for width in (160, 80):  # side by side, or stacked on a narrow terminal
        text = _frame(view, width)
        assert "1:05" in text
        assert "201/s" in text and "1,200" in text and "1,100" in text
        assert (
            "invalid_json" in text and "too_large" not in text
        )  # reasons never seen are not listed
        assert "42" in text and "7" in text
        assert "failed_login_burst" in text and "credential_stuffing" not in text
        assert "10:00:05" in text and "user-000042" in text
    assert "pipeline starting" in _frame(View(1.0, None), 160)
    assert "none yet" in _frame(View(1.0, Sample(at=1.0)), 160)


def test_plain_line_carries_the_same_numbers() -> None:
    line = plain_line(View(65.0, parse_metrics(PAGE, at=65.0), 201.4, 198.0, (ALERT,)))
    assert "in 201/s (1,200)" in line
    assert "rejected 7 [invalid_json 7]" in line
    assert "sessions open 42" in line and "lag 7" in line
    assert "alerts 3 [failed_login_burst 3]" in line
    assert "latest failed_login_burst user-000042 10:00:05Z" in line


def test_off_a_terminal_the_screen_prints_a_plain_line_every_few_seconds() -> None:
    out = io.StringIO()
    screen = Screen(out, plain_every=5.0)
    assert not screen.live
    with screen:
        for second in range(12):
            screen.show(View(float(second), Sample(at=float(second))))
        screen.say("[not markup] stopped")
    lines = out.getvalue().splitlines()
    assert [line.split()[1] for line in lines[:3]] == ["0:00", "0:05", "0:10"]
    assert lines[3] == "[not markup] stopped"
