"""Hollow nodes, in the manner of kwok: many Nodes that run nothing but behave, to the control plane, as
kubelets do. For tests and benchmarks of the scheduler and controllers without containers.

One `HollowNodes` plays COUNT nodes `<prefix>-0 … <prefix>-(COUNT-1)` through one API client:
- registers each Node (capacity, allocatable, addresses, nodeInfo, the four kubelet conditions, labels
  `type=hollow` and the standard kubernetes.io ones) and re-posts its status when the node controller
  marks it not Ready or the Node is deleted while the agent lives;
- renews each node's Lease in `kube-node-lease` every quarter of its duration, the nodes spread evenly
  over the interval so the API server sees a steady trickle, never a burst;
- plays the pods bound to its nodes from one pod informer (not one per node): a new pod becomes Running
  with every container started and ready (and is reported ready again when the node controller marked it
  not ready); a pod with restartPolicy Never or OnFailure becomes Succeeded
  `complete_after` seconds later; a pod marked for deletion is deleted with grace period 0, as a kubelet
  confirms a termination. Status writes run on `workers` concurrent workers of one work queue, which never
  hands one pod to two workers.

Stop the agent and the leases stop: the node lifecycle controller then marks the nodes NotReady.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import secrets
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pyk8s.api import catalog
from pyk8s.api.errors import StatusError
from pyk8s.api.meta import now_rfc3339, rfc3339_micro
from pyk8s.client.cache import DeletedFinalStateUnknown, split_key
from pyk8s.client.client import Client
from pyk8s.client.controller import Controller
from pyk8s.client.informer import SharedInformerFactory
from pyk8s.util.tasks import cancel_and_wait

__all__ = ["HollowConfig", "HollowNodes"]

log = logging.getLogger(__name__)

Obj = dict[str, Any]

KUBELET_VERSION = "v1.32.0"
LEASE_NAMESPACE = "kube-node-lease"
# Node addresses come from a private range nobody routes to here: hollow nodes carry no traffic.
_NODE_IPS = ipaddress.ip_network("172.16.0.0/12")
_POD_IPS = ipaddress.ip_network("10.128.0.0/10")  # a /24 per node when IPAM gave the node no podCIDR


NODES = catalog.require("", "Node")
PODS = catalog.require("", "Pod")
LEASES = catalog.require("coordination.k8s.io", "Lease")


def _seconds_since(timestamp: str | None) -> float:
    if not timestamp:
        return 0.0
    t = datetime.strptime(timestamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    return (datetime.now(UTC) - t).total_seconds()


@dataclass(frozen=True)
class HollowConfig:
    prefix: str = "hollow"
    count: int = 1
    cpu: str = "32"
    memory: str = "256Gi"
    pods: int = 110
    ephemeral_storage: str = "100Gi"
    complete_after: float = 1.0  # seconds a Never/OnFailure pod runs before it succeeds
    lease_duration: int = 40
    renew_interval: float = 0.0  # 0: a quarter of lease_duration, as the kubelet renews
    workers: int = 32  # concurrent pod status writers

    def renew_every(self) -> float:
        return self.renew_interval or self.lease_duration / 4

    def node_names(self) -> list[str]:
        return [f"{self.prefix}-{i}" for i in range(self.count)]


def _condition(ctype: str, status: str, reason: str, message: str, now: str) -> Obj:
    return {"type": ctype, "status": status, "lastHeartbeatTime": now, "lastTransitionTime": now,
            "reason": reason, "message": message}


class HollowNodes(Controller):
    """Run with `await nodes.run()` until cancelled; `registered` is set once every Node exists."""

    name = "hollow-kubelet"

    def __init__(self, client: Client, config: HollowConfig) -> None:
        super().__init__(workers=config.workers)
        self.client = client
        self.config = config
        self.names = config.node_names()
        self._index = {n: i for i, n in enumerate(self.names)}
        self._pod_ips: dict[str, int] = {}  # node → last pod address handed out
        self._leases: dict[str, Obj] = {}
        self.registered = asyncio.Event()
        self.informers = SharedInformerFactory(client)
        # Bound pods only: the scheduler's pending pods are none of a node's business.
        self.pods = self.informers.informer(PODS, field_selector="spec.nodeName!=")
        self.nodes = self.informers.informer(NODES, label_selector="type=hollow")
        self.pods.add_handler(self._pod_event, lambda _old, new: self._pod_event(new), None)
        self.nodes.add_handler(self._node_event, lambda _old, new: self._node_event(new), self._node_event)

    # --- events: only enqueue ----------------------------------------------------------------------

    def _pod_event(self, pod: Obj) -> None:
        if (pod.get("spec") or {}).get("nodeName") in self._index:
            self.enqueue(pod)

    def _node_event(self, node: Obj | DeletedFinalStateUnknown) -> None:
        obj = node.obj if isinstance(node, DeletedFinalStateUnknown) else node
        if (obj.get("metadata") or {}).get("name") in self._index:
            self.enqueue(node)

    # --- running -----------------------------------------------------------------------------------

    async def run(self) -> None:
        sem = asyncio.Semaphore(self.config.workers)

        async def register(name: str) -> None:
            async with sem:
                await self._register(name)

        await asyncio.gather(*(register(n) for n in self.names))
        self.registered.set()
        log.info("hollow: %d nodes registered (%s-0 … %s-%d)", len(self.names), self.config.prefix,
                 self.config.prefix, len(self.names) - 1)
        self.informers.start()
        leases = [asyncio.create_task(self._lease_loop(n, i * self.config.renew_every() / len(self.names)),
                                      name=f"lease {n}") for i, n in enumerate(self.names)]
        try:
            await super().run()
        finally:
            await cancel_and_wait(leases)
            await self.informers.stop()

    async def reconcile(self, key: str) -> float | None:
        namespace, name = split_key(key)
        if namespace is None:
            return await self._reconcile_node(name)
        return await self._reconcile_pod(key)

    # --- nodes -------------------------------------------------------------------------------------

    def _node_ip(self, name: str) -> str:
        return str(_NODE_IPS[1 + self._index[name]])

    def node_object(self, name: str) -> Obj:
        return {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {
                "name": name,
                "labels": {"type": "hollow", "kubernetes.io/hostname": name, "kubernetes.io/os": "linux",
                           "kubernetes.io/arch": "amd64", "beta.kubernetes.io/os": "linux",
                           "beta.kubernetes.io/arch": "amd64"},
                "annotations": {"node.alpha.kubernetes.io/ttl": "0"},
            },
            "spec": {},
            "status": self._node_status(name),
        }

    def _node_status(self, name: str) -> Obj:
        cfg = self.config
        resources = {"cpu": cfg.cpu, "memory": cfg.memory, "pods": str(cfg.pods),
                     "ephemeral-storage": cfg.ephemeral_storage}
        now = now_rfc3339()
        return {
            "capacity": resources,
            "allocatable": dict(resources),
            "conditions": [
                _condition("MemoryPressure", "False", "KubeletHasSufficientMemory",
                           "kubelet has sufficient memory available", now),
                _condition("DiskPressure", "False", "KubeletHasNoDiskPressure",
                           "kubelet has no disk pressure", now),
                _condition("PIDPressure", "False", "KubeletHasSufficientPID",
                           "kubelet has sufficient PID available", now),
                _condition("Ready", "True", "KubeletReady", "kubelet is posting ready status", now),
            ],
            "addresses": [{"type": "InternalIP", "address": self._node_ip(name)},
                          {"type": "Hostname", "address": name}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
            "nodeInfo": {
                "machineID": uuid.uuid5(uuid.NAMESPACE_DNS, name).hex,
                "systemUUID": str(uuid.uuid5(uuid.NAMESPACE_URL, name)),
                "bootID": str(uuid.uuid4()),
                "kernelVersion": "hollow",
                "osImage": "pyk8s hollow node",
                "containerRuntimeVersion": "hollow://1.0.0",
                "kubeletVersion": KUBELET_VERSION,
                "kubeProxyVersion": KUBELET_VERSION,
                "operatingSystem": "linux",
                "architecture": "amd64",
            },
        }

    async def _register(self, name: str) -> None:
        """Create the Node, or bring an existing one (an agent restart) back to Ready."""
        node = self.node_object(name)
        try:
            await self.client.create(NODES, node)
            return
        except StatusError as e:
            if e.code != 409:
                raise
        await self._post_status(name)

    async def _post_status(self, name: str) -> None:
        wanted = self.node_object(name)
        patch = {"metadata": {"labels": wanted["metadata"]["labels"]}}
        await self.client.patch(NODES, name, patch, "merge")
        await self.client.patch(NODES, name, {"status": wanted["status"]}, "merge", subresource="status")

    async def _reconcile_node(self, name: str) -> float | None:
        node = self.nodes.lister.get(name)
        if node is None:
            await self._register(name)  # deleted while we live: a kubelet registers again
            return None
        ready = [c for c in (node.get("status") or {}).get("conditions") or [] if c.get("type") == "Ready"]
        if not ready or ready[0].get("status") != "True":
            await self._post_status(name)
        return None

    # --- leases ------------------------------------------------------------------------------------

    async def _lease_loop(self, name: str, offset: float) -> None:
        await asyncio.sleep(offset)
        loop = asyncio.get_running_loop()
        while True:
            started = loop.time()
            try:
                await self._renew(name)
            except asyncio.CancelledError:
                raise
            except Exception as e:  # the server is away: keep trying on schedule, as a kubelet does
                log.warning("hollow: renewing the lease of %s failed: %s", name, e)
                self._leases.pop(name, None)
            await asyncio.sleep(max(0.0, self.config.renew_every() - (loop.time() - started)))

    async def _renew(self, name: str) -> None:
        lease = self._leases.get(name)
        if lease is not None:
            lease["spec"]["renewTime"] = rfc3339_micro(time.time())
            try:
                self._leases[name] = await self.client.update(LEASES, lease)
                return
            except StatusError as e:
                if e.code not in (404, 409):
                    raise
        node = self.nodes.lister.get(name) or await self.client.get(NODES, name)
        spec = {"holderIdentity": name, "leaseDurationSeconds": self.config.lease_duration,
                "renewTime": rfc3339_micro(time.time())}
        owner = {"apiVersion": "v1", "kind": "Node", "name": name, "uid": node["metadata"]["uid"]}
        # Create first: a new node has no Lease (a kubelet's GET would be a 404 for each of them); an agent
        # that restarts finds its Leases and takes them over.
        try:
            self._leases[name] = await self.client.create(LEASES, {
                "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                "metadata": {"name": name, "namespace": LEASE_NAMESPACE, "ownerReferences": [owner]},
                "spec": spec})
            return
        except StatusError as e:
            if e.code != 409:
                raise
        lease = await self.client.get(LEASES, name, LEASE_NAMESPACE)
        lease["spec"] = {**(lease.get("spec") or {}), **spec}
        lease["metadata"]["ownerReferences"] = [owner]
        self._leases[name] = await self.client.update(LEASES, lease)

    # --- pods --------------------------------------------------------------------------------------

    def _pod_ip(self, node_name: str) -> str:
        """The next address of the node's podCIDR (from node IPAM), or of a /24 of our own per node."""
        node = self.nodes.lister.get(node_name)
        cidr = ((node or {}).get("spec") or {}).get("podCIDR")
        if cidr:
            net = ipaddress.ip_network(cidr)
        else:
            net = ipaddress.ip_network((int(_POD_IPS.network_address) + 256 * self._index[node_name], 24))
        n = self._pod_ips.get(node_name, 1) + 1
        if n >= net.num_addresses - 1:
            n = 2
        self._pod_ips[node_name] = n
        return str(net[n])

    async def _reconcile_pod(self, key: str) -> float | None:
        pod = self.pods.lister.get_by_key(key)
        if pod is None:
            return None
        meta, spec, status = pod["metadata"], pod.get("spec") or {}, pod.get("status") or {}
        node_name = spec.get("nodeName")
        if node_name not in self._index:
            return None
        if meta.get("deletionTimestamp"):
            with contextlib.suppress(StatusError):  # gone already, or replaced by a pod of the same name
                await self.client.delete(PODS, meta["name"], meta["namespace"], grace_period_seconds=0,
                                         preconditions={"uid": meta["uid"]})
            return None
        phase = status.get("phase")
        if phase in ("Succeeded", "Failed"):
            return None
        if phase != "Running":
            await self._write_status(pod, self._running_status(pod, node_name))
            return self._completion_delay(spec)
        if not all(c.get("status") == "True" for c in status.get("conditions") or []
                   if c.get("type") in ("Ready", "ContainersReady")):
            # Marked not ready while this node was silent (the node lifecycle controller): report it ready
            # again, as a kubelet's status manager reconciles what the API holds with what it knows.
            ready = self._conditions(status, now_rfc3339(), {"Ready": "True", "ContainersReady": "True"})
            await self._write_status(pod, {"conditions": ready})
            return None  # the write's own event brings the pod back for the rest
        if spec.get("restartPolicy", "Always") == "Always":
            return None
        left = self.config.complete_after - _seconds_since(status.get("startTime"))
        if left > 0:
            return left
        await self._write_status(pod, self._succeeded_status(pod))
        return None

    def _completion_delay(self, spec: Obj) -> float | None:
        return None if spec.get("restartPolicy", "Always") == "Always" else self.config.complete_after

    async def _write_status(self, pod: Obj, status: Obj) -> None:
        meta = pod["metadata"]
        body = {"metadata": {"resourceVersion": meta["resourceVersion"]}, "status": status}
        try:
            # The answer (the whole pod) is not needed: the informer brings the new version anyway.
            await self.client.patch(PODS, meta["name"], body, "merge", meta["namespace"],
                                    subresource="status", decode=False)
        except StatusError as e:
            if e.code == 404:
                return
            raise  # 409: the cache was stale; the newer version is on its way and requeued by the queue

    def _running_status(self, pod: Obj, node_name: str) -> Obj:
        now = now_rfc3339()
        spec, status = pod.get("spec") or {}, pod.get("status") or {}
        pod_ip = status.get("podIP") or (self._node_ip(node_name) if spec.get("hostNetwork")
                                         else self._pod_ip(node_name))
        host_ip = self._node_ip(node_name)

        def container(c: Obj, state: Obj, ready: bool) -> Obj:
            image = c.get("image", "")
            return {"name": c["name"], "image": image, "imageID": f"hollow://{image}",
                    "containerID": f"hollow://{secrets.token_hex(32)}", "ready": ready, "started": ready,
                    "restartCount": 0, "state": state, "lastState": {}}

        running = {"running": {"startedAt": now}}
        done = {"terminated": {"exitCode": 0, "reason": "Completed", "startedAt": now, "finishedAt": now}}
        conditions = self._conditions(status, now, {"PodReadyToStartContainers": "True",
                                                    "Initialized": "True", "Ready": "True",
                                                    "ContainersReady": "True"})
        out: Obj = {
            "phase": "Running",
            "conditions": conditions,
            "hostIP": host_ip,
            "hostIPs": [{"ip": host_ip}],
            "podIP": pod_ip,
            "podIPs": [{"ip": pod_ip}],
            "startTime": status.get("startTime") or now,
            "containerStatuses": [container(c, running, True) for c in spec.get("containers") or []],
        }
        if spec.get("initContainers"):
            out["initContainerStatuses"] = [container(c, done, False) for c in spec["initContainers"]]
        return out

    def _succeeded_status(self, pod: Obj) -> Obj:
        now = now_rfc3339()
        status = pod.get("status") or {}
        statuses = []
        for cs in status.get("containerStatuses") or []:
            started = (cs.get("state") or {}).get("running", {}).get("startedAt") or now
            statuses.append({**cs, "ready": False, "started": False, "state": {"terminated": {
                "exitCode": 0, "reason": "Completed", "startedAt": started, "finishedAt": now,
                "containerID": cs.get("containerID", "")}}})
        conditions = self._conditions(status, now, {"PodReadyToStartContainers": "False", "Ready": "False",
                                                    "ContainersReady": "False"}, reason="PodCompleted")
        return {"phase": "Succeeded", "conditions": conditions, "containerStatuses": statuses}

    @staticmethod
    def _conditions(status: Obj, now: str, wanted: dict[str, str], reason: str = "") -> list[Obj]:
        """The pod's conditions with `wanted` types set; a changed status gets a new transition time."""
        conditions = [dict(c) for c in status.get("conditions") or []]
        by_type = {c.get("type"): c for c in conditions}
        for ctype, value in wanted.items():
            current = by_type.get(ctype)
            if current is None:
                current = {"type": ctype}
                conditions.append(current)
            if current.get("status") != value:
                current["lastTransitionTime"] = now
            current.update({"status": value, "lastProbeTime": None})
            if reason and ctype not in ("PodReadyToStartContainers",):
                current["reason"] = reason
            else:
                current.pop("reason", None)
        return conditions
