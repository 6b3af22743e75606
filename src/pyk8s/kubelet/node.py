"""The kubelet's Node: registration with the host's capacity, addresses and nodeInfo, the status and its
pressure conditions from real readings, the Lease in kube-node-lease, the podCIDR handed to the network,
and a RuntimeClass per runtime handler found (Kubernetes' `kubelet_node_status.go` and `nodelease`)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import platform
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pyk8s.api import catalog
from pyk8s.api.errors import StatusError
from pyk8s.api.meta import now_rfc3339, rfc3339_micro
from pyk8s.client.client import Client
from pyk8s.client.informer import SharedInformerFactory

__all__ = [
    "KUBELET_VERSION",
    "RUNTIME_CLASS_NAMES",
    "HostReadings",
    "NodeAgent",
    "default_node_ip",
    "meminfo",
    "read_host",
]

log = logging.getLogger(__name__)

Obj = dict[str, Any]

KUBELET_VERSION = "v1.32.0-pyk8s"
LEASE_NAMESPACE = "kube-node-lease"
LEASE_DURATION = 40
MAX_PODS = 110
MEMORY_RESERVE = 100 * 1024 * 1024  # the kubelet's default hard eviction threshold, memory.available<100Mi
DISK_PRESSURE_FREE = 0.10  # nodefs.available<10%
PID_PRESSURE_USED = 0.90
RUNTIME_CLASS_NAMES = {"runc": "runc", "runsc": "gvisor"}  # handler → RuntimeClass


NODES = catalog.require("", "Node")
LEASES = catalog.require("coordination.k8s.io", "Lease")
RUNTIME_CLASSES = catalog.require("node.k8s.io", "RuntimeClass")

_ARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "ppc64le": "ppc64le", "s390x": "s390x"}


def _read(path: str, default: str = "") -> str:
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return default


def meminfo() -> dict[str, int]:
    """/proc/meminfo in bytes, by field."""
    out: dict[str, int] = {}
    for line in _read("/proc/meminfo").splitlines():
        key, _, rest = line.partition(":")
        parts = rest.split()
        if parts and parts[0].isdigit():
            out[key] = int(parts[0]) * (1024 if parts[1:] == ["kB"] else 1)
    return out


def _os_image() -> str:
    for line in _read("/etc/os-release").splitlines():
        if line.startswith("PRETTY_NAME="):
            return line.partition("=")[2].strip().strip('"')
    return "Linux"


def default_node_ip() -> str:
    """The source address of the default route (a UDP connect sends nothing), else loopback."""
    with contextlib.suppress(OSError), socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.connect(("192.0.2.1", 9))  # TEST-NET-1: only the route lookup matters
        ip: str = s.getsockname()[0]
        return ip
    return "127.0.0.1"


@dataclass(frozen=True)
class HostReadings:
    cpus: int
    memory_total: int
    memory_available: int
    disk_total: int
    disk_free: int
    pids_used: int
    pid_max: int


def read_host(data_dir: str) -> HostReadings:
    mem = meminfo()
    os.makedirs(data_dir, exist_ok=True)
    fs = os.statvfs(data_dir)
    pid_max = int(_read("/proc/sys/kernel/pid_max", "32768") or 32768)
    loadavg = _read("/proc/loadavg").split()
    pids_used = int(loadavg[3].partition("/")[2]) if len(loadavg) > 3 else 0
    return HostReadings(cpus=len(os.sched_getaffinity(0)), memory_total=mem.get("MemTotal", 0),
                        memory_available=mem.get("MemAvailable", mem.get("MemFree", 0)),
                        disk_total=fs.f_blocks * fs.f_frsize, disk_free=fs.f_bavail * fs.f_frsize,
                        pids_used=pids_used, pid_max=pid_max)


def _ki(n: int) -> str:
    return f"{n // 1024}Ki"


class NodeAgent:
    """Registers the Node, keeps its status and Lease fresh; `await run()` until cancelled."""

    def __init__(self, client: Client, node_name: str, data_dir: str, *, runtime_version: str,
                 handlers: list[str], node_ip: str | None = None, kubelet_port: int = 10250,
                 status_interval: float = 10.0, lease_duration: int = LEASE_DURATION,
                 on_pod_cidr: Callable[[str], None] | None = None,
                 readings: Callable[[str], HostReadings] = read_host) -> None:
        self.client = client
        self.node_name = node_name
        self.data_dir = data_dir
        self.runtime_version = runtime_version
        self.handlers = handlers
        self.node_ip = node_ip or default_node_ip()
        self.kubelet_port = kubelet_port
        self.status_interval = status_interval
        self.lease_duration = lease_duration
        self.lease_interval = lease_duration / 4  # Kubernetes' renew interval: a quarter of the duration
        self.on_pod_cidr = on_pod_cidr
        self.readings = readings
        self.pod_cidr = ""
        self.registered = asyncio.Event()
        self._conditions: dict[str, Obj] = {}
        self._lease: Obj | None = None
        self._node_uid = ""
        # The Node itself, watched: the node IPAM controller's podCIDR arrives as soon as it is set.
        self.informers = SharedInformerFactory(client)
        self.node = self.informers.informer(NODES, field_selector=f"metadata.name={node_name}")
        self.node.add_handler(self._seen_node, lambda _old, new: self._seen_node(new), None)

    # --- the Node object ---------------------------------------------------------------------------

    def labels(self) -> dict[str, str]:
        arch = _ARCH.get(platform.machine(), platform.machine())
        return {"kubernetes.io/hostname": self.node_name, "kubernetes.io/os": "linux",
                "kubernetes.io/arch": arch, "beta.kubernetes.io/os": "linux", "beta.kubernetes.io/arch": arch}

    def allocatable_resources(self, h: HostReadings | None = None) -> dict[str, str]:
        h = h or self.readings(self.data_dir)
        return {"cpu": str(h.cpus), "memory": _ki(max(0, h.memory_total - MEMORY_RESERVE)),
                "ephemeral-storage": str(int(h.disk_total * (1 - DISK_PRESSURE_FREE))), "pods": str(MAX_PODS)}

    def status(self) -> Obj:
        h = self.readings(self.data_dir)
        capacity = {"cpu": str(h.cpus), "memory": _ki(h.memory_total), "ephemeral-storage": str(h.disk_total),
                    "pods": str(MAX_PODS)}
        now = now_rfc3339()
        mem = h.memory_available < MEMORY_RESERVE
        disk = h.disk_total > 0 and h.disk_free < h.disk_total * DISK_PRESSURE_FREE
        pid = h.pid_max > 0 and h.pids_used > h.pid_max * PID_PRESSURE_USED
        conditions = [
            self._condition("MemoryPressure", mem, ("KubeletHasInsufficientMemory",
                            "kubelet has insufficient memory available"),
                            ("KubeletHasSufficientMemory", "kubelet has sufficient memory available"), now),
            self._condition("DiskPressure", disk, ("KubeletHasDiskPressure", "kubelet has disk pressure"),
                            ("KubeletHasNoDiskPressure", "kubelet has no disk pressure"), now),
            self._condition("PIDPressure", pid, ("KubeletHasInsufficientPID",
                            "kubelet has insufficient PID available"),
                            ("KubeletHasSufficientPID", "kubelet has sufficient PID available"), now),
            self._condition("Ready", True, ("KubeletReady", "kubelet is posting ready status"),
                            ("KubeletNotReady", ""), now),
        ]
        uname = os.uname()
        machine_id = _read("/etc/machine-id") or _read("/var/lib/dbus/machine-id")
        return {
            "capacity": capacity,
            "allocatable": self.allocatable_resources(h),
            "conditions": conditions,
            "addresses": [{"type": "InternalIP", "address": self.node_ip},
                          {"type": "Hostname", "address": self.node_name}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": self.kubelet_port}},
            "nodeInfo": {
                "machineID": machine_id,
                "systemUUID": _read("/sys/class/dmi/id/product_uuid").lower() or machine_id,
                "bootID": _read("/proc/sys/kernel/random/boot_id"),
                "kernelVersion": uname.release,
                "osImage": _os_image(),
                "containerRuntimeVersion": self.runtime_version,
                "kubeletVersion": KUBELET_VERSION,
                "kubeProxyVersion": KUBELET_VERSION,
                "operatingSystem": "linux",
                "architecture": _ARCH.get(uname.machine, uname.machine),
            },
        }

    def _condition(self, ctype: str, true: bool, if_true: tuple[str, str], if_false: tuple[str, str],
                   now: str) -> Obj:
        status = "True" if true else "False"
        reason, message = if_true if true else if_false
        old = self._conditions.get(ctype)
        transition = old["lastTransitionTime"] if old and old["status"] == status else now
        c = {"type": ctype, "status": status, "lastHeartbeatTime": now, "lastTransitionTime": transition,
             "reason": reason, "message": message}
        self._conditions[ctype] = c
        return c

    def node_object(self) -> Obj:
        return {"apiVersion": "v1", "kind": "Node",
                "metadata": {"name": self.node_name, "labels": self.labels(),
                             "annotations": {"node.alpha.kubernetes.io/ttl": "0"}},
                "spec": {}, "status": self.status()}

    # --- running -----------------------------------------------------------------------------------

    async def register(self) -> None:
        """Create the Node, or bring an existing one (a restart) up to date."""
        try:
            node = await self.client.create(NODES, self.node_object())
        except StatusError as e:
            if e.code != 409:
                raise
            node = await self.client.patch(NODES, self.node_name, {"metadata": {"labels": self.labels()}},
                                           "merge")
            await self.post_status()
        self._node_uid = node["metadata"]["uid"]
        self._seen_node(node)
        await self.ensure_runtime_classes()
        self.registered.set()

    async def post_status(self) -> None:
        node = await self.client.patch(NODES, self.node_name, {"status": self.status()}, "merge",
                                       subresource="status")
        self._node_uid = node["metadata"]["uid"]
        self._seen_node(node)

    def _seen_node(self, node: Obj) -> None:
        cidr = (node.get("spec") or {}).get("podCIDR") or ""
        if cidr and cidr != self.pod_cidr:
            self.pod_cidr = cidr
            log.info("kubelet: node %s has podCIDR %s", self.node_name, cidr)
            if self.on_pod_cidr is not None:
                self.on_pod_cidr(cidr)

    async def ensure_runtime_classes(self) -> None:
        for handler in self.handlers:
            name = RUNTIME_CLASS_NAMES.get(handler, handler)
            # Read first: a node may read RuntimeClasses but not create them, and authorization answers
            # a create with 403 before it could say the class exists (the server registers its own).
            with contextlib.suppress(StatusError):
                await self.client.get(RUNTIME_CLASSES, name)
                continue
            try:
                await self.client.create(RUNTIME_CLASSES, {
                    "apiVersion": "node.k8s.io/v1", "kind": "RuntimeClass", "metadata": {"name": name},
                    "handler": handler})
            except StatusError as e:
                if e.code != 409:  # 409: it exists already (another node made it)
                    # A node's own credentials may only read RuntimeClasses, as in Kubernetes.
                    log.warning("kubelet: RuntimeClass %s (handler %s) not created: %s", name, handler,
                                e.message)

    async def run(self) -> None:
        if not self.registered.is_set():
            await self.register()
        self.informers.start()
        try:
            await asyncio.gather(self._every(self.status_interval, self._status_tick, "status"),
                                 self._every(self.lease_interval, self.renew_lease, "lease"))
        finally:
            await self.informers.stop()

    async def _status_tick(self) -> None:
        try:
            await self.post_status()
        except StatusError as e:
            if e.code != 404:
                raise
            await self.register()  # deleted while we live: a kubelet registers again

    async def _every(self, interval: float, fn: Callable[[], Any], what: str) -> None:
        loop = asyncio.get_running_loop()
        while True:
            began = loop.time()
            try:
                await fn()
            except asyncio.CancelledError:
                raise
            except Exception as e:  # the server is away: keep trying on schedule
                log.warning("kubelet: node %s %s update failed: %s", self.node_name, what, e)
                if what == "lease":
                    self._lease = None
            await asyncio.sleep(max(0.0, interval - (loop.time() - began)))

    async def renew_lease(self) -> None:
        if self._lease is not None:
            self._lease["spec"]["renewTime"] = rfc3339_micro(time.time())
            try:
                self._lease = await self.client.update(LEASES, self._lease)
                return
            except StatusError as e:
                if e.code not in (404, 409):
                    raise
        try:
            lease: Obj | None = await self.client.get(LEASES, self.node_name, LEASE_NAMESPACE)
        except StatusError as e:
            if e.code != 404:
                raise
            lease = None
        spec = {"holderIdentity": self.node_name, "leaseDurationSeconds": self.lease_duration,
                "renewTime": rfc3339_micro(time.time())}
        owner = {"apiVersion": "v1", "kind": "Node", "name": self.node_name, "uid": self._node_uid}
        if lease is None:
            self._lease = await self.client.create(LEASES, {
                "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                "metadata": {"name": self.node_name, "namespace": LEASE_NAMESPACE,
                             "ownerReferences": [owner]},
                "spec": spec})
        else:
            lease["spec"] = {**(lease.get("spec") or {}), **spec}
            lease["metadata"]["ownerReferences"] = [owner]
            self._lease = await self.client.update(LEASES, lease)
