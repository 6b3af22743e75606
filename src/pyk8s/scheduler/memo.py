"""Memoised results of the resource plugins, and the fused filter-score-select loop that reads them.

NodeResourcesFit's filter and the separable score plugins (NodeResourcesFit's LeastAllocated or
MostAllocated score, NodeResourcesBalancedAllocation) read only a node's resource sums and allocatable and
the pod's requests, and none has a normalize step. So for pods of one request shape a node's filter verdict
and its weighted score change only when the node does: with 1,000 nodes and one pod placed per cycle,
nearly every node's result is the one computed when the search window last passed it. A table per request
shape maps node name → (NodeInfo.generation, score, status); a generation names one state of one node.

A miss calls the plugins' own `filter` and `score`, so results are theirs exactly."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, TypeAlias

from pyk8s.scheduler.nodeinfo import NodeInfo, PodInfo

if TYPE_CHECKING:  # the framework imports this module
    from pyk8s.scheduler.framework import CycleState, Plugin, Snapshot, Status

# (node generation, weighted sum of the separable scores, the memo filter's Status: None when it fits)
Entry: TypeAlias = "tuple[int, int, Status | None]"
Table: TypeAlias = "dict[str, Entry]"
Shape = tuple[int, int, int]  # requested milli-CPU, memory, ephemeral-storage

_MISS: Entry = (-1, 0, None)  # no generation is negative
MAX_SHAPES = 8  # request shapes kept (least recently used dropped): 1,000 nodes are ~150 kB a shape


class ResourceMemo:
    """The memo of one framework: `fit` is its filter plugin marked `memo_filter` (or None), `separable`
    its score plugins marked `separable`, whose weighted scores are summed into one number per node."""

    def __init__(self, fit: Plugin | None, separable: Sequence[Plugin]) -> None:
        self.fit = fit
        self.separable = [(p, p.weight) for p in separable]
        self._tables: dict[Shape, Table] = {}

    @classmethod
    def of(cls, filters: Iterable[Plugin], scores: Iterable[Plugin]) -> ResourceMemo | None:
        fit = next((p for p in filters if p.memo_filter), None)
        separable = [p for p in scores if p.separable]
        return cls(fit, separable) if fit is not None or separable else None

    def table(self, pod: PodInfo, snap: Snapshot) -> Table | None:
        """The pod's request shape's table, or None when the pod requests extended resources (the shape
        would not cover them)."""
        req = pod.requests
        if req.scalars:
            return None
        shape = (req.milli_cpu, req.memory, req.ephemeral)
        table = self._tables.pop(shape, None)  # popped and put back: the dict's order is recency
        if table is None:
            table = {}
            if len(self._tables) >= MAX_SHAPES:
                del self._tables[next(iter(self._tables))]
        elif len(table) > 2 * len(snap.nodes) + 64:  # names of deleted nodes pile up: drop them
            table = {name: e for name, e in table.items() if name in snap.by_name}
        self._tables[shape] = table
        return table

    def compute(self, table: Table, state: CycleState, pod: PodInfo, node: NodeInfo) -> Entry:
        st = self.fit.filter(state, pod, node) if self.fit is not None else None
        score = 0
        for p, w in self.separable:
            score += p.score(state, pod, node) * w
        e = table[node.name] = (node.generation, score, st)
        return e

    def scores(self, table: Table, state: CycleState, pod: PodInfo, nodes: Sequence[NodeInfo]) -> list[int]:
        """The separable plugins' weighted sum for each node."""
        out: list[int] = []
        get = table.get
        for node in nodes:
            gen, s, _ = get(node.name, _MISS)
            if gen != node.generation:
                s = self.compute(table, state, pod, node)[1]
            out.append(s)
        return out

    def filter_score(
        self,
        table: Table,
        state: CycleState,
        pod: PodInfo,
        nodes: Iterable[NodeInfo],
        want: int,
        statuses: dict[str, Status],
    ) -> tuple[list[NodeInfo], list[int], int]:
        """The memo filter over `nodes` in order until `want` fit, when it is the only filter with work:
        (the fitting nodes, the indices of those with the highest separable score in order, how many nodes
        were checked); the failures' Status in `statuses`. Their scores stay in the table for `scores`."""
        feasible: list[NodeInfo] = []
        best: list[int] = []
        top = -1
        found = checked = 0
        get = table.get
        compute = self.compute
        for checked, node in enumerate(nodes, 1):  # noqa: B007 (checked is the result)
            gen, s, st = get(node.name, _MISS)
            if gen != node.generation:
                gen, s, st = compute(table, state, pod, node)
            if st is None:
                if s >= top:
                    if s > top:
                        top = s
                        best = [found]
                    else:
                        best.append(found)
                feasible.append(node)
                found += 1
                if found >= want:
                    break
            else:
                statuses[node.name] = st
        return feasible, best, checked
