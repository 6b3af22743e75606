"""Controller expectations (client-go's ControllerExpectations): how many creates and deletes a controller
has issued for an owner and not yet seen in its informer.

Right after a ReplicaSet controller creates 3 pods, its pod cache still shows none; reconciling again at
that moment would create 3 more. So it records `expect_creations(key, 3)`, the pod informer's add handler
calls `creation_observed(key)`, and reconcile only acts when `satisfied(key)`. An expectation older than
the TTL (5 minutes) counts as satisfied, so a lost event can delay a controller but never wedge it.
"""

from __future__ import annotations

from dataclasses import dataclass

from pyk8s.util.clock import MONOTONIC, Clock

__all__ = ["EXPECTATIONS_TTL", "ControllerExpectations"]

EXPECTATIONS_TTL = 5 * 60.0


@dataclass
class _Expectation:
    add: int
    delete: int
    timestamp: float

    def fulfilled(self) -> bool:
        return self.add <= 0 and self.delete <= 0


class ControllerExpectations:
    def __init__(self, ttl: float = EXPECTATIONS_TTL, clock: Clock = MONOTONIC) -> None:
        self.ttl = ttl
        self._clock = clock
        self._store: dict[str, _Expectation] = {}

    def expect_creations(self, key: str, adds: int) -> None:
        self.set_expectations(key, adds, 0)

    def expect_deletions(self, key: str, deletes: int) -> None:
        self.set_expectations(key, 0, deletes)

    def set_expectations(self, key: str, adds: int, deletes: int) -> None:
        """Replace whatever was expected for key (a fresh count and timestamp)."""
        self._store[key] = _Expectation(adds, deletes, self._clock.now())

    def lower_expectations(self, key: str, adds: int, deletes: int) -> None:
        exp = self._store.get(key)
        if exp is not None:
            exp.add -= adds
            exp.delete -= deletes

    def creation_observed(self, key: str) -> None:
        self.lower_expectations(key, 1, 0)

    def deletion_observed(self, key: str) -> None:
        self.lower_expectations(key, 0, 1)

    def satisfied(self, key: str) -> bool:
        """True when reconcile may act: nothing pending, the expectations are met, or they expired.
        An unknown key is satisfied (a new owner, or one whose expectations were deleted)."""
        exp = self._store.get(key)
        if exp is None:
            return True
        return exp.fulfilled() or self._clock.now() - exp.timestamp > self.ttl

    def get(self, key: str) -> tuple[int, int] | None:
        """(pending adds, pending deletes) for key, if anything is recorded."""
        exp = self._store.get(key)
        return None if exp is None else (exp.add, exp.delete)

    def delete_expectations(self, key: str) -> None:
        """Forget key (its owner was deleted)."""
        self._store.pop(key, None)
