"""The scheduling framework: Status codes, the plugin base, the snapshot a cycle reads, and one cycle
(PreFilter → Filter → PreScore/Score → normalise and weight → select) as Kubernetes' schedule_one.go."""

from __future__ import annotations

import enum
import itertools
import random
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from pyk8s.scheduler.memo import ResourceMemo, Table, Ties
from pyk8s.scheduler.nodeinfo import NodeInfo, PodInfo

MAX_NODE_SCORE = 100
# numFeasibleNodesToFind: below this many nodes every node is checked; never fewer are looked for.
MIN_FEASIBLE_NODES_TO_FIND = 100
MIN_FEASIBLE_NODES_PERCENTAGE_TO_FIND = 5


class Code(enum.IntEnum):
    SUCCESS = 0
    ERROR = 1
    UNSCHEDULABLE = 2
    # Removing pods from the node would not help: preemption skips such nodes.
    UNSCHEDULABLE_AND_UNRESOLVABLE = 3
    SKIP = 5


@dataclass(frozen=True, slots=True)
class Status:
    code: Code
    reasons: tuple[str, ...] = ()
    plugin: str = ""

    @property
    def message(self) -> str:
        return ", ".join(self.reasons)


SKIP = Status(Code.SKIP)


def unschedulable(plugin: str, *reasons: str, resolvable: bool = True) -> Status:
    return Status(Code.UNSCHEDULABLE if resolvable else Code.UNSCHEDULABLE_AND_UNRESOLVABLE, reasons, plugin)


@dataclass(slots=True)
class Counts:
    """What the cache holds across all nodes, kept as it changes, so that a cycle in a cluster with none of
    it skips a scan of every node. A count may be too high (preemption's clones drop pods), never too low."""

    affinity_pods: int = 0  # pods with any pod (anti-)affinity
    required_anti_affinity_pods: int = 0
    nodes_with_images: int = 0


class Snapshot:
    """The nodes a cycle sees. The cycle runs without awaiting, so it reads the cache's NodeInfos in place;
    preemption swaps in clones with `replace`."""

    def __init__(
        self,
        nodes: Sequence[NodeInfo],
        namespaces: Callable[[str], dict[str, str] | None] = lambda ns: None,
        tainted: set[str] | None = None,
        cordoned: set[str] | None = None,
        counts: Counts | None = None,
    ) -> None:
        self.nodes = list(nodes)
        self.by_name = {n.name: n for n in self.nodes}
        self.namespace_labels = namespaces
        # Names of nodes with taints and of cordoned nodes (the cache passes its live sets), so that pods
        # skip those filters in clusters that have neither.
        self.tainted = tainted if tainted is not None else {n.name for n in self.nodes if n.taints}
        self.cordoned = cordoned if cordoned is not None else {n.name for n in self.nodes if n.unschedulable}
        self.counts = counts

    def replace(self, node: NodeInfo) -> Snapshot:
        nodes = [node if n.name == node.name else n for n in self.nodes]
        return Snapshot(nodes, self.namespace_labels, self.tainted, self.cordoned, self.counts)

    def with_affinity(self) -> list[NodeInfo]:
        if self.counts is not None and not self.counts.affinity_pods:
            return []
        return [n for n in self.nodes if n.with_affinity]

    def with_required_anti_affinity(self) -> list[NodeInfo]:
        if self.counts is not None and not self.counts.required_anti_affinity_pods:
            return []
        return [n for n in self.nodes if n.with_required_anti_affinity]

    def any_images(self, nodes: Sequence[NodeInfo]) -> bool:
        if self.counts is not None and not self.counts.nodes_with_images:
            return False
        return any(n.images for n in nodes)


CycleState = dict[str, Any]


