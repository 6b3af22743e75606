"""PodInfo (what the plugins need of a pod, computed once) and NodeInfo (a node with the pods assigned or
assumed on it and their sums), as Kubernetes' framework.PodInfo and framework.NodeInfo."""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pyk8s.scheduler.resources import Resource, non_zero, pod_requests

Obj = dict[str, Any]

# (hostIP, protocol, port) of a container port with a hostPort.
HostPort = tuple[str, str, int]

# Every change of any NodeInfo takes the next number (Kubernetes' nextGeneration), so a generation names one
# state of one node: a clone keeps its original's until either changes, and memos keyed by it stay valid.
_generations = itertools.count(1)


def host_ports(pod: Mapping[str, Any]) -> list[HostPort]:
    spec = pod.get("spec") or {}
    containers = list(spec.get("containers") or [])
    containers += [c for c in spec.get("initContainers") or [] if c.get("restartPolicy") == "Always"]
    out: list[HostPort] = []
    for c in containers:
        out.extend(
            (p.get("hostIP") or "0.0.0.0", p.get("protocol") or "TCP", int(p["hostPort"]))
            for p in c.get("ports") or []
            if p.get("hostPort")
        )
    return out


@dataclass(slots=True)
class PodInfo:
    pod: Obj
    key: str  # namespace/name
    uid: str
    namespace: str
    labels: Mapping[str, str]
    priority: int
    requests: Resource
    non_zero: tuple[int, int]
    ports: list[HostPort]
    required_affinity: list[Obj]
    required_anti_affinity: list[Obj]
    preferred_affinity: list[Obj]  # WeightedPodAffinityTerm
    preferred_anti_affinity: list[Obj]

    @classmethod
    def of(cls, pod: Obj) -> PodInfo:
        meta = pod.get("metadata") or {}
        spec = pod.get("spec") or {}
        aff = spec.get("affinity") or {}
        pa = aff.get("podAffinity") or {}
        paa = aff.get("podAntiAffinity") or {}
        req = pod_requests(pod)
        ns = meta.get("namespace") or ""
        return cls(
            pod=pod,
            key=f"{ns}/{meta.get('name', '')}",
            uid=meta.get("uid") or "",
            namespace=ns,
            labels=meta.get("labels") or {},
            priority=int(spec.get("priority") or 0),
            requests=req,
            non_zero=non_zero(req),
            ports=host_ports(pod),
            required_affinity=list(pa.get("requiredDuringSchedulingIgnoredDuringExecution") or []),
            required_anti_affinity=list(paa.get("requiredDuringSchedulingIgnoredDuringExecution") or []),
            preferred_affinity=list(pa.get("preferredDuringSchedulingIgnoredDuringExecution") or []),
            preferred_anti_affinity=list(paa.get("preferredDuringSchedulingIgnoredDuringExecution") or []),
        )

    def with_object(self, pod: Obj, labels: Mapping[str, str] | None = None) -> PodInfo:
        """A newer object of the same pod (its binding, its status): what came from the spec is kept.
        dataclasses.replace does the same at several times the cost, on every binding and status write."""
        return PodInfo(
            pod,
            self.key,
            self.uid,
            self.namespace,
            self.labels if labels is None else labels,
            self.priority,
            self.requests,
            self.non_zero,
            self.ports,
            self.required_affinity,
            self.required_anti_affinity,
            self.preferred_affinity,
            self.preferred_anti_affinity,
        )

    @property
    def has_affinity(self) -> bool:
        return bool(
            self.required_affinity
            or self.required_anti_affinity
            or self.preferred_affinity
            or self.preferred_anti_affinity
        )

    @property
    def terminating(self) -> bool:
        return bool((self.pod.get("metadata") or {}).get("deletionTimestamp"))

    @property
    def start_time(self) -> str:
        status = self.pod.get("status") or {}
        return str(status.get("startTime") or (self.pod.get("metadata") or {}).get("creationTimestamp") or "")


@dataclass(slots=True)
class NodeInfo:
    node: Obj | None
    name: str
    labels: Mapping[str, str] = field(default_factory=dict)
    taints: list[Obj] = field(default_factory=list)
    unschedulable: bool = False
    allocatable: Resource = field(default_factory=Resource)
    allowed_pods: int = 0
    pods: dict[str, PodInfo] = field(default_factory=dict)  # uid → pod
    requested: Resource = field(default_factory=Resource)
    non_zero_cpu: int = 0
    non_zero_memory: int = 0
    used_ports: dict[HostPort, int] = field(default_factory=dict)
    with_affinity: int = 0  # pods with any pod (anti-)affinity
    with_required_anti_affinity: int = 0
    images: frozenset[str] = frozenset()
    generation: int = 0  # see _generations

    def set_node(self, node: Obj) -> None:
        self.node = node
        meta = node.get("metadata") or {}
        spec = node.get("spec") or {}
        status = node.get("status") or {}
        self.labels = meta.get("labels") or {}
        self.taints = list(spec.get("taints") or [])
        self.unschedulable = bool(spec.get("unschedulable"))
        alloc = status.get("allocatable") or status.get("capacity") or {}
        self.allocatable = Resource.from_list(alloc)
        try:
            self.allowed_pods = int(str(alloc.get("pods", 0)))
        except ValueError:
            self.allowed_pods = 0
        self.images = frozenset(n for img in status.get("images") or [] for n in img.get("names") or [])
        self.generation = next(_generations)

    def add_pod(self, pi: PodInfo) -> None:
        self._account(pi, 1)
        self.pods[pi.uid] = pi

    def remove_pod(self, uid: str) -> PodInfo | None:
        pi = self.pods.pop(uid, None)
        if pi is not None:
            self._account(pi, -1)
        return pi

    def _account(self, pi: PodInfo, sign: int) -> None:
        self.requested.add(pi.requests, sign)
        self.non_zero_cpu += sign * pi.non_zero[0]
        self.non_zero_memory += sign * pi.non_zero[1]
        for hp in pi.ports:
            n = self.used_ports.get(hp, 0) + sign
            if n > 0:
                self.used_ports[hp] = n
            else:
                self.used_ports.pop(hp, None)
        if pi.has_affinity:
            self.with_affinity += sign
        if pi.required_anti_affinity:
            self.with_required_anti_affinity += sign
        self.generation = next(_generations)

    def clone(self) -> NodeInfo:
        return NodeInfo(
            self.node,
            self.name,
            self.labels,
            self.taints,
            self.unschedulable,
            self.allocatable,
            self.allowed_pods,
            dict(self.pods),
            self.requested.copy(),
            self.non_zero_cpu,
            self.non_zero_memory,
            dict(self.used_ports),
            self.with_affinity,
            self.with_required_anti_affinity,
            self.images,
            self.generation,
        )
