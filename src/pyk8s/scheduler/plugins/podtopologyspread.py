"""PodTopologySpread: DoNotSchedule constraints filter on skew (matching pods in the node's domain plus
the pod, minus the smallest domain's count, at most maxSkew); ScheduleAnyway constraints score."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pyk8s.api.labels import Operator, Requirement, Selector
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
from pyk8s.scheduler.plugins import nodeaffinity
from pyk8s.scheduler.plugins.interpodaffinity import _selector
from pyk8s.scheduler.plugins.tainttoleration import first_untolerated, tolerations_of

NAME = "PodTopologySpread"
ERR_CONSTRAINTS = "node(s) didn't match pod topology spread constraints"
ERR_MISSING_LABEL = "node(s) didn't match pod topology spread constraints (missing required label)"


@dataclass(frozen=True, slots=True)
class Constraint:
    max_skew: int
    topology_key: str
    selector: Selector
    min_domains: int
    honor_affinity: bool
    honor_taints: bool

    @classmethod
    def of(cls, c: Mapping[str, Any], pod_labels: Mapping[str, str]) -> Constraint:
        sel = _selector(c.get("labelSelector"))
        extra = [
            Requirement(k, Operator.IN, (pod_labels[k],))
            for k in c.get("matchLabelKeys") or []
            if k in pod_labels
        ]
        if extra and not sel.nothing:
            sel = Selector(tuple(sorted((*sel.requirements, *extra), key=lambda r: r.key)))
        return cls(
            int(c.get("maxSkew") or 1),
            c.get("topologyKey") or "",
            sel,
            int(c.get("minDomains") or 1),
            (c.get("nodeAffinityPolicy") or "Honor") == "Honor",
            (c.get("nodeTaintsPolicy") or "Ignore") == "Honor",
        )


def constraints(pod: PodInfo, action: str) -> list[Constraint]:
    raw = (pod.pod.get("spec") or {}).get("topologySpreadConstraints") or []
    return [Constraint.of(c, pod.labels) for c in raw if c.get("whenUnsatisfiable") == action]


def _eligible(pod: PodInfo, node: NodeInfo, cs: list[Constraint]) -> bool:
    if not all(c.topology_key in node.labels for c in cs):
        return False
    if any(c.honor_affinity for c in cs) and not nodeaffinity.fits(pod.pod, node.labels, node.name):
        return False
    return not (any(c.honor_taints for c in cs) and first_untolerated(node.taints, tolerations_of(pod)))


def _count(pod: PodInfo, node: NodeInfo, c: Constraint) -> int:
    return sum(
        1
        for p in node.pods.values()
        if p.namespace == pod.namespace and not p.terminating and c.selector.matches(p.labels)
    )


@dataclass
class _Counts:
    constraints: list[Constraint]
    counts: list[Counter[str]]  # per constraint: domain value → matching pods
    minimum: list[int]


def count(pod: PodInfo, snap: Snapshot, cs: list[Constraint]) -> _Counts:
    counts: list[Counter[str]] = [Counter() for _ in cs]
    for node in snap.nodes:
        if not _eligible(pod, node, cs):
            continue
        for i, c in enumerate(cs):
            counts[i][node.labels[c.topology_key]] += _count(pod, node, c)
    minimum = []
    for i, c in enumerate(cs):
        m = min(counts[i].values(), default=0)
        minimum.append(0 if len(counts[i]) < c.min_domains else m)
    return _Counts(cs, counts, minimum)


def fits(s: _Counts, pod: PodInfo, node: NodeInfo) -> Status | None:
    for c in s.constraints:
        if c.topology_key not in node.labels:
            return unschedulable(NAME, ERR_MISSING_LABEL, resolvable=False)
    for i, c in enumerate(s.constraints):
        self_match = 1 if c.selector.matches(pod.labels) else 0
        skew = s.counts[i].get(node.labels[c.topology_key], 0) + self_match - s.minimum[i]
        if skew > c.max_skew:
            return unschedulable(NAME, ERR_CONSTRAINTS)
    return None


class PodTopologySpread(Plugin):
    name = NAME
    filters = True
    scores = True
    weight = 2
    reads_other_pods = True

    def pre_filter(self, state: CycleState, pod: PodInfo, snap: Snapshot) -> Status | set[str] | None:
        cs = constraints(pod, "DoNotSchedule")
        if not cs:
            return SKIP
        state[NAME] = count(pod, snap, cs)
        return None

    def filter(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> Status | None:
        return fits(state[NAME], pod, node)

    def pre_score(
        self, state: CycleState, pod: PodInfo, nodes: list[NodeInfo], snap: Snapshot
    ) -> Status | None:
        cs = constraints(pod, "ScheduleAnyway")
        if not cs:
            return SKIP
        s = count(pod, snap, cs)
        weights = [math.log(len(s.counts[i]) + 2) for i in range(len(cs))]
        state[NAME + "/score"] = (s, weights)
        return None

    def score(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> int:
        s, weights = state[NAME + "/score"]
        total = 0.0
        for i, c in enumerate(s.constraints):
            v = node.labels.get(c.topology_key)
            if v is None:
                return -1  # ignored: scored 0 after normalising
            total += s.counts[i].get(v, 0) * weights[i] + (c.max_skew - 1)
        return round(total)

    def normalize(self, state: CycleState, pod: PodInfo, scores: list[int]) -> None:
        valid = [s for s in scores if s >= 0]
        lo, hi = min(valid, default=0), max(valid, default=0)
        for i, s in enumerate(scores):
            if s < 0:
                scores[i] = 0
            elif hi == 0:
                scores[i] = MAX_NODE_SCORE
            else:
                scores[i] = MAX_NODE_SCORE * (hi + lo - s) // hi
