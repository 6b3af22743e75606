"""Exponential backoff with an upper bound and optional jitter (client-go's wait.Backoff)."""

from __future__ import annotations

import random


class Backoff:
    """Delays `initial`, `initial*factor`, … capped at `cap`; each multiplied by 1 + jitter*random().

    `reset()` after a success so the next failure starts small again.
    """

    def __init__(self, initial: float = 0.8, cap: float = 30.0, factor: float = 2.0, jitter: float = 0.0,
                 rng: random.Random | None = None) -> None:
        if initial <= 0 or cap < initial or factor < 1 or jitter < 0:
            raise ValueError("backoff needs 0 < initial <= cap, factor >= 1 and jitter >= 0")
        self.initial = initial
        self.cap = cap
        self.factor = factor
        self.jitter = jitter
        self._rng = rng or random.Random()
        self._current = initial

    def next(self) -> float:
        """The next delay to wait; later calls return longer delays up to the cap."""
        delay = self._current
        self._current = min(self.cap, self._current * self.factor)
        if self.jitter:
            delay *= 1 + self.jitter * self._rng.random()
        return delay

    def reset(self) -> None:
        self._current = self.initial
