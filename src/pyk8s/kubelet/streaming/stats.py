"""The Summary API (`/stats/summary`): node and pod CPU and memory read from /proc and cgroup v1
(cpuacct.usage, memory.usage_in_bytes / working set) of each container's process."""

from __future__ import annotations

import os
import time
from typing import Any

from pyk8s.api.meta import rfc3339
from pyk8s.kubelet import cri
from pyk8s.kubelet.node import meminfo

__all__ = ["summary"]

Obj = dict[str, Any]
CGROUP_ROOT = "/sys/fs/cgroup"


def _read_int(path: str) -> int | None:
    try:
        with open(path) as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _cgroup_dirs(pid: int) -> dict[str, str]:
    """controller → the process's cgroup directory (v1 hierarchies)."""
    out: dict[str, str] = {}
    try:
        with open(f"/proc/{pid}/cgroup") as f:
            for line in f:
                _, controllers, path = line.rstrip("\n").split(":", 2)
                for c in controllers.split(","):
                    if c:
                        out[c] = os.path.join(CGROUP_ROOT, c, path.lstrip("/"))
    except OSError:
        pass
    return out


def _usage(dirs: dict[str, str], now: str) -> tuple[Obj, Obj]:
    cpu: Obj = {"time": now}
    mem: Obj = {"time": now}
    cpuacct = dirs.get("cpuacct")
    if cpuacct and (ns := _read_int(os.path.join(cpuacct, "cpuacct.usage"))) is not None:
        cpu["usageCoreNanoSeconds"] = ns
    memory = dirs.get("memory")
    if memory and (usage := _read_int(os.path.join(memory, "memory.usage_in_bytes"))) is not None:
        inactive = 0
        try:
            with open(os.path.join(memory, "memory.stat")) as f:
                for line in f:
                    key, _, value = line.partition(" ")
                    if key == "total_inactive_file":
                        inactive = int(value)
        except (OSError, ValueError):
            pass
        mem["usageBytes"] = usage
        mem["workingSetBytes"] = max(0, usage - inactive)
    return cpu, mem


def _node(node_name: str, now: str) -> Obj:
    mem: Obj = {"time": now}
    info = meminfo()
    if info:
        mem["availableBytes"] = info.get("MemAvailable", 0)
        mem["usageBytes"] = info.get("MemTotal", 0) - info.get("MemFree", 0)
        mem["workingSetBytes"] = info.get("MemTotal", 0) - info.get("MemAvailable", 0)
    cpu: Obj = {"time": now}
    try:
        with open("/proc/stat") as f:
            fields = [int(x) for x in f.readline().split()[1:]]
        hz = os.sysconf("SC_CLK_TCK")
        busy = sum(fields) - fields[3] - (fields[4] if len(fields) > 4 else 0)
        cpu["usageCoreNanoSeconds"] = busy * 1_000_000_000 // hz
    except (OSError, ValueError, IndexError):
        pass
    return {"nodeName": node_name, "startTime": now, "cpu": cpu, "memory": mem}


async def summary(node_name: str, runtime: cri.RuntimeService, pods: list[Obj]) -> Obj:
    now = rfc3339(time.time())
    by_key = {((p.get("metadata") or {}).get("namespace"), (p.get("metadata") or {}).get("name")): p
              for p in pods}
    out: list[Obj] = []
    for sandbox in await runtime.list_pod_sandboxes():
        if sandbox.state != "ready":
            continue
        pod = by_key.get((sandbox.namespace, sandbox.name))
        containers: list[Obj] = []
        pod_cpu, pod_mem = 0, 0
        for c in await runtime.list_containers(sandbox.id):
            if c.state != "running" or not c.pid:
                continue
            cpu, mem = _usage(_cgroup_dirs(c.pid), now)
            pod_cpu += int(cpu.get("usageCoreNanoSeconds", 0))
            pod_mem += int(mem.get("workingSetBytes", 0))
            containers.append({"name": c.name, "startTime": rfc3339(c.started_at or c.created_at),
                               "cpu": cpu, "memory": mem})
        out.append({
            "podRef": {"name": sandbox.name, "namespace": sandbox.namespace,
                       "uid": (pod or {}).get("metadata", {}).get("uid", sandbox.pod_uid)},
            "startTime": rfc3339(sandbox.created_at), "containers": containers,
            "cpu": {"time": now, "usageCoreNanoSeconds": pod_cpu},
            "memory": {"time": now, "workingSetBytes": pod_mem},
        })
    return {"node": _node(node_name, now), "pods": out}
