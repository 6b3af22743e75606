"""InterPodAffinity: required and preferred pod affinity and anti-affinity by topology domain, including
the anti-affinity of pods already placed. Counts per (topologyKey, value) are made once in PreFilter, so
Filter is a few dictionary lookups per node."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pyk8s.api.errors import StatusError
from pyk8s.api.labels import NOTHING, Selector, selector_from_label_selector
from pyk8s.scheduler.framework import (
    MAX_NODE_SCORE,
    SKIP,
    CycleState,
    Plugin,
    Snapshot,
    Status,
    unschedulable,
)
from pyk8s.scheduler.nodeinfo import NodeInfo, PodInfo

NAME = "InterPodAffinity"
ERR_AFFINITY = "node(s) didn't match pod affinity rules"
ERR_ANTI_AFFINITY = "node(s) didn't match pod anti-affinity rules"
ERR_EXISTING_ANTI_AFFINITY = "node(s) didn't satisfy existing pods anti-affinity rules"
HARD_POD_AFFINITY_WEIGHT = 1

NamespaceLabels = Callable[[str], Mapping[str, str] | None]
Pair = tuple[str, str]


def _selector(sel: Any) -> Selector:
    try:
        return selector_from_label_selector(sel)
    except StatusError:
        return NOTHING


@dataclass(frozen=True, slots=True)
class Term:
    """An AffinityTerm resolved for the pod that carries it."""

    namespaces: frozenset[str]
    namespace_selector: Selector | None
    selector: Selector
    topology_key: str
    weight: int = 1

    @classmethod
    def of(cls, term: Mapping[str, Any], owner_namespace: str, weight: int = 1) -> Term:
        namespaces = frozenset(term.get("namespaces") or ())
        ns_sel = term.get("namespaceSelector")
        if not namespaces and ns_sel is None:
            namespaces = frozenset((owner_namespace,))
        return cls(
            namespaces,
            None if ns_sel is None else _selector(ns_sel),
            _selector(term.get("labelSelector")),
            term.get("topologyKey") or "",
            weight,
        )

    def matches(self, pod: PodInfo, ns_labels: NamespaceLabels) -> bool:
        if pod.namespace not in self.namespaces:
            if self.namespace_selector is None:
                return False
            if not self.namespace_selector.matches(ns_labels(pod.namespace) or {}):
                return False
        return self.selector.matches(pod.labels)


def terms(raw: Iterable[Mapping[str, Any]], namespace: str) -> list[Term]:
    return [Term.of(t, namespace) for t in raw]


def weighted(raw: Iterable[Mapping[str, Any]], namespace: str) -> list[Term]:
    return [Term.of(t.get("podAffinityTerm") or {}, namespace, int(t.get("weight") or 0)) for t in raw]


@dataclass
class _PreFilter:
    affinity: list[Term]
    anti_affinity: list[Term]
    existing_anti: Counter[Pair]
    affinity_counts: Counter[Pair]
    anti_counts: Counter[Pair]
    matches_own_affinity: bool


def _all_pods(nodes: Iterable[NodeInfo]) -> Iterable[tuple[NodeInfo, PodInfo]]:
    for n in nodes:
        for p in n.pods.values():
            yield n, p


def pre_filter(pod: PodInfo, snap: Snapshot) -> _PreFilter:
    ns_labels = snap.namespace_labels
    existing: Counter[Pair] = Counter()
    for node, other in _all_pods(snap.with_required_anti_affinity()):
        for t in terms(other.required_anti_affinity, other.namespace):
            v = node.labels.get(t.topology_key)
            if v is not None and t.matches(pod, ns_labels):
                existing[(t.topology_key, v)] += 1
    aff = terms(pod.required_affinity, pod.namespace)
    anti = terms(pod.required_anti_affinity, pod.namespace)
    aff_counts: Counter[Pair] = Counter()
    anti_counts: Counter[Pair] = Counter()
    if aff or anti:
        for node, other in _all_pods(snap.nodes):
            if aff and all(t.matches(other, ns_labels) for t in aff):
                for t in aff:
                    if (v := node.labels.get(t.topology_key)) is not None:
                        aff_counts[(t.topology_key, v)] += 1
            for t in anti:
                if (v := node.labels.get(t.topology_key)) is not None and t.matches(other, ns_labels):
                    anti_counts[(t.topology_key, v)] += 1
    own = bool(aff) and all(t.matches(pod, ns_labels) for t in aff)
    return _PreFilter(aff, anti, existing, aff_counts, anti_counts, own)


def fits(s: _PreFilter, node: NodeInfo) -> Status | None:
    labels = node.labels
    if s.existing_anti:
        for (k, v), n in s.existing_anti.items():
            if n > 0 and labels.get(k) == v:
                return unschedulable(NAME, ERR_EXISTING_ANTI_AFFINITY)
    for t in s.anti_affinity:
        value = labels.get(t.topology_key)
        if value is not None and s.anti_counts.get((t.topology_key, value), 0) > 0:
            return unschedulable(NAME, ERR_ANTI_AFFINITY)
    if s.affinity:
        ok = True
        for t in s.affinity:
            value = labels.get(t.topology_key)
            if value is None or s.affinity_counts.get((t.topology_key, value), 0) <= 0:
                ok = False
                break
        # The first pod of a group that has affinity to itself may go to any node with the keys.
        if not ok and not (
            not s.affinity_counts
            and s.matches_own_affinity
            and all(t.topology_key in labels for t in s.affinity)
        ):
            return unschedulable(NAME, ERR_AFFINITY, resolvable=False)
    return None


def topology_scores(pod: PodInfo, snap: Snapshot) -> dict[Pair, int]:
    ns_labels = snap.namespace_labels
    pref_aff = weighted(pod.preferred_affinity, pod.namespace)
    pref_anti = weighted(pod.preferred_anti_affinity, pod.namespace)
    nodes = snap.nodes if (pref_aff or pref_anti) else snap.with_affinity()
    scores: Counter[Pair] = Counter()

    def add(t: Term, node: NodeInfo, w: int) -> None:
        if (v := node.labels.get(t.topology_key)) is not None:
            scores[(t.topology_key, v)] += w

    for node, other in _all_pods(nodes):
        for t in pref_aff:
            if t.matches(other, ns_labels):
                add(t, node, t.weight)
        for t in pref_anti:
            if t.matches(other, ns_labels):
                add(t, node, -t.weight)
        if other.has_affinity:
            for t in terms(other.required_affinity, other.namespace):
                if t.matches(pod, ns_labels):
                    add(t, node, HARD_POD_AFFINITY_WEIGHT)
            for t in weighted(other.preferred_affinity, other.namespace):
                if t.matches(pod, ns_labels):
                    add(t, node, t.weight)
            for t in weighted(other.preferred_anti_affinity, other.namespace):
                if t.matches(pod, ns_labels):
                    add(t, node, -t.weight)
    return {k: v for k, v in scores.items() if v}


def node_score(scores: Mapping[Pair, int], node: NodeInfo) -> int:
    return sum(w for (k, v), w in scores.items() if node.labels.get(k) == v)


class InterPodAffinity(Plugin):
    name = NAME
    filters = True
    scores = True
    weight = 2
    reads_other_pods = True

    def pre_filter(self, state: CycleState, pod: PodInfo, snap: Snapshot) -> Status | set[str] | None:
        if (
            not pod.required_affinity
            and not pod.required_anti_affinity
            and not snap.with_required_anti_affinity()
        ):
            return SKIP
        s = pre_filter(pod, snap)
        if not s.affinity and not s.anti_affinity and not s.existing_anti:
            return SKIP
        state[NAME] = s
        return None

    def filter(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> Status | None:
        return fits(state[NAME], node)

    def pre_score(
        self, state: CycleState, pod: PodInfo, nodes: list[NodeInfo], snap: Snapshot
    ) -> Status | None:
        if not pod.preferred_affinity and not pod.preferred_anti_affinity and not snap.with_affinity():
            return SKIP
        scores = topology_scores(pod, snap)
        if not scores:
            return SKIP
        state[NAME + "/score"] = scores
        return None

    def score(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> int:
        return node_score(state[NAME + "/score"], node)

    def normalize(self, state: CycleState, pod: PodInfo, scores: list[int]) -> None:
        lo, hi = min(scores, default=0), max(scores, default=0)
        for i, s in enumerate(scores):
            scores[i] = MAX_NODE_SCORE * (s - lo) // (hi - lo) if hi > lo else 0
