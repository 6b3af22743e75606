"""The kubelet's pods: one informer on the pods bound to this node, one worker per pod.

A worker is an asyncio task woken by events — the pod changed in the API, a container of it changed in the
runtime (the PLEG's relist), a probe result changed, a back-off expired — and each wake runs one `sync`:
sandbox, volumes, images, init containers in order, containers, restarts with back-off, and the status
written through the status subresource when it changed. Kubernetes' `pod_workers.go` and
`kuberuntime_manager.go` `SyncPod`, cut to one process.

On start the runtime is asked what it runs (`list_pod_sandboxes`, `list_containers`): sandboxes of known
pods are adopted with their containers (never restarted); sandboxes of pods no longer in the API are
removed once the informer has synced. A sandbox that died (its namespaces gone after a reboot, its pause or
gVisor sandbox killed) is replaced as Kubernetes does: SandboxChanged, containers killed, a new sandbox
(new IP), init containers again, containers restarted per restartPolicy (not a Never pod that already ran).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import itertools
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson

from pyk8s.api import catalog
from pyk8s.api.errors import StatusError
from pyk8s.api.resource import ResourceInfo
from pyk8s.client.cache import DeletedFinalStateUnknown
from pyk8s.client.client import Client
from pyk8s.client.events import NORMAL, WARNING, EventRecorder
from pyk8s.client.informer import SharedInformerFactory
from pyk8s.kubelet import cri
from pyk8s.kubelet.env import EnvError, container_argv, container_env, merge_image_env, service_env
from pyk8s.kubelet.lifecycle import run_hook
from pyk8s.kubelet.probes import LIVENESS, STARTUP, Prober
from pyk8s.kubelet.qos import container_resources, pod_cgroup_parent, pod_resources, qos_class
from pyk8s.kubelet.security import security_config, verify_run_as_non_root
from pyk8s.kubelet.slots import StartSlots
from pyk8s.kubelet.status import ContainerView, container_status, merge_conditions, pod_phase, rfc3339

__all__ = ["PodManager", "PodVolumesLike", "PodWorker", "PodsConfig", "VolumeManagerLike"]

log = logging.getLogger(__name__)

Obj = dict[str, Any]


PODS = catalog.require("", "Pod")
CONFIGMAPS = catalog.require("", "ConfigMap")
SECRETS = catalog.require("", "Secret")
SERVICES = catalog.require("", "Service")
RUNTIME_CLASSES = catalog.require("node.k8s.io", "RuntimeClass")

LABEL_POD_UID = "io.kubernetes.pod.uid"
LABEL_POD_NAME = "io.kubernetes.pod.name"
LABEL_POD_NAMESPACE = "io.kubernetes.pod.namespace"
LABEL_CONTAINER_NAME = "io.kubernetes.container.name"
LABEL_CONTAINER_HASH = "io.kubernetes.container.hash"

_MIN_GRACE_AFTER_HOOK = 2.0  # Kubernetes' minimumGracePeriodInSeconds
_KEEP_EXITED = 2  # dead incarnations kept per container: the current state and lastState
_REPLACE = {"$patch": "replace"}  # in a strategic merge patch's merge list: the list replaces the old one


class PodVolumesLike(Protocol):
    def mounts_for(self, container: Obj) -> list[cri.Mount]: ...


class VolumeManagerLike(Protocol):
    """`pyk8s.kubelet.volumes.VolumeManager`'s face, as the pod worker uses it."""

    async def setup(self, pod: Obj) -> PodVolumesLike: ...

    async def teardown(self, pod_uid: str) -> None: ...


@dataclass
class PodsConfig:
    node_name: str
    node_ip: str
    log_root: str  # per-pod log directories go under it
    cgroup_root: str = "/kubepods"  # pod cgroups go under it (tests use a root of their own)
    relist_period: float = 1.0  # the PLEG's relist: how soon an exited container is noticed
    backoff_base: float = 10.0  # CrashLoopBackOff and ImagePullBackOff: 10 s doubling …
    backoff_cap: float = 300.0  # … up to 5 min
    backoff_reset: float = 600.0  # a container that ran this long starts its back-off afresh
    error_resync: float = 1.0  # a pod whose sync failed is tried again this soon (then its back-off)
    probe_time_scale: float = 1.0  # probe periods and delays multiplied by it (shorter in tests)
    cluster_dns: str = ""  # the cluster DNS server; empty: the clusterIP of kube-system/kube-dns, if any
    cluster_domain: str = "cluster.local"
    # imagePullPolicy Always with no registry in reach (the seed busybox on an offline machine): a failed
    # pull of an image the node has falls back to it, with a Warning event. Kubernetes would not start it.
    offline_fallback: bool = True
    allocatable: Callable[[], dict[str, str]] = field(default=dict)
    # Sandbox and container starts running at once (default: one per CPU). They are CPU-bound runtime
    # work: a burst started all at once finishes all at once, late; a few at a time in arrival order has
    # the same throughput and brings most pods up much sooner.
    parallel_starts: int = 0


@dataclass
class _Backoff:
    delay: float
    until: float = 0.0


async def _done() -> bool:
    return True


def _spec_hash(c: Obj) -> str:
    """What the kubelet compares to restart a container whose definition changed (of a pod's containers
    only the image may change)."""
    return hashlib.sha256(orjson.dumps(c, option=orjson.OPT_SORT_KEYS)).hexdigest()[:16]


def _readiness_gates(spec: Obj, status: Obj) -> tuple[str, str, str]:
    """The Ready condition of a pod whose containers are ready: True only when the condition of every
    readiness gate (set by others through pods/status) is True. Kubernetes' GeneratePodReadyCondition."""
    have = {c.get("type"): c for c in status.get("conditions") or []}
    unready = []
    for gate in spec.get("readinessGates") or []:
        ctype = gate.get("conditionType", "")
        c = have.get(ctype)
        if c is None:
            unready.append(f'corresponding condition of pod readiness gate "{ctype}" does not exist.')
        elif c.get("status") != "True":
            unready.append(f'the status of pod readiness gate "{ctype}" is not "True", but {c.get("status")}')
    return ("False", "ReadinessGatesNotReady", ", ".join(unready)) if unready else ("True", "", "")


