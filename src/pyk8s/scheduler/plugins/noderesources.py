"""NodeResourcesFit (requests against allocatable; LeastAllocated or MostAllocated scoring) and
NodeResourcesBalancedAllocation."""

from __future__ import annotations

from collections.abc import Iterable

from pyk8s.scheduler.framework import MAX_NODE_SCORE, CycleState, Plugin, Snapshot, Status, unschedulable
from pyk8s.scheduler.nodeinfo import NodeInfo, PodInfo
from pyk8s.scheduler.resources import CPU, MEMORY

FIT = "NodeResourcesFit"
BALANCED = "NodeResourcesBalancedAllocation"
TOO_MANY_PODS = "Too many pods"


def insufficient(pod: PodInfo, node: NodeInfo) -> list[str]:
    """noderesources.fitsRequest: the reasons, in Kubernetes' order (pods, cpu, memory, storage, scalars)."""
    reasons: list[str] = []
    if len(node.pods) + 1 > node.allowed_pods:
        reasons.append(TOO_MANY_PODS)
    req = pod.requests
    if req.is_zero():
        return reasons
    alloc, used = node.allocatable, node.requested
    if req.milli_cpu > 0 and req.milli_cpu > alloc.milli_cpu - used.milli_cpu:
        reasons.append("Insufficient cpu")
    if req.memory > 0 and req.memory > alloc.memory - used.memory:
        reasons.append("Insufficient memory")
    if req.ephemeral > 0 and req.ephemeral > alloc.ephemeral - used.ephemeral:
        reasons.append("Insufficient ephemeral-storage")
    for name, amount in req.scalars.items():
        if amount > 0 and amount > alloc.scalars.get(name, 0) - used.scalars.get(name, 0):
            reasons.append(f"Insufficient {name}")
    return reasons


def least_allocated(requested: int, allocatable: int) -> int:
    if allocatable <= 0 or requested > allocatable:
        return 0
    return (allocatable - requested) * MAX_NODE_SCORE // allocatable


def most_allocated(requested: int, allocatable: int) -> int:
    if allocatable <= 0:
        return 0
    return min(requested, allocatable) * MAX_NODE_SCORE // allocatable


class NodeResourcesFit(Plugin):
    name = FIT
    filters = True
    scores = True
    memo_filter = True
    separable = True

    def __init__(self, strategy: str = "LeastAllocated") -> None:
        if strategy not in ("LeastAllocated", "MostAllocated"):
            raise ValueError(f"unknown scoring strategy {strategy}")
        self.fn = least_allocated if strategy == "LeastAllocated" else most_allocated

    def filter(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> Status | None:
        # The common case first, without building a list: this runs for every pod on hundreds of nodes.
        req, alloc, used = pod.requests, node.allocatable, node.requested
        if (
            len(node.pods) < node.allowed_pods
            and req.milli_cpu <= alloc.milli_cpu - used.milli_cpu
            and req.memory <= alloc.memory - used.memory
            and req.ephemeral <= alloc.ephemeral - used.ephemeral
            and not req.scalars
        ):
            return None
        reasons = insufficient(pod, node)
        return unschedulable(FIT, *reasons) if reasons else None

    def filter_until(
        self,
        state: CycleState,
        pod: PodInfo,
        nodes: Iterable[NodeInfo],
        want: int,
        statuses: dict[str, Status],
    ) -> tuple[list[NodeInfo], int]:
        req = pod.requests
        if req.scalars:
            return super().filter_until(state, pod, nodes, want, statuses)
        cpu, mem, eph = req.milli_cpu, req.memory, req.ephemeral
        feasible: list[NodeInfo] = []
        checked = 0
        for node in nodes:  # filter() inlined: the hottest loop of the scheduler
            checked += 1
            alloc, used = node.allocatable, node.requested
            if (
                len(node.pods) < node.allowed_pods
                and cpu <= alloc.milli_cpu - used.milli_cpu
                and mem <= alloc.memory - used.memory
                and eph <= alloc.ephemeral - used.ephemeral
            ) or not (reasons := insufficient(pod, node)):
                feasible.append(node)
                if len(feasible) >= want:
                    break
            else:
                statuses[node.name] = unschedulable(FIT, *reasons)
        return feasible, checked

    def score(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> int:
        fn = self.fn
        cpu_alloc, mem_alloc = node.allocatable.milli_cpu, node.allocatable.memory
        cpu = fn(node.non_zero_cpu + pod.non_zero[0], cpu_alloc)
        return (cpu + fn(node.non_zero_memory + pod.non_zero[1], mem_alloc)) // 2  # cpu and memory, weight 1

    def score_all(self, state: CycleState, pod: PodInfo, nodes: list[NodeInfo]) -> list[int]:
        cpu, mem = pod.non_zero
        if self.fn is least_allocated:  # inlined: the hottest loop of the scheduler
            out = []
            for n in nodes:
                ac, am = n.allocatable.milli_cpu, n.allocatable.memory
                rc, rm = n.non_zero_cpu + cpu, n.non_zero_memory + mem
                c = (ac - rc) * MAX_NODE_SCORE // ac if ac > 0 and rc <= ac else 0
                m = (am - rm) * MAX_NODE_SCORE // am if am > 0 and rm <= am else 0
                out.append((c + m) // 2)
            return out
        return [self.score(state, pod, n) for n in nodes]


class NodeResourcesBalancedAllocation(Plugin):
    """Prefers nodes whose cpu and memory fractions stay close: (1 - std) * 100."""

    name = BALANCED
    scores = True
    separable = True

    def pre_score(
        self, state: CycleState, pod: PodInfo, nodes: list[NodeInfo], snap: Snapshot
    ) -> Status | None:
        return None

    def score(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> int:
        cpu_alloc, mem_alloc = node.allocatable.milli_cpu, node.allocatable.memory
        fc = min((node.non_zero_cpu + pod.non_zero[0]) / cpu_alloc, 1.0) if cpu_alloc else 1.0
        fm = min((node.non_zero_memory + pod.non_zero[1]) / mem_alloc, 1.0) if mem_alloc else 1.0
        std = abs(fc - fm) / 2  # the standard deviation of two values
        return int((1 - std) * MAX_NODE_SCORE)

    def score_all(self, state: CycleState, pod: PodInfo, nodes: list[NodeInfo]) -> list[int]:
        cpu, mem = pod.non_zero
        out = []
        for n in nodes:  # score() inlined, without calls: this runs for hundreds of nodes per pod
            ac, am = n.allocatable.milli_cpu, n.allocatable.memory
            fc = (n.non_zero_cpu + cpu) / ac if ac else 1.0
            fm = (n.non_zero_memory + mem) / am if am else 1.0
            if fc > 1.0:
                fc = 1.0
            if fm > 1.0:
                fm = 1.0
            d = fc - fm if fc > fm else fm - fc
            out.append(int((1 - d / 2) * MAX_NODE_SCORE))
        return out


__all__ = [
    "BALANCED",
    "CPU",
    "FIT",
    "MEMORY",
    "NodeResourcesBalancedAllocation",
    "NodeResourcesFit",
    "insufficient",
]
