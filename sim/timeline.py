"""The time model: which simulated timestamps a finite run covers, and when each is sent."""

from __future__ import annotations

from dataclasses import dataclass

MIN_DEFAULT_SPAN = 900.0
SECONDS_PER_EVENT_PER_USER = 60.0


@dataclass(frozen=True, slots=True)
class Timeline:
    """Timestamps cover ``[t0, t0 + span]``; the run lasts ``duration`` wall seconds.

    An event with timestamp ``ts`` is sent ``send_offset(ts)`` seconds after the run starts.
    """

    t0: float
    span: float
    duration: float

    @classmethod
    def plan(
        cls, *, count: int, rate: float, users: int, wall: float, span: float | None = None,
        start: float | None = None,
    ) -> Timeline:  # fmt: skip
        """The timeline of a run starting at ``wall`` (epoch seconds).

        Default span: count/rate (real time); with rate 0, one event per user per minute (at
        least 15 minutes). Without ``start``, a span at least as long as the run ends when the
        last message is sent (every timestamp is in the past when sent); a shorter span starts
        at ``wall``.
        """
        duration = count / rate if rate > 0 else 0.0
        if span is None:
            span = duration if rate > 0 else max(
                MIN_DEFAULT_SPAN, SECONDS_PER_EVENT_PER_USER * count / users
            )  # fmt: skip
        if span <= 0:
            raise ValueError("--span must be positive")
        t0 = start if start is not None else wall - max(0.0, span - duration)
        return cls(t0, span, duration)

    def send_offset(self, ts: float) -> float:
        """Wall seconds after the run's start at which the event stamped ``ts`` goes out."""
        return (ts - self.t0) * self.duration / self.span

    def ends_in_future(self, wall: float, skew: float) -> bool:
        """Whether the last timestamp lies more than ``skew`` past the run's end."""
        return self.t0 + self.span > wall + self.duration + skew