def _termination_prereqs(spec: Obj) -> dict[str, list[str]]:
    """Which containers each sidecar waits for before it is stopped: all main containers, and the sidecar
    declared after it (so sidecars stop in reverse order). Kubernetes' newTerminationOrdering."""
    mains = [c["name"] for c in spec.get("containers") or []]
    prereqs: dict[str, list[str]] = {}
    later = ""
    for c in reversed(spec.get("initContainers") or []):
        if c.get("restartPolicy") == "Always":
            prereqs[c["name"]] = mains + ([later] if later else [])
            later = c["name"]
    return prereqs


def _stable_policy(spec: Obj) -> str:
    return spec.get("restartPolicy") or "Always"


def _default_pull_policy(image: str) -> str:
    last = image.rsplit("/", 1)[-1]
    if "@" in last:
        return "IfNotPresent"
    tag = last.partition(":")[2]
    return "Always" if tag in ("", "latest") else "IfNotPresent"


def _docker_auths(secret: Obj) -> list[cri.RegistryAuth]:
    """imagePullSecrets (kubernetes.io/dockerconfigjson or dockercfg) as registry credentials."""
    data = secret.get("data") or {}
    raw = data.get(".dockerconfigjson") or data.get(".dockercfg")
    if not raw:
        return []
    try:
        parsed = orjson.loads(base64.b64decode(raw))
    except (ValueError, orjson.JSONDecodeError):
        return []
    auths = parsed.get("auths", parsed) if ".dockerconfigjson" in data else parsed
    out = []
    for server, entry in (auths or {}).items():
        if isinstance(entry, dict):
            out.append(cri.RegistryAuth(server=server, username=entry.get("username", ""),
                                        password=entry.get("password", ""), auth=entry.get("auth", ""),
                                        identity_token=entry.get("identitytoken", "")))
    return out


