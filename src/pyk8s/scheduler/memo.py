"""Memoised results of the resource plugins, and the fused filter-score-select pass that reads them.

NodeResourcesFit's filter and the separable score plugins (NodeResourcesFit's LeastAllocated or
MostAllocated score, NodeResourcesBalancedAllocation) read only a node's resource sums and allocatable and
the pod's requests, and none has a normalize step. So for pods of one request shape a node's filter verdict
and its weighted score change only when the node does: with 1,000 nodes and one pod placed per cycle,
nearly every node's result is the one computed when the search window last passed it.

A table per request shape keeps, in lists aligned with the snapshot's nodes, the NodeInfo.generation each
result was computed at (a generation names one state of one node), the score and the filter's Status. The
lists let the fused pass do its per-node work with slices and builtins: compare the window's generations,
recompute the few that moved, and take the feasible nodes, the highest score and its ties in C.

A miss calls the plugins' own `filter` and `score`, so results are theirs exactly."""

from __future__ import annotations

import operator
from collections.abc import Iterable, Iterator, Sequence
from itertools import compress, repeat
from typing import TYPE_CHECKING

from pyk8s.scheduler.nodeinfo import NodeInfo, PodInfo

if TYPE_CHECKING:  # the framework imports this module
    from pyk8s.scheduler.framework import CycleState, Plugin, Snapshot, Status

Shape = tuple[int, int, int]  # requested milli-CPU, memory, ephemeral-storage
MAX_SHAPES = 8  # request shapes kept (least recently used dropped): 1,000 nodes take ~60 kB a shape
_generation = operator.attrgetter("generation")


class Table:
    """One request shape's results, aligned with one snapshot's node list (re-aligned, empty, when the
    snapshot's nodes change). A generation of -1 is a result not computed."""

    __slots__ = ("gens", "index", "nodes", "scores", "statuses")

    def __init__(self) -> None:
        self.nodes: list[NodeInfo] = []
        self.index: dict[str, int] = {}
        self.gens: list[int] = []
        self.scores: list[int] = []
        self.statuses: list[Status | None] = []

    def align(self, nodes: list[NodeInfo]) -> None:
        if nodes is self.nodes:
            return
        n = len(nodes)
        self.nodes = nodes
        self.index = {node.name: i for i, node in enumerate(nodes)}
        self.gens = [-1] * n
        self.scores = [0] * n
        self.statuses = [None] * n


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
        """The pod's request shape's table, aligned with `snap`; None when the pod requests extended
        resources (the shape would not cover them)."""
        req = pod.requests
        if req.scalars:
            return None
        shape = (req.milli_cpu, req.memory, req.ephemeral)
        table = self._tables.pop(shape, None)  # popped and put back: the dict's order is recency
        if table is None:
            table = Table()
            if len(self._tables) >= MAX_SHAPES:
                del self._tables[next(iter(self._tables))]
        self._tables[shape] = table
        table.align(snap.nodes)
        return table

    def compute(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> tuple[int, Status | None]:
        """The plugins' own results: the weighted separable score and the memo filter's Status."""
        st = self.fit.filter(state, pod, node) if self.fit is not None else None
        score = 0
        for p, w in self.separable:
            score += p.score(state, pod, node) * w
        return score, st

    def _refresh(self, table: Table, state: CycleState, pod: PodInfo, lo: int, hi: int) -> None:
        """Recompute the results in [lo, hi) whose node moved on since."""
        nodes, gens = table.nodes, table.gens
        now = list(map(_generation, nodes[lo:hi]))
        if now == gens[lo:hi]:
            return
        scores, statuses = table.scores, table.statuses
        for i in compress(range(lo, hi), map(operator.ne, now, gens[lo:hi])):
            scores[i], statuses[i] = self.compute(state, pod, nodes[i])
            gens[i] = now[i - lo]

    def scores(self, table: Table, state: CycleState, pod: PodInfo, nodes: Sequence[NodeInfo]) -> list[int]:
        """The separable plugins' weighted sum for each of `nodes` (snapshot nodes or views of them)."""
        out: list[int] = []
        index, gens, scores = table.index, table.gens, table.scores
        for node in nodes:
            i = index.get(node.name)
            if i is not None and gens[i] == node.generation:
                out.append(scores[i])
                continue
            score, st = self.compute(state, pod, node)
            if i is not None and table.nodes[i] is node:
                gens[i], scores[i], table.statuses[i] = node.generation, score, st
            out.append(score)
        return out

    def filter_score(
        self,
        table: Table,
        state: CycleState,
        pod: PodInfo,
        start: int,
        want: int,
        statuses: dict[str, Status],
    ) -> tuple[list[NodeInfo], list[int] | Ties, int]:
        """The memo filter over the table's nodes from `start` round until `want` fit, when it is the only
        filter with work: (the fitting nodes, the indices of those with the highest separable score in
        order, how many nodes were checked); the failures' Status in `statuses`."""
        nodes = table.nodes
        total = len(nodes)
        feasible: list[NodeInfo] = []
        fscores: list[int] = []
        checked = 0
        for lo, end in ((start, total), (0, start)):
            # Chunks of as many nodes as fits are still wanted: all fit (the usual case) ends the search
            # exactly at the last wanted one, as a node-by-node loop would.
            while lo < end and len(feasible) < want:
                hi = min(end, lo + want - len(feasible))
                self._refresh(table, state, pod, lo, hi)
                sts = table.statuses[lo:hi]
                if sts.count(None) == hi - lo:
                    feasible += nodes[lo:hi]
                    fscores += table.scores[lo:hi]
                else:
                    for i, st in enumerate(sts, lo):
                        if st is None:
                            feasible.append(nodes[i])
                            fscores.append(table.scores[i])
                        else:
                            statuses[nodes[i].name] = st
                checked += hi - lo
                lo = hi
        if not fscores:
            return feasible, [], checked
        top = max(fscores)
        ties = fscores.count(top)
        return feasible, [fscores.index(top)] if ties == 1 else Ties(fscores, top, ties), checked


class Ties:
    """The indices of the `count` occurrences of `top` in `scores`, in order, found on demand: a pick among
    hundreds of ties (random.choice asks for one index) need not list them all."""

    __slots__ = ("_count", "_scores", "_top")
    _CHUNK = 32

    def __init__(self, scores: list[int], top: int, count: int) -> None:
        self._scores, self._top, self._count = scores, top, count

    def __len__(self) -> int:
        return self._count

    def __getitem__(self, k: int) -> int:
        if k < 0:
            k += self._count
        if not 0 <= k < self._count:
            raise IndexError(k)
        scores, top, step = self._scores, self._top, self._CHUNK
        lo = 0
        while True:  # whole chunks counted in C, then the k-th found in the one that holds it
            chunk = scores[lo : lo + step]
            n = chunk.count(top)
            if k < n:
                break
            k -= n
            lo += step
        i = chunk.index(top)
        for _ in range(k):
            i = chunk.index(top, i + 1)
        return lo + i

    def __iter__(self) -> Iterator[int]:
        return compress(range(len(self._scores)), map(operator.eq, self._scores, repeat(self._top)))
