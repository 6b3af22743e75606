"""Pod QoS classes, the pod cgroup they put a pod under, and container cgroup limits (Kubernetes'
`pkg/apis/core/helper/qos` and `pkg/kubelet/cm` helpers)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from pyk8s.api.quantity import parse_quantity
from pyk8s.kubelet import cri

__all__ = [
    "BEST_EFFORT",
    "BURSTABLE",
    "GUARANTEED",
    "container_resources",
    "memory_bytes",
    "milli_cpu",
    "pod_cgroup_parent",
    "pod_resources",
    "qos_class",
]

Obj = dict[str, Any]

GUARANTEED = "Guaranteed"
BURSTABLE = "Burstable"
BEST_EFFORT = "BestEffort"

_MIN_SHARES = 2  # the kernel's minimum cpu.shares
_SHARES_PER_CPU = 1024
_MIN_QUOTA = 1000  # microseconds: the kernel refuses less
_PERIOD = 100_000
_QOS_RESOURCES = ("cpu", "memory")


def milli_cpu(value: str | int | float) -> int:
    """A cpu quantity in millicores, rounded up as Kubernetes' MilliValue."""
    q = parse_quantity(value) * 1000
    return int(q.to_integral_value(rounding="ROUND_CEILING"))


def memory_bytes(value: str | int | float) -> int:
    q: Decimal = parse_quantity(value)
    return int(q.to_integral_value(rounding="ROUND_CEILING"))


def _all_containers(pod: Obj) -> list[Obj]:
    spec = pod.get("spec") or {}
    return [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]


def qos_class(pod: Obj) -> str:
    """Guaranteed: every container limits cpu and memory with requests equal to limits; BestEffort: no
    container requests or limits cpu or memory; Burstable otherwise."""
    requests: dict[str, Decimal] = {}
    limits: dict[str, Decimal] = {}
    guaranteed = True
    for c in _all_containers(pod):
        res = c.get("resources") or {}
        req = {k: parse_quantity(v) for k, v in (res.get("requests") or {}).items() if k in _QOS_RESOURCES}
        lim = {k: parse_quantity(v) for k, v in (res.get("limits") or {}).items() if k in _QOS_RESOURCES}
        for k, v in req.items():
            if v != 0:
                requests[k] = requests.get(k, Decimal(0)) + v
        for k, v in lim.items():
            if v != 0:
                limits[k] = limits.get(k, Decimal(0)) + v
        if set(lim) != set(_QOS_RESOURCES):
            guaranteed = False
        # Requests default to limits (API defaulting), so only a differing request spoils Guaranteed.
        if any(req.get(k, lim.get(k)) != lim.get(k) for k in lim):
            guaranteed = False
    if not requests and not limits:
        return BEST_EFFORT
    return GUARANTEED if guaranteed else BURSTABLE


def pod_cgroup_parent(pod: Obj, qos: str | None = None, root: str = "/kubepods") -> str:
    """The pod's cgroup (cgroupfs driver): Guaranteed pods sit right under /kubepods."""
    uid = pod["metadata"]["uid"]
    qos = qos or qos_class(pod)
    if qos == GUARANTEED:
        return f"{root}/pod{uid}"
    return f"{root}/{qos.lower()}/pod{uid}"


def container_resources(container: Obj, pids_limit: int = 0) -> cri.LinuxResources:
    """cpu.shares from the cpu request (the limit when no request), CFS quota from the cpu limit, the
    memory limit — as the kubelet's generateLinuxContainerResources."""
    res = container.get("resources") or {}
    requests = res.get("requests") or {}
    limits = res.get("limits") or {}
    cpu_request = requests.get("cpu", limits.get("cpu"))
    shares = _MIN_SHARES
    if cpu_request is not None:
        shares = max(_MIN_SHARES, milli_cpu(cpu_request) * _SHARES_PER_CPU // 1000)
    quota = 0
    if "cpu" in limits:
        milli = milli_cpu(limits["cpu"])
        if milli:
            quota = max(_MIN_QUOTA, milli * _PERIOD // 1000)
    memory = memory_bytes(limits["memory"]) if "memory" in limits else 0
    return cri.LinuxResources(cpu_shares=shares, cpu_quota=quota, cpu_period=_PERIOD, memory_limit=memory,
                              pids_limit=pids_limit)


def _pod_total(pod: Obj, kind: str, resource: str) -> Decimal:
    """A pod's effective request or limit of one resource, as Kubernetes' PodRequests/PodLimits: the sum
    over its containers and sidecars, or the largest init container (with the sidecars started before it)
    when that is more."""
    spec = pod.get("spec") or {}

    def value(c: Obj) -> Decimal:
        res = c.get("resources") or {}
        amounts = res.get(kind) or {}
        if kind == "requests" and resource not in amounts:  # requests default to limits
            amounts = res.get("limits") or {}
        return parse_quantity(amounts[resource]) if resource in amounts else Decimal(0)

    total = sum((value(c) for c in spec.get("containers") or []), Decimal(0))
    sidecars = init_peak = Decimal(0)
    for c in spec.get("initContainers") or []:
        if c.get("restartPolicy") == "Always":
            total += value(c)
            sidecars += value(c)
            init_peak = max(init_peak, sidecars)
        else:
            init_peak = max(init_peak, value(c) + sidecars)
    return max(total, init_peak)


def pod_resources(pod: Obj) -> cri.LinuxResources:
    """The pod cgroup's limits, as Kubernetes' ResourceConfigForPod: cpu.shares from the summed cpu
    requests; a CFS quota and a memory limit only when every container declares that limit."""
    containers = _all_containers(pod)
    shares = _MIN_SHARES
    if qos_class(pod) != BEST_EFFORT:
        milli = int((_pod_total(pod, "requests", "cpu") * 1000).to_integral_value(rounding="ROUND_CEILING"))
        shares = max(_MIN_SHARES, milli * _SHARES_PER_CPU // 1000)

    def declared(resource: str) -> bool:
        return bool(containers) and all(
            parse_quantity(((c.get("resources") or {}).get("limits") or {}).get(resource, 0)) != 0
            for c in containers)

    quota = 0
    if declared("cpu"):
        milli = int((_pod_total(pod, "limits", "cpu") * 1000).to_integral_value(rounding="ROUND_CEILING"))
        quota = max(_MIN_QUOTA, milli * _PERIOD // 1000)
    memory = 0
    if declared("memory"):
        memory = int(_pod_total(pod, "limits", "memory").to_integral_value(rounding="ROUND_CEILING"))
    return cri.LinuxResources(cpu_shares=shares, cpu_quota=quota, cpu_period=_PERIOD, memory_limit=memory)