class PodWorker:
    """One pod's life on this node. `update(pod)` and `wake()` never block; `run()` is the task."""

    def __init__(self, manager: PodManager, pod: Obj, adopted: cri.SandboxStatus | None = None) -> None:
        self.m = manager
        self.pod = pod
        self.uid: str = pod["metadata"]["uid"]
        self.rank = next(manager.arrivals)  # start slots go to earlier pods first
        self.removed = False  # gone from the API (force deleted): kill and clean up
        self.sandbox_id = adopted.id if adopted else ""
        self.pod_ip = adopted.ip if adopted else ""
        # The sandbox died (namespaces gone after a reboot, gVisor's sandbox killed): the next sync replaces
        # it, or (`sandbox_lost`) only kills and reports the pod when it is not to be restarted.
        self.sandbox_dead = adopted is not None and adopted.state != "ready"
        self.sandbox_lost = False
        self.old_sandboxes: list[str] = []  # replaced sandboxes: their dead containers are the pod's history
        if adopted and (pod.get("spec") or {}).get("hostNetwork"):
            self.pod_ip = manager.config.node_ip
        self.volumes: PodVolumesLike | None = None
        self.waiting: dict[str, tuple[str, str]] = {}  # container → (reason, message) while not running
        self.image_ids: dict[str, str] = {}
        self.restart_backoff: dict[str, _Backoff] = {}
        self.pull_backoff: dict[str, _Backoff] = {}
        self.probers: dict[str, Prober] = {}  # container id → its probes
        self.kill_requests: dict[str, str] = {}  # container id → why (a failed liveness probe …)
        self.terminal = False
        self.done = asyncio.Event()
        self.last_status: Obj | None = None
        self._written_rv = ""  # the pod's resourceVersion when last_status was sent
        self.start_time = (pod.get("status") or {}).get("startTime") or rfc3339(time.time())
        self.deadline_failed = False
        self._deadline_timer = 0.0  # the activeDeadlineSeconds a wake-up is scheduled for
        self._acted = False  # this sync created, started or stopped a container
        self._wake = asyncio.Event()
        self._wake.set()
        self._timers: list[asyncio.TimerHandle] = []

    # --- the worker's face -------------------------------------------------------------------------

    def update(self, pod: Obj) -> None:
        self.pod = pod
        self.wake()

    def remove(self) -> None:
        self.removed = True
        self.wake()

    def sandbox_gone(self) -> None:
        """The runtime reports the sandbox not ready (the PLEG's relist)."""
        if not self.sandbox_dead and not self.sandbox_lost and not self.terminal:
            self.sandbox_dead = True
            self.wake()

    def wake(self) -> None:
        self._wake.set()

    def wake_in(self, delay: float) -> None:
        loop = asyncio.get_running_loop()
        self._timers = [t for t in self._timers if not t.cancelled() and t.when() > loop.time()]
        self._timers.append(loop.call_later(max(0.0, delay), self._wake.set))

    @property
    def key(self) -> str:
        meta = self.pod["metadata"]
        return f"{meta.get('namespace')}/{meta.get('name')}"

    async def run(self) -> None:
        backoff = self.m.config.error_resync
        try:
            while True:
                await self._wake.wait()
                self._wake.clear()
                try:
                    if await self.sync():
                        return
                    backoff = self.m.config.error_resync
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("kubelet: syncing pod %s failed", self.key)
                    self.wake_in(backoff)
                    backoff = min(self.m.config.backoff_cap, backoff * 2)
        finally:
            for t in self._timers:
                t.cancel()
            for p in self.probers.values():
                await p.stop()
            self.probers.clear()
            self.done.set()

    # --- one sync ----------------------------------------------------------------------------------

    async def sync(self) -> bool:
        """Bring the pod one step closer to its spec; True when the worker is finished."""
        meta = self.pod["metadata"]
        if self.removed or meta.get("deletionTimestamp"):
            await self._terminate()
            return True
        if self.terminal:
            return False
        spec = self.pod.get("spec") or {}
        if self.sandbox_id and not self.sandbox_dead and not self.sandbox_lost:
            # Asked at every sync, as Kubernetes' SyncPod does: a container that died with its sandbox
            # must not be restarted into it, whichever of the two the PLEG noticed first.
            self.sandbox_dead = await self._sandbox_state() != "ready"
        if self.sandbox_dead and self.sandbox_id:
            await self._sandbox_changed(spec)
        if self.sandbox_lost:
            phase = await self._write_status(await self._views(), init_pending=False)
            if phase in ("Succeeded", "Failed"):
                await self._finish()
            return False
        fresh = not self.sandbox_id  # a sandbox made by this sync holds no containers: no need to list
        # The sandbox (runtime work) and the volumes (API round trips) need nothing of each other: both at
        # once. (Kubernetes mounts volumes before it creates the sandbox; neither waits for the other here.)
        sandbox_ok, volumes_ok = await asyncio.gather(
            self._create_sandbox() if fresh else _done(),
            self._setup_volumes() if self.volumes is None else _done())
        if not sandbox_ok:
            await self._write_status(await self._views(), init_pending=True)
            return False
        if not volumes_ok:
            await self._write_status(await self._views([] if fresh else None), init_pending=True)
            return False

        views = await self._views([] if fresh else None)
        await self._handle_kill_requests(views)
        deadline = spec.get("activeDeadlineSeconds")
        if deadline is not None and not self.deadline_failed:
            left = float(deadline) - (time.time() - _parse_time(self.start_time))
            if left <= 0:
                self.deadline_failed = True
                message = "Pod was active on the node longer than the specified deadline"
                self.m.recorder.record(self.pod, NORMAL, "DeadlineExceeded", message)
                await self._kill_all(self._grace())
            elif self._deadline_timer != float(deadline):
                self._deadline_timer = float(deadline)
                self.wake_in(left)
        if self.deadline_failed:
            views = await self._views()
            await self._write_status(views, init_pending=False, failed=("DeadlineExceeded",
                                     "Pod was active on the node longer than the specified deadline"))
            await self._finish()
            return False

        policy = _stable_policy(spec)
        self._acted = False
        init_pending, init_failed = await self._sync_init(spec, views, policy)
        if not init_pending and not init_failed:
            for c in spec.get("containers") or []:
                await self._sync_container(c, views[c["name"]], policy, sidecar=False)
        if self._acted:  # the runtime changed under us: report what it has now
            views = await self._views()
        phase = await self._write_status(views, init_pending=init_pending or init_failed,
                                         init_failed=init_failed)
        if phase in ("Succeeded", "Failed") and await self._finish():
            # Sidecars stopped after a Job-style pod's containers ended: their state is reported too.
            await self._write_status(await self._views(), init_pending=init_pending or init_failed,
                                     init_failed=init_failed)
        return False

    async def _views(self, listed: list[cri.ContainerStatus] | None = None) -> dict[str, ContainerView]:
        """The runtime's incarnations of each container of the spec, newest last (`listed`: the sandbox's
        containers when the caller knows them)."""
        spec = self.pod.get("spec") or {}
        found: dict[str, list[cri.ContainerStatus]] = {}
        if listed is None:
            listed = await self.m.runtime.list_containers(self.sandbox_id) if self.sandbox_id else []
        for sid in self.old_sandboxes:
            listed = [*listed, *await self.m.runtime.list_containers(sid)]
        for c in listed:
            found.setdefault(c.name, []).append(c)
        views: dict[str, ContainerView] = {}
        for c in [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]:
            incs = sorted(found.get(c["name"], []), key=lambda s: (s.attempt, s.created_at))
            reason, message = self.waiting.get(c["name"], ("", ""))
            latest = incs[-1] if incs else None
            prober = self.probers.get(latest.id) if latest else None
            running = latest is not None and latest.state == "running"
            if running:
                reason = message = ""
            started = running and (prober.started if prober else "startupProbe" not in c)
            ready = started and (prober.ready if prober else "readinessProbe" not in c)
            views[c["name"]] = ContainerView(
                spec=c, incarnations=incs, waiting_reason=reason, waiting_message=message, ready=ready,
                started=started,
                image_id=self.image_ids.get(c["name"]) or (latest.image_id if latest else ""),
                scheme=self.m.scheme)
        # Probers of incarnations that are no longer running stop.
        running_ids = {v.latest.id for v in views.values() if v.latest and v.latest.state == "running"}
        for cid in [cid for cid in self.probers if cid not in running_ids]:
            await self.probers.pop(cid).stop()
        for v in views.values():
            latest = v.latest
            if latest and latest.state == "running" and latest.id not in self.probers \
                    and self._has_probes(v.spec):
                self._start_prober(v.spec, latest.id)
        return views

    @staticmethod
    def _has_probes(c: Obj) -> bool:
        return any(c.get(k) for k in ("livenessProbe", "readinessProbe", "startupProbe"))

    # --- sandbox and volumes -----------------------------------------------------------------------

    async def _create_sandbox(self) -> bool:
        spec = self.pod.get("spec") or {}
        meta = self.pod["metadata"]
        handler = "runc"
        rc_name = spec.get("runtimeClassName")
        if rc_name:
            rc = self.m.runtime_class(rc_name)
            if rc is None:
                self._sandbox_failed(f'RuntimeClass "{rc_name}" not found')
                return False
            handler = rc.get("handler", "")
            if handler not in self.m.runtime.handlers():
                self._sandbox_failed(f'no runtime for "{handler}" is configured')
                return False
        dns_cfg = self._dns_config(spec)
        ports = [cri.PortMapping(container_port=int(p["containerPort"]), host_port=int(p["hostPort"]),
                                 protocol=p.get("protocol", "TCP"), host_ip=p.get("hostIP", ""))
                 for c in spec.get("containers") or [] for p in c.get("ports") or [] if p.get("hostPort")]
        hostname = spec.get("hostname") or meta["name"]
        config = cri.SandboxConfig(
            pod_uid=self.uid, namespace=meta["namespace"], name=meta["name"], hostname=hostname[:63],
            runtime_handler=handler, host_network=bool(spec.get("hostNetwork")), dns=dns_cfg,
            host_aliases=[(a["ip"], list(a.get("hostnames") or [])) for a in spec.get("hostAliases") or []],
            port_mappings=ports, cgroup_parent=pod_cgroup_parent(self.pod, root=self.m.config.cgroup_root),
            share_process_namespace=bool(spec.get("shareProcessNamespace")),
            resources=pod_resources(self.pod),
            log_directory=f"{self.m.config.log_root}/{meta['namespace']}_{meta['name']}_{self.uid}",
            labels={LABEL_POD_UID: self.uid, LABEL_POD_NAME: meta["name"],
                    LABEL_POD_NAMESPACE: meta["namespace"]})
        try:
            async with self.m.start_slots.slot(self.rank):
                self.sandbox_id = await self.m.runtime.run_pod_sandbox(config)
        except Exception as e:
            self._sandbox_failed(str(e))
            return False
        self.m.sandboxes[self.sandbox_id] = self
        status = await self.m.runtime.pod_sandbox_status(self.sandbox_id)
        self.pod_ip = self.m.config.node_ip if spec.get("hostNetwork") else status.ip
        return True

    async def _sandbox_state(self) -> str:
        try:
            return (await self.m.runtime.pod_sandbox_status(self.sandbox_id)).state
        except KeyError:  # the runtime has no such sandbox (its state removed by hand)
            return "notready"

    async def _sandbox_changed(self, spec: Obj) -> None:
        """The sandbox died: its containers are killed and it is stopped. A new one is made (by this sync)
        unless the pod is not to be restarted: restartPolicy Never once containers were created, or
        OnFailure with every container succeeded. Kubernetes' computePodActions and SyncPod."""
        self.sandbox_dead = False
        views = await self._views()
        policy = _stable_policy(spec)
        to_start = [c for c in spec.get("containers") or [] if not (
            policy == "OnFailure" and (latest := views[c["name"]].latest) is not None
            and latest.state == "exited" and latest.exit_code == 0)]
        recreate = bool(to_start) and not (policy == "Never" and any(v.incarnations for v in views.values()))
        if recreate:
            self.m.recorder.record(self.pod, NORMAL, "SandboxChanged",
                                   "Pod sandbox changed, it will be killed and re-created.")
        await self._kill_all(self._grace())
        await self.m.runtime.stop_pod_sandbox(self.sandbox_id)
        if not recreate:
            self.sandbox_lost = True
            return
        # Initialisation starts again from the first init container (Kubernetes purges them).
        for c in spec.get("initContainers") or []:
            for inc in views[c["name"]].incarnations:
                with contextlib.suppress(Exception):
                    await self.m.runtime.remove_container(inc.id)
        self.m.sandboxes.pop(self.sandbox_id, None)
        self.old_sandboxes.append(self.sandbox_id)
        self.sandbox_id = self.pod_ip = ""

    def _dns_config(self, spec: Obj) -> cri.DNSConfig | None:
        """resolv.conf as the kubelet's dnsPolicy: ClusterFirst → the cluster DNS with the pod's search
        path (the host's when there is no cluster DNS, or for hostNetwork pods), Default → the host's,
        None → dnsConfig alone; dnsConfig is appended otherwise."""
        policy = spec.get("dnsPolicy") or "ClusterFirst"
        extra = spec.get("dnsConfig") or {}
        servers: list[str] = []
        searches: list[str] = []
        options: list[str] = []
        host_net = bool(spec.get("hostNetwork"))
        cluster = policy == "ClusterFirstWithHostNet" or (policy == "ClusterFirst" and not host_net)
        dns_ip = self.m.cluster_dns() if cluster else ""
        if dns_ip:
            domain = self.m.config.cluster_domain
            ns = self.pod["metadata"]["namespace"]
            servers, options = [dns_ip], ["ndots:5"]
            searches = [f"{ns}.svc.{domain}", f"svc.{domain}", domain]
        elif policy != "None" and not extra:
            return None  # the host's resolv.conf
        servers += extra.get("nameservers") or []
        searches += extra.get("searches") or []
        for o in extra.get("options") or []:
            options = [x for x in options if x.split(":")[0] != o["name"]]
            options.append(f"{o['name']}:{o['value']}" if o.get("value") else o["name"])
        return cri.DNSConfig(tuple(servers), tuple(searches), tuple(options))

    def _sandbox_failed(self, message: str) -> None:
        self.m.recorder.record(self.pod, WARNING, "FailedCreatePodSandBox",
                               f"Failed to create pod sandbox: {message}")
        self.wake_in(self.m.config.error_resync)

    async def _setup_volumes(self) -> bool:
        if self.m.volumes is None:
            self.volumes = _NoVolumes()
            return True
        try:
            self.volumes = await self.m.volumes.setup(self.pod)
        except Exception as e:
            self.m.recorder.record(self.pod, WARNING, getattr(e, "reason", "FailedMount"), str(e))
            self.wake_in(self.m.config.error_resync)
            return False
        return True

    # --- init containers and containers ------------------------------------------------------------

    async def _sync_init(self, spec: Obj, views: dict[str, ContainerView], policy: str) -> tuple[bool, bool]:
        """(initialisation still pending, an init container failed for good)."""
        for c in spec.get("initContainers") or []:
            view = views[c["name"]]
            latest = view.latest
            if c.get("restartPolicy") == "Always":  # a sidecar: keeps running beside the containers
                await self._sync_container(c, view, "Always", sidecar=True)
                latest = (await self._views())[c["name"]].latest
                prober = self.probers.get(latest.id) if latest else None
                if latest is None or latest.state != "running" or (prober is not None and not prober.started):
                    return True, False
                continue
            if latest is None:
                await self._start(c, 0)
                return True, False
            if latest.state in ("running", "created"):
                return True, False
            if latest.state == "unknown":
                await self._sync_container(c, view, "OnFailure", sidecar=False)
                return True, False
            if latest.exit_code == 0:
                continue
            if policy == "Never":
                return False, True
            await self._sync_container(c, view, "OnFailure", sidecar=False)
            return True, False
        return False, False

    async def _sync_container(self, c: Obj, view: ContainerView, policy: str, *, sidecar: bool) -> None:
        latest = view.latest
        if latest is None:
            await self._start(c, 0)
            return
        if latest.state in ("running", "created"):
            return
        if latest.state == "unknown":  # its monitor is gone: stop it; the runtime records it as killed
            self._acted = True
            await self.m.runtime.stop_container(latest.id, 0)
            self.wake_in(self.m.config.error_resync)
            return
        if policy == "Never" or (policy == "OnFailure" and latest.exit_code == 0):
            return
        name = c["name"]
        meta = self.pod["metadata"]
        b = self.restart_backoff.get(name)
        now = time.time()
        ran = (latest.finished_at - latest.started_at) if latest.started_at else 0.0
        if b is None or ran >= self.m.config.backoff_reset:
            b = self.restart_backoff[name] = _Backoff(0.0)
        wait = latest.finished_at + b.delay - now
        if wait > 0:
            pod_ref = f"{meta['name']}_{meta['namespace']}({self.uid})"
            delay = int(b.delay) if b.delay >= 1 else b.delay
            self.waiting[name] = ("CrashLoopBackOff", f"back-off {delay}s restarting failed container={name} "
                                                      f"pod={pod_ref}")
            self.m.recorder.record(self.pod, WARNING, "BackOff",
                                   f"Back-off restarting failed container {name} in pod {pod_ref}")
            self.wake_in(wait)
            return
        b.delay = min(self.m.config.backoff_cap, b.delay * 2 if b.delay else self.m.config.backoff_base)
        await self._prune(view)
        await self._start(c, latest.attempt + 1)

    async def _prune(self, view: ContainerView) -> None:
        """Dead incarnations beyond the newest few go (their logs with them), as the container GC does."""
        dead = [c for c in view.incarnations if c.state == "exited"]
        for c in dead[:-(_KEEP_EXITED - 1)] if len(dead) >= _KEEP_EXITED else []:
            with contextlib.suppress(Exception):
                await self.m.runtime.remove_container(c.id)

    async def _start(self, c: Obj, attempt: int) -> None:
        """Image, config, create, start, postStart: each failure becomes the container's waiting reason."""
        name = c["name"]
        self.waiting.pop(name, None)
        image = await self._ensure_image(c)
        if image is None:
            return
        self.image_ids[name] = image.repo_digests[0] if image.repo_digests else image.id
        try:
            config = await self._container_config(c, image, attempt)
        except EnvError as e:
            self.waiting[name] = ("CreateContainerConfigError", str(e))
            self.m.recorder.record(self.pod, WARNING, "Failed", f"Error: {e}")
            self.wake_in(self.m.config.error_resync)
            return
        self._acted = True
        async with self.m.start_slots.slot(self.rank):
            try:
                cid = await self.m.runtime.create_container(self.sandbox_id, config)
            except Exception as e:
                self.waiting[name] = ("CreateContainerError", str(e))
                self.m.recorder.record(self.pod, WARNING, "Failed", f"Error: {e}")
                self.wake_in(self.m.config.error_resync)
                return
            self.m.recorder.record(self.pod, NORMAL, "Created", f"Created container: {name}")
            try:
                await self.m.runtime.start_container(cid)
            except Exception as e:  # the runtime records the container as exited (ContainerCannotRun)
                self.m.recorder.record(self.pod, WARNING, "Failed", f"Error: {e}")
                return
        self.m.recorder.record(self.pod, NORMAL, "Started", f"Started container {name}")
        if self._has_probes(c):
            self._start_prober(c, cid)
        if (c.get("lifecycle") or {}).get("postStart"):
            err = await run_hook("postStart", runtime=self.m.runtime, container=c, container_id=cid,
                                 pod_ip=self.pod_ip, seconds=self._grace())
            if err is not None:
                self.m.recorder.record(self.pod, WARNING, "FailedPostStartHook", err)
                self.m.recorder.record(self.pod, NORMAL, "Killing",
                                       f"FailedPostStartHook: Stopping container {name}")
                await self.m.runtime.stop_container(cid, self._grace())

    async def _ensure_image(self, c: Obj) -> cri.Image | None:
        name, ref = c["name"], c.get("image", "")
        policy = c.get("imagePullPolicy") or _default_pull_policy(ref)
        present = await self.m.images.image_status(ref)
        if policy == "Never" or (present is not None and policy == "IfNotPresent"):
            if present is None:
                msg = f'Container image "{ref}" is not present with pull policy of Never'
                self.waiting[name] = ("ErrImageNeverPull", msg)
                self.m.recorder.record(self.pod, WARNING, "ErrImageNeverPull", msg)
                return None
            self.m.recorder.record(self.pod, NORMAL, "Pulled",
                                   f'Container image "{ref}" already present on machine')
            return present
        b = self.pull_backoff.get(ref)
        now = time.time()
        if b is not None and now < b.until:
            self.waiting[name] = ("ImagePullBackOff", f'Back-off pulling image "{ref}"')
            self.m.recorder.record(self.pod, NORMAL, "BackOff", f'Back-off pulling image "{ref}"')
            self.m.recorder.record(self.pod, WARNING, "Failed", "Error: ImagePullBackOff")
            self.wake_in(b.until - now)
            return None
        self.m.recorder.record(self.pod, NORMAL, "Pulling", f'Pulling image "{ref}"')
        began = time.monotonic()
        try:
            image = await self.m.images.pull_image(ref, await self._pull_auth())
        except cri.ImagePullError as e:
            if present is not None and self.m.config.offline_fallback:
                self.m.recorder.record(self.pod, WARNING, "Failed", f'Failed to pull image "{ref}": {e}; '
                                       "using the image present on the node")
                return present
            delay = min(self.m.config.backoff_cap, b.delay * 2) if b else self.m.config.backoff_base
            self.pull_backoff[ref] = _Backoff(delay, time.time() + delay)
            self.waiting[name] = (e.reason, str(e))
            self.m.recorder.record(self.pod, WARNING, "Failed", f'Failed to pull image "{ref}": {e}')
            self.m.recorder.record(self.pod, WARNING, "Failed", f"Error: {e.reason}")
            # The next sync shows ImagePullBackOff; the one after the back-off pulls again.
            self.wake_in(min(self.m.config.error_resync, delay))
            return None
        took = time.monotonic() - began
        self.pull_backoff.pop(ref, None)
        self.m.recorder.record(self.pod, NORMAL, "Pulled",
                               f'Successfully pulled image "{ref}" in {took:.3f}s ({took:.3f}s including '
                               f"waiting). Image size: {image.size} bytes.")
        return image

    async def _pull_auth(self) -> list[cri.RegistryAuth] | None:
        refs = (self.pod.get("spec") or {}).get("imagePullSecrets") or []
        out: list[cri.RegistryAuth] = []
        for ref in refs:
            secret = await self.m.get_object(SECRETS, ref.get("name", ""), self.pod["metadata"]["namespace"])
            if secret is not None:
                out.extend(_docker_auths(secret))
        return out or None

    async def _container_config(self, c: Obj, image: cri.Image, attempt: int) -> cri.ContainerConfig:
        ns = self.pod["metadata"]["namespace"]
        pod = self._pod_with_ips()
        # The node's allocatable (host readings) only matters to a resourceFieldRef: read it only then.
        wants_node = any((e.get("valueFrom") or {}).get("resourceFieldRef") for e in c.get("env") or [])
        env = await container_env(pod, c, allocatable=self.m.config.allocatable() if wants_node else {},
                                  service_env=self.m.service_env(self.pod),
                                  configmap=lambda n: self.m.get_object(CONFIGMAPS, n, ns),
                                  secret=lambda n: self.m.get_object(SECRETS, n, ns))
        err = verify_run_as_non_root(self.pod, c, image.config.user)
        if err is not None:
            raise EnvError(err)
        env = merge_image_env(image.config, env)
        argv = container_argv(c, image.config, env)
        security = security_config(self.pod, c)
        if security.run_as_user is None and image.config.user:
            user, _, group = image.config.user.partition(":")
            if user.isdigit():
                security.run_as_user = int(user)
                if group.isdigit() and security.run_as_group is None:
                    security.run_as_group = int(group)
        return cri.ContainerConfig(
            name=c["name"], image=image.id, args=argv, env=env,
            working_dir=c.get("workingDir") or image.config.working_dir,
            mounts=self.volumes.mounts_for(c) if self.volumes else [],
            resources=container_resources(c), security=security, attempt=attempt,
            tty=bool(c.get("tty")), stdin=bool(c.get("stdin")), stdin_once=bool(c.get("stdinOnce")),
            log_path=f"{c['name']}/{attempt}.log",
            labels={LABEL_POD_UID: self.uid, LABEL_CONTAINER_NAME: c["name"],
                    LABEL_CONTAINER_HASH: _spec_hash(c),
                    LABEL_POD_NAME: self.pod["metadata"]["name"], LABEL_POD_NAMESPACE: ns})

    def _pod_with_ips(self) -> Obj:
        """The pod as fieldRefs see it: status.podIP and hostIP are known before the API has them."""
        status = dict(self.pod.get("status") or {})
        status["podIP"] = self.pod_ip
        status["podIPs"] = [{"ip": self.pod_ip}] if self.pod_ip else []
        status["hostIP"] = self.m.config.node_ip
        status["hostIPs"] = [{"ip": self.m.config.node_ip}]
        return {**self.pod, "status": status}

    # --- probes ------------------------------------------------------------------------------------

    def _start_prober(self, c: Obj, cid: str) -> None:
        name = c["name"]

        def on_result(kind: str, ok: bool) -> None:
            if not ok and kind in (LIVENESS, STARTUP):
                self.kill_requests[cid] = f"Container {name} failed {kind.lower()} probe, will be restarted"
            self.wake()

        def on_failure(kind: str, output: str) -> None:
            self.m.recorder.record(self.pod, WARNING, "Unhealthy", f"{kind} probe failed: {output}".rstrip())

        prober = Prober(runtime=self.m.runtime, container=c, container_id=cid, pod_ip=self.pod_ip,
                        on_result=on_result, on_failure=on_failure,
                        time_scale=self.m.config.probe_time_scale)
        self.probers[cid] = prober
        prober.start()

    async def _handle_kill_requests(self, views: dict[str, ContainerView]) -> None:
        for v in views.values():
            latest = v.latest
            if latest is not None and latest.state == "running" and latest.id not in self.kill_requests:
                wanted = latest.labels.get(LABEL_CONTAINER_HASH)
                if wanted and wanted != _spec_hash(v.spec):
                    self.kill_requests[latest.id] = (f"Container {v.spec['name']} definition changed, "
                                                     "will be restarted")
                    self.restart_backoff.pop(v.spec["name"], None)  # a new definition starts at once
            if latest is None or latest.id not in self.kill_requests:
                continue
            why = self.kill_requests.pop(latest.id)
            if latest.state == "running":
                self.m.recorder.record(self.pod, NORMAL, "Killing", why)
                prober = self.probers.pop(latest.id, None)
                if prober is not None:
                    await prober.stop()
                await self.m.runtime.stop_container(latest.id, self._grace())
        if self.kill_requests:
            views.update(await self._views())

    # --- status ------------------------------------------------------------------------------------

    async def _write_status(self, views: dict[str, ContainerView], *, init_pending: bool,
                            init_failed: bool = False, failed: tuple[str, str] | None = None) -> str:
        spec = self.pod.get("spec") or {}
        current = self.pod.get("status") or {}
        init_names = [c["name"] for c in spec.get("initContainers") or []]
        names = [c["name"] for c in spec.get("containers") or []]
        init_statuses = [container_status(views[n]) for n in init_names]
        statuses = [container_status(views[n]) for n in names]
        if init_pending:
            for s in statuses:
                if "waiting" in s["state"] and s["state"]["waiting"]["reason"] == "ContainerCreating" \
                        and self.sandbox_id:
                    s["state"]["waiting"]["reason"] = "PodInitializing"
        phase = "Failed" if failed else pod_phase(_stable_policy(spec), init_pending, statuses, init_failed)
        terminal = phase in ("Succeeded", "Failed")
        # Sidecars (restartable init containers) count towards readiness too, as since Kubernetes 1.29.
        unready = [c["name"] for c, st in zip(spec.get("initContainers") or [], init_statuses, strict=True)
                   if c.get("restartPolicy") == "Always" and not st["ready"]]
        unready += [n for n, st in zip(names, statuses, strict=True) if not st["ready"]]
        incomplete = [n for n in init_names if not views[n].latest or ((
            views[n].latest.state != "exited" or views[n].latest.exit_code != 0)  # type: ignore[union-attr]
            and views[n].spec.get("restartPolicy") != "Always")]
        completed = "PodCompleted" if terminal else ""
        sandbox_ok = bool(self.sandbox_id) and not terminal and not self.sandbox_lost
        ready_cond = ("True", "", "") if not unready and not terminal else (
            "False", completed or "ContainersNotReady",
            "" if completed else f"containers with unready status: [{' '.join(unready)}]")
        wanted = {
            "PodReadyToStartContainers": ("True" if sandbox_ok else "False", "", ""),
            "Initialized": ("True", completed, "") if not init_pending or not incomplete else (
                "False", "ContainersNotInitialized",
                f"containers with incomplete status: [{' '.join(incomplete)}]"),
            "ContainersReady": ready_cond,
            "Ready": _readiness_gates(spec, current) if ready_cond[0] == "True" else ready_cond,
        }
        if not init_pending and not init_failed:
            wanted["Initialized"] = ("True", completed, "")
        now = rfc3339(time.time()) or ""
        drifted = self._drifted(current)
        base = current if drifted else self.last_status or current
        # Only the kubelet's own conditions are sent: the strategic merge patch merges conditions by type,
        # so those others set (PodScheduled, readiness gates written through pods/status) stay as they are
        # even when our copy of the pod is older than theirs. An empty reason or message is sent as null:
        # a merge would keep the old one otherwise.
        conditions = [dict(c) for c in merge_conditions(base.get("conditions") or current.get("conditions")
                                                        or [], wanted, now) if c.get("type") in wanted]
        for c in conditions:
            c.setdefault("reason", None)
            c.setdefault("message", None)
        status: Obj = {
            "phase": phase,
            "conditions": conditions,
            "hostIP": self.m.config.node_ip,
            "hostIPs": [{"ip": self.m.config.node_ip}, _REPLACE],
            "startTime": self.start_time,
            "qosClass": qos_class(self.pod),
            "containerStatuses": statuses,
        }
        if self.pod_ip:
            status["podIP"] = self.pod_ip
            status["podIPs"] = [{"ip": self.pod_ip}, _REPLACE]  # a new sandbox's IP replaces the old one
        if init_statuses:
            status["initContainerStatuses"] = init_statuses
        if failed:
            status["reason"], status["message"] = failed
        if drifted or status != self.last_status:
            meta = self.pod["metadata"]
            try:
                body = {"metadata": {"uid": self.uid}, "status": status}
                await self.m.client.patch(PODS, meta["name"], body, "strategic", meta["namespace"],
                                          subresource="status", decode=False)  # the watch brings the pod
            except StatusError as e:
                if e.code not in (404, 409):
                    raise
            self.last_status = status
            self._written_rv = meta.get("resourceVersion") or ""
        return phase

    def _drifted(self, current: Obj) -> bool:
        """The API holds other values of our conditions than we last sent (the node lifecycle controller
        marks a silent node's pods not Ready): they are sent again, as Kubernetes' status manager reconciles.
        A pod not newer than our write has not seen it yet."""
        if self.last_status is None or self.pod["metadata"].get("resourceVersion") == self._written_rv:
            return False
        sent = {c["type"]: c["status"] for c in self.last_status["conditions"]}
        return any(c.get("status") != sent[c["type"]] for c in current.get("conditions") or []
                   if c.get("type") in sent)

    # --- endings -----------------------------------------------------------------------------------

    def _grace(self) -> float:
        meta, spec = self.pod["metadata"], self.pod.get("spec") or {}
        grace = meta.get("deletionGracePeriodSeconds")
        if grace is None:
            grace = spec.get("terminationGracePeriodSeconds", 30)
        return float(grace)

    async def _kill_all(self, grace: float) -> int:
        """preStop hooks, then SIGTERM and SIGKILL after what is left of the grace period; how many
        containers were stopped. Sidecars (init containers with restartPolicy Always) stop after the main
        containers, in reverse order of declaration, each waiting its turn within what is left of the grace
        period (Kubernetes' terminationOrdering)."""
        if not self.sandbox_id:
            return 0
        spec = self.pod.get("spec") or {}
        specs = {c["name"]: c for c in [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]}
        listed = await self.m.runtime.list_containers(self.sandbox_id)
        running = [c for c in listed if c.state == "running"]
        # Containers whose monitor is gone cannot be signalled gracefully: stopped at once, so that the
        # runtime records their end.
        for c in listed:
            if c.state == "unknown":
                await self.m.runtime.stop_container(c.id, 0)
        stopped = {c.name: asyncio.Event() for c in running}
        prereqs = _termination_prereqs(spec)

        async def kill(c: cri.ContainerStatus) -> None:
            began = time.monotonic()
            cspec = specs.get(c.name, {"name": c.name})
            self.m.recorder.record(self.pod, NORMAL, "Killing", f"Stopping container {c.name}")
            left = grace
            try:
                if grace > 0 and (cspec.get("lifecycle") or {}).get("preStop"):
                    try:
                        err = await asyncio.wait_for(
                            run_hook("preStop", runtime=self.m.runtime, container=cspec, container_id=c.id,
                                     pod_ip=self.pod_ip, seconds=grace), grace)
                    except TimeoutError:
                        err = f"PreStopHook for Container \"{c.name}\" did not complete in {grace:g}s"
                    if err is not None:
                        self.m.recorder.record(self.pod, WARNING, "FailedPreStopHook", err)
                    left = max(_MIN_GRACE_AFTER_HOOK, grace - (time.monotonic() - began))
                turn = [stopped[n].wait() for n in prereqs.get(c.name, []) if n in stopped]
                if turn and left > 0:
                    waited = time.monotonic()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(asyncio.gather(*turn), left)
                    left = max(_MIN_GRACE_AFTER_HOOK, left - (time.monotonic() - waited))
                prober = self.probers.pop(c.id, None)
                if prober is not None:
                    await prober.stop()
                await self.m.runtime.stop_container(c.id, left)
            finally:
                stopped[c.name].set()

        await asyncio.gather(*(kill(c) for c in running))
        return len(running)

    async def _finish(self) -> bool:
        """A pod that reached Succeeded or Failed: what still runs (sidecars) stops, the sandbox too. True
        when containers were stopped (their end is then to be reported)."""
        if self.terminal:
            return False
        self.terminal = True
        killed = await self._kill_all(self._grace())
        if self.sandbox_id:
            await self.m.runtime.stop_pod_sandbox(self.sandbox_id)
        return killed > 0

    async def _terminate(self) -> None:
        """Deleted: stop everything gracefully, clean up, then confirm the deletion to the API."""
        grace = 0.0 if self.removed and not self.pod["metadata"].get("deletionTimestamp") else self._grace()
        await self._kill_all(grace)
        for sid in self.old_sandboxes:
            await self.m.remove_sandbox(sid)
        await self.m.cleanup_sandbox(self.uid, self.sandbox_id)
        if self.removed:
            return
        meta = self.pod["metadata"]
        with contextlib.suppress(StatusError):  # gone already, or a new pod of the same name
            await self.m.client.delete(PODS, meta["name"], meta["namespace"], grace_period_seconds=0,
                                       preconditions={"uid": self.uid})


