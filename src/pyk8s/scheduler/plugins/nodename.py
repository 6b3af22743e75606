"""NodeName: a pod that names a node fits only there."""

from __future__ import annotations

from pyk8s.scheduler.framework import SKIP, CycleState, Plugin, Snapshot, Status, unschedulable
from pyk8s.scheduler.nodeinfo import NodeInfo, PodInfo

NAME = "NodeName"
ERR_REASON = "node(s) didn't match the requested node name"


def fits(pod: PodInfo, node: NodeInfo) -> bool:
    wanted = (pod.pod.get("spec") or {}).get("nodeName")
    return not wanted or wanted == node.name


class NodeName(Plugin):
    name = NAME
    filters = True

    def pre_filter(self, state: CycleState, pod: PodInfo, snap: Snapshot) -> Status | set[str] | None:
        return None if (pod.pod.get("spec") or {}).get("nodeName") else SKIP

    def filter(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> Status | None:
        return None if fits(pod, node) else unschedulable(NAME, ERR_REASON, resolvable=False)
