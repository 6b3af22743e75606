"""TaintToleration: NoSchedule and NoExecute taints must be tolerated; untolerated PreferNoSchedule taints
lower the score."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
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

NAME = "TaintToleration"


def tolerates(toleration: Mapping[str, Any], taint: Mapping[str, Any]) -> bool:
    """v1.Toleration.ToleratesTaint."""
    effect = toleration.get("effect") or ""
    if effect and effect != taint.get("effect"):
        return False
    key = toleration.get("key") or ""
    op = toleration.get("operator") or "Equal"
    if key and key != taint.get("key"):
        return False
    if op == "Exists":
        return True
    if not key:  # an empty key requires Exists
        return False
    return op == "Equal" and (toleration.get("value") or "") == (taint.get("value") or "")


def tolerated(tolerations: Iterable[Mapping[str, Any]], taint: Mapping[str, Any]) -> bool:
    return any(tolerates(t, taint) for t in tolerations)


def tolerations_of(pod: PodInfo) -> list[Any]:
    return list((pod.pod.get("spec") or {}).get("tolerations") or [])


def first_untolerated(
    taints: Sequence[Mapping[str, Any]],
    tolerations: Sequence[Mapping[str, Any]],
    effects: tuple[str, ...] = ("NoSchedule", "NoExecute"),
) -> Mapping[str, Any] | None:
    for taint in taints:
        if taint.get("effect") in effects and not tolerated(tolerations, taint):
            return taint
    return None


def fits(pod: PodInfo, node: NodeInfo) -> Status | None:
    if not node.taints:
        return None
    taint = first_untolerated(node.taints, tolerations_of(pod))
    if taint is None:
        return None
    return unschedulable(
        NAME,
        f"node(s) had untolerated taint {{{taint.get('key', '')}: {taint.get('value', '')}}}",
        resolvable=False,
    )


def intolerable_prefer_no_schedule(tolerations: Sequence[Mapping[str, Any]], node: NodeInfo) -> int:
    return sum(
        1 for t in node.taints if t.get("effect") == "PreferNoSchedule" and not tolerated(tolerations, t)
    )


class TaintToleration(Plugin):
    name = NAME
    filters = True
    scores = True
    weight = 3

    def pre_filter(self, state: CycleState, pod: PodInfo, snap: Snapshot) -> Status | set[str] | None:
        return None if snap.tainted else SKIP

    def filter(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> Status | None:
        return fits(pod, node)

    def pre_score(
        self, state: CycleState, pod: PodInfo, nodes: list[NodeInfo], snap: Snapshot
    ) -> Status | None:
        if not snap.tainted:
            return SKIP
        state[NAME] = [
            t for t in tolerations_of(pod) if (t.get("effect") or "PreferNoSchedule") == "PreferNoSchedule"
        ]
        return None

    def score(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> int:
        return intolerable_prefer_no_schedule(state[NAME], node) if node.taints else 0

    def normalize(self, state: CycleState, pod: PodInfo, scores: list[int]) -> None:
        default_normalize(scores, reverse=True)