class _NoVolumes:
    def mounts_for(self, container: Obj) -> list[cri.Mount]:
        return []


def _parse_time(value: str | None) -> float:
    if not value:
        return time.time()
    from datetime import UTC, datetime
    return datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()


class PodManager:
    """The pods bound to this node: an informer, a worker per pod, the PLEG relist, adoption and
    orphan cleanup after a restart. `await run()` until cancelled."""

    def __init__(self, client: Client, config: PodsConfig, *, runtime: cri.RuntimeService,
                 images: cri.ImageService, volumes: VolumeManagerLike | None,
                 recorder: EventRecorder | None = None) -> None:
        self.client = client
        self.config = config
        self.runtime = runtime
        self.images = images
        self.volumes = volumes
        self.recorder = recorder or EventRecorder(client, "kubelet", config.node_name)
        self.scheme = runtime.version().partition("://")[0] or "runc"
        self.start_slots = StartSlots(config.parallel_starts or os.cpu_count() or 2)
        self.arrivals = itertools.count()
        self.informers = SharedInformerFactory(client)
        self.pods = self.informers.informer(PODS, field_selector=f"spec.nodeName={config.node_name}")
        self.runtime_classes = self.informers.informer(RUNTIME_CLASSES)
        self.services = self.informers.informer(SERVICES)
        self.workers: dict[str, PodWorker] = {}  # pod uid → worker
        self.sandboxes: dict[str, PodWorker] = {}  # sandbox id → worker
        self._found: dict[str, cri.SandboxStatus] = {}  # pod uid → a sandbox found at start
        self._tasks: set[asyncio.Task[None]] = set()
        self.synced = asyncio.Event()
        self.pods.add_handler(self._on_add, self._on_update, self._on_delete)

    # --- events ------------------------------------------------------------------------------------

    def _on_add(self, pod: Obj) -> None:
        uid = pod["metadata"]["uid"]
        worker = self.workers.get(uid)
        if worker is not None:
            worker.update(pod)
            return
        status = pod.get("status") or {}
        if status.get("phase") in ("Succeeded", "Failed") and uid not in self._found \
                and not pod["metadata"].get("deletionTimestamp"):
            return  # finished before we (re)started: nothing of it runs here
        worker = PodWorker(self, pod, self._found.pop(uid, None))
        self.workers[uid] = worker
        if worker.sandbox_id:
            self.sandboxes[worker.sandbox_id] = worker
        task = asyncio.create_task(self._run_worker(worker), name=f"pod {worker.key}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _on_update(self, old: Obj, new: Obj) -> None:
        if old["metadata"].get("uid") != new["metadata"].get("uid"):
            self._on_delete(old)
        self._on_add(new)

    def _on_delete(self, pod: Obj | DeletedFinalStateUnknown) -> None:
        obj = pod.obj if isinstance(pod, DeletedFinalStateUnknown) else pod
        worker = self.workers.get(obj["metadata"].get("uid", ""))
        if worker is not None:
            worker.remove()

    async def _run_worker(self, worker: PodWorker) -> None:
        try:
            await worker.run()
        finally:
            if self.workers.get(worker.uid) is worker:
                del self.workers[worker.uid]
            self.sandboxes.pop(worker.sandbox_id, None)

    # --- helpers for workers -----------------------------------------------------------------------

    def cluster_dns(self) -> str:
        if self.config.cluster_dns:
            return self.config.cluster_dns
        svc = self.services.lister.get_by_key("kube-system/kube-dns")
        ip = str(((svc or {}).get("spec") or {}).get("clusterIP") or "")
        return "" if ip == "None" else ip

    def service_env(self, pod: Obj) -> dict[str, str]:
        """The master service always; the pod's namespace's services unless enableServiceLinks is false."""
        ns = pod["metadata"]["namespace"]
        wanted = [s for s in self.services.lister.list()
                  if s["metadata"].get("namespace") == "default" and s["metadata"]["name"] == "kubernetes"]
        if (pod.get("spec") or {}).get("enableServiceLinks", True):
            # A service of the pod's namespace shadows the master service's variables of the same name.
            wanted += [s for s in self.services.lister.list() if s["metadata"].get("namespace") == ns]
        return service_env(wanted)

    def runtime_class(self, name: str) -> Obj | None:
        return self.runtime_classes.lister.get(name)

    async def get_object(self, info: ResourceInfo, name: str, namespace: str) -> Obj | None:
        try:
            return await self.client.get(info, name, namespace)
        except StatusError as e:
            if e.code == 404:
                return None
            raise

    async def remove_sandbox(self, sandbox_id: str) -> None:
        await self.runtime.stop_pod_sandbox(sandbox_id)
        for c in await self.runtime.list_containers(sandbox_id):
            with contextlib.suppress(Exception):
                await self.runtime.remove_container(c.id)
        await self.runtime.remove_pod_sandbox(sandbox_id)
        self.sandboxes.pop(sandbox_id, None)

    async def cleanup_sandbox(self, uid: str, sandbox_id: str) -> None:
        if sandbox_id:
            await self.remove_sandbox(sandbox_id)
        if self.volumes is not None:
            await self.volumes.teardown(uid)

    # --- running -----------------------------------------------------------------------------------

    async def run(self) -> None:
        found = await self.runtime.list_pod_sandboxes()
        extra: list[cri.SandboxStatus] = []
        for s in sorted(found, key=lambda s: s.created_at):
            if s.pod_uid in self._found:
                extra.append(self._found[s.pod_uid])  # an older sandbox of the same pod
            self._found[s.pod_uid] = s
        self.informers.start()
        relist = asyncio.create_task(self._relist(), name="kubelet pleg")
        try:
            await self.informers.wait_for_sync()
            # Sandboxes of pods the API no longer has (deleted while we were away), and stale extras.
            orphans = extra + list(self._found.values())
            self._found.clear()
            for s in orphans:
                log.info("kubelet: removing sandbox %s of pod %s/%s (no such pod)", s.id, s.namespace, s.name)
                try:
                    await self.cleanup_sandbox(s.pod_uid, s.id)
                except Exception:
                    log.exception("kubelet: removing orphan sandbox %s failed", s.id)
            self.synced.set()
            await asyncio.Event().wait()
        finally:
            relist.cancel()
            tasks = list(self._tasks)
            for t in tasks:
                t.cancel()
            await asyncio.gather(relist, *tasks, return_exceptions=True)
            await self.informers.stop()

    async def _relist(self) -> None:
        """Kubernetes' generic PLEG: one runtime listing per period, workers woken for what changed
        (containers that changed state, sandboxes that are no longer ready)."""
        seen: dict[str, tuple[str, str, float]] = {}
        while True:
            await asyncio.sleep(self.config.relist_period)
            try:
                containers = await self.runtime.list_containers()
                sandboxes = await self.runtime.list_pod_sandboxes()
            except Exception as e:
                log.warning("kubelet: relisting containers failed: %s", e)
                continue
            for s in sandboxes:
                owner = self.sandboxes.get(s.id)
                if s.state != "ready" and owner is not None and owner.sandbox_id == s.id:
                    owner.sandbox_gone()
            now = {c.id: (c.sandbox_id, c.state, c.finished_at) for c in containers}
            changed = {v[0] for k, v in now.items() if seen.get(k) != v}
            changed |= {v[0] for k, v in seen.items() if k not in now}
            seen = now
            for sandbox_id in changed:
                worker = self.sandboxes.get(sandbox_id)
                if worker is not None:
                    worker.wake()
