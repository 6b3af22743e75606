"""ImageLocality: a little preference for nodes that already have the pod's images."""

from __future__ import annotations

from pyk8s.scheduler.framework import MAX_NODE_SCORE, SKIP, CycleState, Plugin, Snapshot, Status
from pyk8s.scheduler.nodeinfo import NodeInfo, PodInfo

NAME = "ImageLocality"


def images(pod: PodInfo) -> list[str]:
    spec = pod.pod.get("spec") or {}
    out = []
    for c in (spec.get("containers") or []) + (spec.get("initContainers") or []):
        img = str(c.get("image") or "")
        if img:
            out.append(img)
    return out


def present(wanted: list[str], node: NodeInfo) -> int:
    return sum(1 for i in wanted if i in node.images or f"docker.io/library/{i}" in node.images)


class ImageLocality(Plugin):
    name = NAME
    scores = True

    def pre_score(
        self, state: CycleState, pod: PodInfo, nodes: list[NodeInfo], snap: Snapshot
    ) -> Status | None:
        wanted = images(pod)
        if not wanted or not snap.any_images(nodes):
            return SKIP
        state[NAME] = wanted
        return None

    def score(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> int:
        wanted: list[str] = state[NAME]
        return MAX_NODE_SCORE * present(wanted, node) // len(wanted)
