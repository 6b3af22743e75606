"""NodeUnschedulable: a cordoned node takes only pods that tolerate its unschedulable taint."""

from __future__ import annotations

from pyk8s.scheduler.framework import SKIP, CycleState, Plugin, Snapshot, Status, unschedulable
from pyk8s.scheduler.nodeinfo import NodeInfo, PodInfo
from pyk8s.scheduler.plugins.tainttoleration import tolerated, tolerations_of

NAME = "NodeUnschedulable"
ERR_REASON = "node(s) were unschedulable"
_TAINT = {"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}


def fits(pod: PodInfo, node: NodeInfo) -> bool:
    return not node.unschedulable or tolerated(tolerations_of(pod), _TAINT)


class NodeUnschedulable(Plugin):
    name = NAME
    filters = True

    def pre_filter(self, state: CycleState, pod: PodInfo, snap: Snapshot) -> Status | set[str] | None:
        return None if snap.cordoned else SKIP

    def filter(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> Status | None:
        return None if fits(pod, node) else unschedulable(NAME, ERR_REASON, resolvable=False)
