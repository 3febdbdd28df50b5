"""The live console of ``rtep run``: what the running pipeline does, on one screen.

The numbers come from where an operator looks later — the pipeline's ``/metrics`` (rates,
rejections by reason, open sessions, consumer lag, alerts by rule) and PostgreSQL (the latest
alerts) — so the console shows the real outcome, not the simulator's intentions, and teaches
where to look. On a terminal it is a ``rich`` live view redrawn every second; when stdout is not
a terminal (CI, a pipe, a file) it is one plain line every few seconds. Logs never go here: every
process writes its JSON lines to ``.run/*.log``.
"""

from __future__ import annotations

import urllib.request
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TextIO

from prometheus_client.parser import text_string_to_metric_families
from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.table import Table
from rich.text import Text

from rtep.core import metrics
from sinks.pg_tables import EVENTS

LATEST_ALERTS = 5
MAX_ROWS = 8  # per table: the console must fit a terminal
WIDE = 110  # columns from which the three tables stand side by side


@dataclass(frozen=True)
class Sample:
    """One scrape of the pipeline's /metrics; ``at`` is monotonic seconds."""

    at: float
    consumed: float = 0.0
    stored: float = 0.0  # new rows in rtep.events
    rejected: dict[str, float] = field(default_factory=dict)
    open_sessions: float = 0.0
    lag: float | None = None  # None until the Kafka input reports it
    alerts: dict[str, float] = field(default_factory=dict)  # incidents by rule


def parse_metrics(text: str, at: float) -> Sample:
    """The console's numbers from a /metrics page (metric names come from rtep.core.metrics)."""
    consumed_total = f"{metrics.EVENTS_CONSUMED._name}_total"
    stored_total = f"{metrics.EVENTS_STORED._name}_total"
    rejected_total = f"{metrics.EVENTS_REJECTED._name}_total"
    alerts_total = f"{metrics.ALERTS._name}_total"
    consumed = stored = sessions = 0.0
    rejected: dict[str, float] = {}
    alerts: dict[str, float] = {}
    lag: float | None = None
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            name, labels, value = sample.name, sample.labels, sample.value
            if name == consumed_total:
                consumed += value
            elif name == stored_total and labels.get("sink") == EVENTS.sink:
                stored += value
            elif name == rejected_total:
                rejected[labels["reason"]] = rejected.get(labels["reason"], 0.0) + value
            elif name == alerts_total:
                alerts[labels["rule"]] = alerts.get(labels["rule"], 0.0) + value
            elif name == metrics.ACTIVE_SESSIONS._name:
                sessions += value
            elif name == metrics.CONSUMER_LAG:
                lag = (lag or 0.0) + value
    return Sample(at, consumed, stored, rejected, sessions, lag, alerts)


