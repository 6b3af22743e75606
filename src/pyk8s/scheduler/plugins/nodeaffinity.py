"""NodeAffinity: spec.nodeSelector and required node affinity must match; preferred terms add their
weights to the score."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pyk8s.scheduler.framework import (
    SKIP,
    CycleState,
    Plugin,
    Snapshot,
    Status,
    default_normalize,
    unschedulable,
)
from pyk8s.scheduler.nodeinfo import NodeInfo, PodInfo

NAME = "NodeAffinity"
ERR_REASON = "node(s) didn't match Pod's node affinity/selector"


def _int(v: str) -> int | None:
    try:
        return int(v)
    except ValueError:
        return None


def requirement_matches(expr: Mapping[str, Any], value: str | None) -> bool:
    """A NodeSelectorRequirement against one label (or field) value, None when absent."""
    op = expr.get("operator")
    values = expr.get("values") or []
    if op == "In":
        return value is not None and value in values
    if op == "NotIn":
        return value is None or value not in values
    if op == "Exists":
        return value is not None
    if op == "DoesNotExist":
        return value is None
    if op in ("Gt", "Lt") and value is not None and len(values) == 1:
        have, want = _int(value), _int(values[0])
        if have is None or want is None:
            return False
        return have > want if op == "Gt" else have < want
    return False


def term_matches(term: Mapping[str, Any], labels: Mapping[str, str], name: str) -> bool:
    """A NodeSelectorTerm: its expressions and fields ANDed; a term with neither matches nothing."""
    exprs = term.get("matchExpressions") or []
    fields = term.get("matchFields") or []
    if not exprs and not fields:
        return False
    for e in exprs:
        if not requirement_matches(e, labels.get(e.get("key", ""))):
            return False
    return all(f.get("key") == "metadata.name" and requirement_matches(f, name) for f in fields)


def node_selector_matches(terms: Sequence[Mapping[str, Any]], labels: Mapping[str, str], name: str) -> bool:
    """A NodeSelector: its terms ORed."""
    return any(term_matches(t, labels, name) for t in terms)


def required(pod: Mapping[str, Any]) -> tuple[Mapping[str, str], list[Any] | None]:
    spec = pod.get("spec") or {}
    na = (spec.get("affinity") or {}).get("nodeAffinity") or {}
    req = na.get("requiredDuringSchedulingIgnoredDuringExecution")
    terms = None if req is None else list(req.get("nodeSelectorTerms") or [])
    return spec.get("nodeSelector") or {}, terms


def preferred(pod: Mapping[str, Any]) -> list[Any]:
    na = ((pod.get("spec") or {}).get("affinity") or {}).get("nodeAffinity") or {}
    return list(na.get("preferredDuringSchedulingIgnoredDuringExecution") or [])


def fits(pod: Mapping[str, Any], labels: Mapping[str, str], name: str) -> bool:
    """helper.GetRequiredNodeAffinity(pod).Match(node)."""
    selector, terms = required(pod)
    for k, v in selector.items():
        if labels.get(k) != v:
            return False
    return terms is None or node_selector_matches(terms, labels, name)


def preferred_score(terms: Sequence[Mapping[str, Any]], labels: Mapping[str, str], name: str) -> int:
    return sum(
        int(t.get("weight") or 0) for t in terms if term_matches(t.get("preference") or {}, labels, name)
    )


def _only_names(terms: list[Any]) -> set[str] | None:
    """Nodes named by `metadata.name In` in every term (DaemonSet pods), or None if a term names none."""
    names: set[str] = set()
    for t in terms:
        fields = [
            f
            for f in t.get("matchFields") or []
            if f.get("key") == "metadata.name" and f.get("operator") == "In"
        ]
        if not fields:
            return None
        picked = set(fields[0].get("values") or [])
        for f in fields[1:]:
            picked &= set(f.get("values") or [])
        names |= picked
    return names


class NodeAffinity(Plugin):
    name = NAME
    filters = True
    scores = True
    weight = 2

    def pre_filter(self, state: CycleState, pod: PodInfo, snap: Snapshot) -> Status | set[str] | None:
        selector, terms = required(pod.pod)
        if not selector and terms is None:
            return SKIP
        if terms:
            return _only_names(terms)
        return None

    def filter(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> Status | None:
        return (
            None
            if fits(pod.pod, node.labels, node.name)
            else unschedulable(NAME, ERR_REASON, resolvable=False)
        )

    def pre_score(
        self, state: CycleState, pod: PodInfo, nodes: list[NodeInfo], snap: Snapshot
    ) -> Status | None:
        terms = preferred(pod.pod)
        if not terms:
            return SKIP
        state[NAME] = terms
        return None

    def score(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> int:
        return preferred_score(state[NAME], node.labels, node.name)

    def normalize(self, state: CycleState, pod: PodInfo, scores: list[int]) -> None:
        default_normalize(scores)
