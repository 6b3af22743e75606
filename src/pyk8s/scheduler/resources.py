"""Resource requests of pods and allocatable of nodes, in integers (milli-CPU, bytes), as Kubernetes'
resource helpers compute them."""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pyk8s.api.quantity import QuantityError, parse_quantity

CPU = "cpu"
MEMORY = "memory"
EPHEMERAL = "ephemeral-storage"
PODS = "pods"

# Scoring counts a pod that requests nothing as if it asked for this much (schedutil.DefaultMilliCPURequest
# and DefaultMemoryRequest), so that many such pods still spread.
DEFAULT_MILLI_CPU = 100
DEFAULT_MEMORY = 200 * 1024 * 1024


def _amount(name: str, value: Any) -> int:
    if isinstance(value, str):  # the usual form; few distinct ones, and parsing is most of a PodInfo's cost
        return _amount_of_text(name == CPU, value)
    return _parse(name == CPU, value)


def _parse(milli: bool, value: Any) -> int:
    try:
        q = parse_quantity(value)
    except QuantityError:
        return 0
    return math.ceil(q * 1000) if milli else math.ceil(q)


_amount_of_text = functools.lru_cache(maxsize=1024)(_parse)


@dataclass(slots=True)
class Resource:
    milli_cpu: int = 0
    memory: int = 0
    ephemeral: int = 0
    scalars: dict[str, int] = field(default_factory=dict)  # extended resources, hugepages

    @classmethod
    def from_list(cls, resources: Mapping[str, Any] | None) -> Resource:
        r = cls()
        for name, value in (resources or {}).items():
            r.set(name, _amount(name, value))
        return r

    def get(self, name: str) -> int:
        if name == CPU:
            return self.milli_cpu
        if name == MEMORY:
            return self.memory
        if name == EPHEMERAL:
            return self.ephemeral
        return self.scalars.get(name, 0)

    def set(self, name: str, value: int) -> None:
        if name == CPU:
            self.milli_cpu = value
        elif name == MEMORY:
            self.memory = value
        elif name == EPHEMERAL:
            self.ephemeral = value
        elif name != PODS:
            self.scalars[name] = value

    def names(self) -> Iterable[str]:
        yield CPU
        yield MEMORY
        yield EPHEMERAL
        yield from self.scalars

    def add(self, other: Resource, sign: int = 1) -> None:
        self.milli_cpu += sign * other.milli_cpu
        self.memory += sign * other.memory
        self.ephemeral += sign * other.ephemeral
        for k, v in other.scalars.items():
            self.scalars[k] = self.scalars.get(k, 0) + sign * v

    def max_with(self, other: Resource) -> None:
        self.milli_cpu = max(self.milli_cpu, other.milli_cpu)
        self.memory = max(self.memory, other.memory)
        self.ephemeral = max(self.ephemeral, other.ephemeral)
        for k, v in other.scalars.items():
            self.scalars[k] = max(self.scalars.get(k, 0), v)

    def is_zero(self) -> bool:
        return not (self.milli_cpu or self.memory or self.ephemeral or any(self.scalars.values()))

    def copy(self) -> Resource:
        return Resource(self.milli_cpu, self.memory, self.ephemeral, dict(self.scalars))


def _requests(container: Mapping[str, Any]) -> Resource:
    return Resource.from_list((container.get("resources") or {}).get("requests"))


def _is_sidecar(container: Mapping[str, Any]) -> bool:
    return container.get("restartPolicy") == "Always"


def pod_requests(pod: Mapping[str, Any]) -> Resource:
    """resourcehelper.PodRequests: the sum of the containers (and sidecar init containers), at least the
    largest init container plus the sidecars started before it, plus the pod overhead."""
    spec = pod.get("spec") or {}
    total = Resource()
    for c in spec.get("containers") or []:
        total.add(_requests(c))
    init_max = Resource()
    sidecars = Resource()
    for c in spec.get("initContainers") or []:
        req = _requests(c)
        if _is_sidecar(c):
            sidecars.add(req)
            total.add(req)
            init_max.max_with(sidecars)
        else:
            req.add(sidecars)
            init_max.max_with(req)
    total.max_with(init_max)
    if overhead := spec.get("overhead"):
        total.add(Resource.from_list(overhead))
    return total


def non_zero(requests: Resource) -> tuple[int, int]:
    """The (milli-CPU, memory) scoring uses: defaults for what the pod does not request."""
    return (requests.milli_cpu or DEFAULT_MILLI_CPU, requests.memory or DEFAULT_MEMORY)
