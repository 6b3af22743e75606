"""The scheduler's cache (Kubernetes' internal/cache): a NodeInfo per node with the pods assigned to it,
kept current incrementally from the informers, plus pods assumed on a node before their binding is
observed. The cycle reads it in place (it never awaits), so no snapshot copy is made per pod."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pyk8s.scheduler.framework import Counts, Snapshot
from pyk8s.scheduler.nodeinfo import NodeInfo, PodInfo

Obj = dict[str, Any]


@dataclass(slots=True)
class _PodState:
    info: PodInfo
    node: str
    assumed: bool
    binding_finished: bool = False


class Cache:
    def __init__(self) -> None:
        self._nodes: dict[str, NodeInfo] = {}
        self._pods: dict[str, _PodState] = {}  # uid → state
        self._snapshot: Snapshot | None = None
        self._tainted: set[str] = set()
        self._cordoned: set[str] = set()
        self._counts = Counts()
        self.namespace_labels: Any = lambda ns: None

    # --- nodes ------------------------------------------------------------------------------------

    def _node(self, name: str) -> NodeInfo:
        ni = self._nodes.get(name)
        if ni is None:  # pods may be seen before their node: keep them on a node-less NodeInfo
            ni = self._nodes[name] = NodeInfo(None, name)
        return ni

    def add_node(self, node: Obj) -> NodeInfo:
        name = node["metadata"]["name"]
        ni = self._node(name)
        had = ni.node is not None
        had_images = bool(ni.images)
        ni.set_node(node)
        self._counts.nodes_with_images += bool(ni.images) - had_images
        for names, present in ((self._tainted, ni.taints), (self._cordoned, ni.unschedulable)):
            if present:
                names.add(name)
            else:
                names.discard(name)
        if not had:
            self._snapshot = None
        return ni

    update_node = add_node

    def remove_node(self, name: str) -> None:
        ni = self._nodes.get(name)
        if ni is None:
            return
        self._tainted.discard(name)
        self._cordoned.discard(name)
        self._counts.nodes_with_images -= bool(ni.images)
        ni.images = frozenset()
        if ni.pods:  # its pods stay accounted until they are deleted
            ni.node = None
        else:
            del self._nodes[name]
        self._snapshot = None

    def node(self, name: str) -> NodeInfo | None:
        ni = self._nodes.get(name)
        return ni if ni is not None and ni.node is not None else None

    def snapshot(self) -> Snapshot:
        """The nodes in a stable order; rebuilt only when nodes come or go."""
        if self._snapshot is None:
            nodes = [n for n in self._nodes.values() if n.node is not None]
            self._snapshot = Snapshot(nodes, self.namespace_labels, self._tainted, self._cordoned,
                                      self._counts)
        return self._snapshot

    # --- pods -------------------------------------------------------------------------------------

    def assume(self, pi: PodInfo, node: str) -> None:
        """Account the pod on `node` before the API server has seen the binding."""
        if pi.uid in self._pods:
            raise ValueError(f"pod {pi.key} is already in the cache")
        self._add(pi, node, assumed=True)

    def finish_binding(self, uid: str) -> None:
        st = self._pods.get(uid)
        if st is not None:
            st.binding_finished = True

    def forget(self, uid: str) -> None:
        """The binding failed: give the pod's resources back."""
        st = self._pods.get(uid)
        if st is not None and st.assumed:
            self._remove(uid, st)

    def is_assumed(self, uid: str) -> bool:
        st = self._pods.get(uid)
        return st is not None and st.assumed

    def add_pod(self, pod: Obj) -> None:
        """An assigned pod from the informer (confirms an assumed one)."""
        uid = pod["metadata"]["uid"]
        node = pod["spec"]["nodeName"]
        st = self._pods.get(uid)
        if st is not None and st.assumed and st.node == node:
            # The binding came back: same pod, same node, same requests; only the object is newer.
            pi = st.info.with_object(pod, pod["metadata"].get("labels") or {})
            self._node(node).pods[uid] = pi
            self._pods[uid] = _PodState(pi, node, assumed=False)
            return
        if st is not None:
            self._remove(uid, st)
        self._add(PodInfo.of(pod), node, assumed=False)

    def update_pod(self, pod: Obj) -> None:
        """A newer version of an assigned pod. Mostly its status changed (the kubelet's writes): then only
        the object and labels are replaced; requests, ports and affinity come from the spec."""
        uid = pod["metadata"]["uid"]
        st = self._pods.get(uid)
        spec = pod["spec"]
        if st is None or st.assumed or st.node != spec["nodeName"] or st.info.pod.get("spec") != spec:
            self.add_pod(pod)
            return
        pi = st.info.with_object(pod, pod["metadata"].get("labels") or {})
        self._node(st.node).pods[uid] = pi
        st.info = pi

    def _add(self, pi: PodInfo, node: str, assumed: bool) -> None:
        self._node(node).add_pod(pi)
        self._pods[pi.uid] = _PodState(pi, node, assumed)
        self._count(pi, 1)

    def _count(self, pi: PodInfo, sign: int) -> None:
        if pi.has_affinity:
            self._counts.affinity_pods += sign
        if pi.required_anti_affinity:
            self._counts.required_anti_affinity_pods += sign

    def remove_pod(self, pod: Obj) -> None:
        uid = pod["metadata"]["uid"]
        st = self._pods.get(uid)
        if st is not None:
            self._remove(uid, st)

    def _remove(self, uid: str, st: _PodState) -> None:
        del self._pods[uid]
        self._count(st.info, -1)
        ni = self._nodes.get(st.node)
        if ni is None:
            return
        ni.remove_pod(uid)
        if ni.node is None and not ni.pods:
            del self._nodes[st.node]

    def pod_count(self) -> int:
        return len(self._pods)