def scrape(port: int, at: float, timeout: float = 2.0) -> Sample | None:
    """The pipeline's numbers now, or None while it does not serve /metrics (starting, stopped)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=timeout) as resp:
            return parse_metrics(resp.read().decode(), at)
    except OSError:
        return None


class Rates:
    """Per-second rates over the last ``window`` seconds of samples (a counter's slope)."""

    def __init__(self, window: float = 5.0) -> None:
        self.window = window
        self._samples: deque[Sample] = deque()

    def add(self, sample: Sample) -> None:
        """Keep ``sample``; forget those older than the window (but always two to compare)."""
        if self._samples and sample.consumed < self._samples[-1].consumed:
            self._samples.clear()  # the pipeline restarted: its counters began again
        self._samples.append(sample)
        while len(self._samples) > 2 and sample.at - self._samples[1].at >= self.window:
            self._samples.popleft()

    def per_second(self, attribute: str) -> float | None:
        """The rate of ``consumed`` or ``stored`` over the window, None before two samples."""
        if len(self._samples) < 2:
            return None
        first, last = self._samples[0], self._samples[-1]
        seconds = last.at - first.at
        if seconds <= 0:
            return None
        return float(getattr(last, attribute) - getattr(first, attribute)) / seconds


@dataclass(frozen=True)
class AlertRow:
    """One alert as the console lists it."""

    rule: str
    severity: str
    subject: str
    created_at: datetime


@dataclass(frozen=True)
class View:
    """Everything one frame of the console shows."""

    elapsed: float
    sample: Sample | None
    in_rate: float | None = None
    stored_rate: float | None = None
    latest: tuple[AlertRow, ...] = ()
    state: str = "running"


def _count(value: float) -> str:
    return f"{value:,.0f}"


def _rate(value: float | None) -> str:
    return "…" if value is None else f"{value:,.0f}/s"


def _clock(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes}:{secs:02d}"


def _by_count(counts: dict[str, float]) -> list[tuple[str, float]]:
    return sorted(((k, v) for k, v in counts.items() if v), key=lambda kv: (-kv[1], kv[0]))


def _table(
    title: str,
    columns: Iterable[str],
    rows: Iterable[Iterable[str]],
    empty: str,
    numeric: Iterable[int] = (),
) -> Table:
    table = Table(title=title, title_justify="left", title_style="bold", expand=False)
    right = set(numeric)
    for index, column in enumerate(columns):
        table.add_column(column, justify="right" if index in right else "left")
    listed = list(rows)
    for row in listed[:MAX_ROWS]:
        table.add_row(*row)
    if len(listed) > MAX_ROWS:
        table.add_row(Text(f"… {len(listed) - MAX_ROWS} more", style="dim"))
    if not listed:
        table.add_row(Text(empty, style="dim"))
    return table


def _top(counts: list[tuple[str, float]], most: int = 4) -> str:
    """``" [a 5, b 3, +2 more]"``, or "" when nothing was counted."""
    if not counts:
        return ""
    shown = [f"{name} {_count(n)}" for name, n in counts[:most]]
    if len(counts) > most:
        shown.append(f"+{len(counts) - most} more")
    return " [" + ", ".join(shown) + "]"


def render(view: View, width: int = WIDE) -> RenderableType:
    """The live view of one frame on a terminal ``width`` columns wide."""
    header = Text.assemble(
        ("rtep run", "bold"), f"  {_clock(view.elapsed)}  ", (view.state, "green"), "  Ctrl-C stops"
    )
    sample = view.sample
    if sample is None:
        return Group(header, Text("pipeline starting (its /metrics does not answer yet)…"))
    flow = _table(
        "Pipeline",
        ("", "now", "total"),
        [
            ("events in", _rate(view.in_rate), _count(sample.consumed)),
            ("stored in PostgreSQL", _rate(view.stored_rate), _count(sample.stored)),
            ("rejected (dead letters)", "", _count(sum(sample.rejected.values()))),
            ("open sessions", _count(sample.open_sessions), ""),
            ("consumer lag (messages)", "…" if sample.lag is None else _count(sample.lag), ""),
        ],
        "",
        numeric=(1, 2),
    )
    rejected = _table(
        "Rejected by reason",
        ("reason", "messages"),
        ((reason, _count(n)) for reason, n in _by_count(sample.rejected)),
        "none yet",
        numeric=(1,),
    )
    alerts = _table(
        "Alerts by rule",
        ("rule", "incidents"),
        ((rule, _count(n)) for rule, n in _by_count(sample.alerts)),
        "none yet",
        numeric=(1,),
    )
    latest = _table(
        "Latest alerts",
        ("when (UTC)", "rule", "severity", "subject"),
        ((a.created_at.strftime("%H:%M:%S"), a.rule, a.severity, a.subject) for a in view.latest),
        "none yet",
    )
    if width < WIDE:
        return Group(header, flow, rejected, alerts, latest)
    side = Table.grid(padding=(0, 2))
    side.add_row(flow, rejected, alerts)
    return Group(header, side, latest)


def plain_line(view: View) -> str:
    """One frame as one line (stdout is not a terminal)."""
    sample = view.sample
    if sample is None:
        return f"rtep {_clock(view.elapsed)} pipeline starting"
    rejected = _by_count(sample.rejected)
    alerts = _by_count(sample.alerts)
    parts = [
        f"rtep {_clock(view.elapsed)}",
        f"in {_rate(view.in_rate)} ({_count(sample.consumed)})",
        f"stored {_rate(view.stored_rate)} ({_count(sample.stored)})",
        f"rejected {_count(sum(n for _, n in rejected))}{_top(rejected)}",
        f"sessions open {_count(sample.open_sessions)}",
        f"lag {'…' if sample.lag is None else _count(sample.lag)}",
        f"alerts {_count(sum(n for _, n in alerts))}{_top(alerts)}",
    ]
    if view.latest:
        newest = view.latest[0]
        parts.append(
            f"latest {newest.rule} {newest.subject} {newest.created_at.strftime('%H:%M:%S')}Z"
        )
    return " | ".join(parts)


class Screen:
    """Where frames go: a live region on a terminal, a plain line every ``plain_every`` s otherwise.

    ``say`` prints a permanent message (above the live region on a terminal).
    """

    def __init__(self, out: TextIO, plain_every: float = 5.0, width: int | None = None) -> None:
        self.console = Console(file=out, width=width, highlight=False)
        self.live = self.console.is_terminal
        self.plain_every = plain_every
        self._last_plain: float | None = None
        self._live: Live | None = None

    def __enter__(self) -> Screen:
        if self.live:
            self._live = Live(console=self.console, auto_refresh=False, transient=False)
            self._live.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None

    def show(self, view: View) -> None:
        """Draw ``view`` (on a terminal) or print it as a line when one is due."""
        if self._live is not None:
            self._live.update(render(view, self.console.width), refresh=True)
        elif self._last_plain is None or view.elapsed - self._last_plain >= self.plain_every:
            self._last_plain = view.elapsed
            self.console.print(plain_line(view), soft_wrap=True, markup=False)

    def say(self, text: str) -> None:
        """A permanent message."""
        self.console.print(text, soft_wrap=True, markup=False)