class Plugin:
    """A scheduler plugin. Filter plugins set `filters`, score plugins `scores`; pre_filter and pre_score
    precompute into the cycle state (or return SKIP when the pod gives the plugin nothing to do)."""

    name = ""
    filters = False
    scores = False
    weight = 1
    # Its pre-filter state depends on the pods on other nodes (rerun when preemption removes some).
    reads_other_pods = False
    # Promises that let the framework memoise results per node state (memo.py). memo_filter: `filter` reads
    # only the node's resource sums, allocatable and pod count and the pod's cpu, memory and
    # ephemeral-storage requests, and pre_filter always returns None. separable: `score` reads only the
    # node's resource sums and allocatable and the pod's non-zero cpu and memory, pre_score always returns
    # None and normalize does nothing.
    memo_filter = False
    separable = False

    def pre_filter(self, state: CycleState, pod: PodInfo, snap: Snapshot) -> Status | set[str] | None:
        """None to go on, SKIP, an unschedulable Status, or the only node names that may fit."""
        return None

    def filter(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> Status | None:
        return None

    def filter_until(
        self,
        state: CycleState,
        pod: PodInfo,
        nodes: Iterable[NodeInfo],
        want: int,
        statuses: dict[str, Status],
    ) -> tuple[list[NodeInfo], int]:
        """`filter` over `nodes` in order until `want` fit: (the fitting nodes, how many were checked),
        the failures' Status in `statuses`. Used when this is the only filter with work; a plugin on the
        hot path overrides it with one loop of its own."""
        feasible: list[NodeInfo] = []
        checked = 0
        for node in nodes:
            checked += 1
            st = self.filter(state, pod, node)
            if st is None:
                feasible.append(node)
                if len(feasible) >= want:
                    break
            else:
                statuses[node.name] = st
        return feasible, checked

    def pre_score(
        self, state: CycleState, pod: PodInfo, nodes: list[NodeInfo], snap: Snapshot
    ) -> Status | None:
        return None

    def score(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> int:
        return 0

    def score_all(self, state: CycleState, pod: PodInfo, nodes: list[NodeInfo]) -> list[int]:
        """Every node's score; plugins on the hot path override it with one loop of their own."""
        return [self.score(state, pod, n) for n in nodes]

    def normalize(self, state: CycleState, pod: PodInfo, scores: list[int]) -> None:
        pass


def default_normalize(scores: list[int], reverse: bool = False) -> None:
    """helper.DefaultNormalizeScore: scale to [0, 100] by the highest score, optionally reversed."""
    top = max(scores, default=0)
    if top == 0:
        if reverse:
            scores[:] = [MAX_NODE_SCORE] * len(scores)
        return
    for i, s in enumerate(scores):
        s = MAX_NODE_SCORE * s // top
        scores[i] = MAX_NODE_SCORE - s if reverse else s


def num_feasible_nodes_to_find(num_all: int, percentage: int = 0) -> int:
    if num_all < MIN_FEASIBLE_NODES_TO_FIND:
        return num_all
    if percentage <= 0:  # adaptive: 50% at 0 nodes, down to 5% at 5,625 nodes and beyond
        percentage = max(50 - num_all // 125, MIN_FEASIBLE_NODES_PERCENTAGE_TO_FIND)
    n = num_all * percentage // 100
    return min(max(n, MIN_FEASIBLE_NODES_TO_FIND), num_all)


@dataclass
class Diagnosis:
    node_status: dict[str, Status] = field(default_factory=dict)
    pre_filter_msg: str = ""
    post_filter_msg: str = ""
    restricted_by: list[str] = field(default_factory=list)  # PreFilters that narrowed the nodes


class FitError(Exception):
    def __init__(self, pod: PodInfo, num_all_nodes: int, diagnosis: Diagnosis) -> None:
        super().__init__()
        self.pod = pod
        self.num_all_nodes = num_all_nodes
        self.diagnosis = diagnosis

    def __str__(self) -> str:
        if self.num_all_nodes == 0:
            return "no nodes available to schedule pods"
        return fit_error_message(self.num_all_nodes, self.diagnosis)


def fit_error_message(num_all_nodes: int, d: Diagnosis) -> str:
    """framework.FitError.Error(): "0/3 nodes are available: 1 node(s) ..., 2 Insufficient cpu." with the
    reasons counted over nodes and sorted as strings, then the preemption's own message."""
    msg = f"0/{num_all_nodes} nodes are available:"
    if d.pre_filter_msg:
        msg += f" {d.pre_filter_msg}."
    else:
        counts: Counter[str] = Counter()
        for st in d.node_status.values():
            counts.update(st.reasons)
        if counts:
            msg += " " + ", ".join(sorted(f"{n} {r}" for r, n in counts.items())) + "."
    if d.post_filter_msg:
        msg += f" {d.post_filter_msg}"
    return msg


@dataclass
class ScheduleResult:
    node: str
    evaluated: int
    feasible: int


class Framework:
    def __init__(
        self,
        plugins: Sequence[Plugin],
        *,
        percentage_of_nodes_to_score: int = 0,
        rng: random.Random | None = None,
        memo: bool = True,
    ) -> None:
        self.plugins = list(plugins)
        self.filter_plugins = [p for p in self.plugins if p.filters]
        self.score_plugins = [p for p in self.plugins if p.scores]
        self.percentage = percentage_of_nodes_to_score
        self.rng = rng or random.Random()
        self.next_start = 0  # round-robin start of the node search, so sampling covers all nodes
        # None computes every plugin on every node (the reference the memo is tested against).
        self.memo = ResourceMemo.of(self.filter_plugins, self.score_plugins) if memo else None

    def run_pre_filter(
        self, state: CycleState, pod: PodInfo, snap: Snapshot, diagnosis: Diagnosis
    ) -> tuple[list[Plugin], set[str] | None] | None:
        """The filter plugins to run and the node names allowed, or None when a PreFilter rejected."""
        active: list[Plugin] = []
        allowed: set[str] | None = None
        for p in self.filter_plugins:
            r = p.pre_filter(state, pod, snap)
            if r is SKIP:
                continue
            if isinstance(r, Status):
                diagnosis.pre_filter_msg = r.message
                for n in snap.nodes:
                    diagnosis.node_status[n.name] = r
                return None
            if isinstance(r, set):
                allowed = r if allowed is None else allowed & r
                diagnosis.restricted_by.append(p.name)
            active.append(p)
        return active, allowed

    @staticmethod
    def run_filters(
        active: Sequence[Plugin], state: CycleState, pod: PodInfo, node: NodeInfo
    ) -> Status | None:
        for p in active:
            st = p.filter(state, pod, node)
            if st is not None:
                return st
        return None

    def find_feasible(
        self,
        state: CycleState,
        pod: PodInfo,
        snap: Snapshot,
        diagnosis: Diagnosis,
        extra: Callable[[NodeInfo], NodeInfo] | None = None,
    ) -> tuple[list[NodeInfo], list[Plugin]] | None:
        found = self._feasible(state, pod, snap, diagnosis, extra, None)
        return None if found is None else (found.nodes, found.active)

    def _feasible(
        self,
        state: CycleState,
        pod: PodInfo,
        snap: Snapshot,
        diagnosis: Diagnosis,
        extra: Callable[[NodeInfo], NodeInfo] | None,
        table: Table | None,
    ) -> _Found | None:
        pre = self.run_pre_filter(state, pod, snap, diagnosis)
        if pre is None:
            return None
        active, allowed = pre
        nodes = snap.nodes
        total = len(nodes)
        if allowed is not None:
            nodes = [snap.by_name[n] for n in allowed if n in snap.by_name]
            # Nodes a PreFilter left out (Go prints the plugin list as "[A B]").
            absent = unschedulable(
                diagnosis.restricted_by[0],
                f"node(s) didn't satisfy plugin(s) [{' '.join(sorted(diagnosis.restricted_by))}]",
                resolvable=False,
            )
            for n in snap.nodes:
                if n.name not in allowed:
                    diagnosis.node_status[n.name] = absent
            total = len(nodes)
        want = num_feasible_nodes_to_find(len(snap.nodes), self.percentage)
        feasible: list[NodeInfo] = []
        start = self.next_start % total if total else 0
        checked = 0
        found = _Found(feasible, active)
        memo = self.memo
        every = extra is None and allowed is None
        if table is not None and memo is not None and every and active == [memo.fit]:
            # The common case (only NodeResourcesFit has work, on every node): one pass over memoised results.
            found.nodes, found.best, checked = memo.filter_score(
                table, state, pod, start, want, diagnosis.node_status
            )
        elif len(active) == 1 and extra is None:
            # The common case (only NodeResourcesFit has work): the plugin's own loop.
            found.nodes, checked = active[0].filter_until(
                state, pod, _rotated(nodes, start), want, diagnosis.node_status
            )
        else:
            run = self.run_filters
            for i in range(total):
                node = nodes[(start + i) % total]
                checked += 1
                view = extra(node) if extra is not None else node
                st = run(active, state, pod, view) if active else None
                if st is None:
                    feasible.append(view)
                    if len(feasible) >= want:
                        break
                else:
                    diagnosis.node_status[node.name] = st
            found.nodes = feasible
        if total:
            self.next_start = (start + checked) % total
        return found

    def prioritize(
        self,
        state: CycleState,
        pod: PodInfo,
        nodes: list[NodeInfo],
        snap: Snapshot,
        table: Table | None = None,
        fused: bool = False,
    ) -> list[int] | None:
        """Each node's weighted total. With a memo table the separable plugins' sum comes from it; None when
        the fused loop (`fused`) found the highest of that sum already and no other plugin has work."""
        active = [p for p in self.score_plugins if p.pre_score(state, pod, nodes, snap) is not SKIP]
        memo = self.memo
        if table is not None and memo is not None and all(p in active for p, _ in memo.separable):
            others = [p for p in active if not p.separable]
            if fused and not others:
                return None
            totals = memo.scores(table, state, pod, nodes)
            active = others
        else:
            totals = [0] * len(nodes)
        for p in active:
            scores = p.score_all(state, pod, nodes)
            p.normalize(state, pod, scores)
            w = p.weight
            totals = [t + s * w for t, s in zip(totals, scores, strict=True)]
        return totals

    def select_host(self, nodes: list[NodeInfo], scores: list[int]) -> NodeInfo:
        """The highest score; ties broken uniformly at random, as selectHost."""
        top = max(scores)
        best = [i for i, s in enumerate(scores) if s == top]
        return nodes[best[0] if len(best) == 1 else self.rng.choice(best)]

    def schedule(
        self, pod: PodInfo, snap: Snapshot, extra: Callable[[NodeInfo], NodeInfo] | None = None
    ) -> tuple[ScheduleResult, CycleState]:
        """One scheduling cycle; raises FitError when no node fits."""
        if not snap.nodes:
            raise FitError(pod, 0, Diagnosis())
        nominated = (pod.pod.get("status") or {}).get("nominatedNodeName")
        if nominated and nominated in snap.by_name:  # evaluateNominatedNode: where it preempted, if it fits
            state: CycleState = {}
            pre = self.run_pre_filter(state, pod, snap, Diagnosis())
            if pre is not None and (pre[1] is None or nominated in pre[1]):
                node = snap.by_name[nominated]
                if self.run_filters(pre[0], state, pod, extra(node) if extra else node) is None:
                    return ScheduleResult(nominated, 1, 1), state
        state = {}
        diagnosis = Diagnosis()
        table = self.memo.table(pod, snap) if self.memo is not None else None
        found = self._feasible(state, pod, snap, diagnosis, extra, table)
        if not found or not found.nodes:
            err = FitError(pod, len(snap.nodes), diagnosis)
            err.state = state  # type: ignore[attr-defined]
            raise err
        feasible = found.nodes
        if len(feasible) == 1:
            return ScheduleResult(feasible[0].name, len(diagnosis.node_status) + 1, 1), state
        scores = self.prioritize(state, pod, feasible, snap, table, found.best is not None)
        if scores is not None:
            chosen = self.select_host(feasible, scores)
        else:  # the fused loop found the highest already: the same pick as select_host's
            best = found.best
            assert best is not None
            chosen = feasible[best[0] if len(best) == 1 else self.rng.choice(best)]
        return ScheduleResult(chosen.name, len(diagnosis.node_status) + len(feasible), len(feasible)), state


@dataclass(slots=True)
class _Found:
    """The nodes that passed the filters; from the fused loop also the indices of those with the highest
    separable score."""

    nodes: list[NodeInfo]
    active: list[Plugin]
    best: list[int] | Ties | None = None


def _rotated(nodes: list[NodeInfo], start: int) -> Iterable[NodeInfo]:
    """The nodes from `start` round to `start - 1`, without copying the list."""
    return itertools.chain(itertools.islice(nodes, start, None), itertools.islice(nodes, start))
