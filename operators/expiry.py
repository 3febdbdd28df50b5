"""Expiry by event time, per key: what lets an operator forget a subject the moment it may."""

from __future__ import annotations

import heapq
from collections.abc import Callable, Hashable
from datetime import datetime
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)


class ExpiryQueue(Generic[K]):
    """Lazy min-heap of event-time expiries per key.

    Each key has one live heap entry whose time is a lower bound of the key's real expiry, so an
    event that pushes an expiry later costs nothing (no heap operation): the entry is re-pushed
    with the real time when it surfaces. Stale entries are skipped.
    """

    __slots__ = ("_at", "_heap")

    def __init__(self, scheduled: tuple[tuple[K, datetime], ...] = ()) -> None:
        self._at: dict[K, datetime] = dict(scheduled)
        self._heap: list[tuple[datetime, K]] = [(at, key) for key, at in scheduled]
        heapq.heapify(self._heap)

    def schedule(self, key: K, at: datetime) -> None:
        """Make sure ``key`` surfaces no later than ``at``."""
        current = self._at.get(key)
        if current is None or at < current:
            self._at[key] = at
            heapq.heappush(self._heap, (at, key))

    def earliest(self) -> datetime | None:
        """The lower bound of the earliest expiry (None when nothing is scheduled)."""
        heap, at = self._heap, self._at
        while heap and at.get(heap[0][1]) != heap[0][0]:
            heapq.heappop(heap)
        return heap[0][0] if heap else None

    def due(self, watermark: datetime, expiry_of: Callable[[K], datetime | None]) -> list[K]:
        """Keys whose real expiry (``expiry_of``) is before ``watermark``, in expiry order.

        Returned keys are unscheduled; ``expiry_of`` returning None means the key is gone.
        """
        heap, at = self._heap, self._at
        due: list[K] = []
        while heap and heap[0][0] < watermark:
            when, key = heapq.heappop(heap)
            if at.get(key) != when:
                continue
            actual = expiry_of(key)
            if actual is None or actual <= when:
                del at[key]
                if actual is not None:
                    due.append(key)
            else:  # surfaces again at its real time (maybe in this same call)
                at[key] = actual
                heapq.heappush(heap, (actual, key))
        return due

    def __len__(self) -> int:
        return len(self._at)

    def snapshot(self) -> tuple[tuple[K, datetime], ...]:
        """Immutable state for recovery (the live entries only)."""
        return tuple(self._at.items())
