"""The controller manager: one process's shared informers and the controllers built on them.

As kube-controller-manager: every controller is a factory in REGISTRY, started with a shared
`ControllerContext` (client, shared informers, options, event recorders). Factories run first, so each
controller asks the factory for the informers it needs; the manager then starts them all, waits for their
first list, and runs the controllers. With leader election only the holder of the Lease
`kube-system/kube-controller-manager` runs controllers; when it loses the Lease its controllers stop and
their event handlers are removed, so two managers never act at once. The informers stay: they may serve
the scheduler of the same process too (one watch per resource), and keep the cache current for the next
term. Whoever created the informer factory stops it.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Protocol

from pyk8s.client.client import Client
from pyk8s.client.events import EventRecorder
from pyk8s.client.informer import HANDLER_OWNER, SharedInformerFactory
from pyk8s.client.leader import LeaderElectionConfig, LeaderElector
from pyk8s.util.tasks import cancel_and_wait

__all__ = ["REGISTRY", "ControllerContext", "ControllerManager", "ControllerOptions", "Runnable",
           "enabled_controllers", "lazy"]

log = logging.getLogger(__name__)

LEASE_NAME = "kube-controller-manager"


class Runnable(Protocol):
    async def run(self) -> None:
        """Run until cancelled."""


@dataclass
class ControllerOptions:
    """Server flags that reach controllers (kube-controller-manager's flag names in comments)."""

    node_monitor_grace_period: float = 40.0  # --node-monitor-grace-period
    default_toleration_seconds: int = 300  # --default-not-ready/unreachable-toleration-seconds
    workers: int = 5  # --concurrent-*-syncs
    cluster_cidr: str = "10.42.0.0/16"  # --cluster-cidr (node IPAM)
    node_cidr_mask_size: int = 24  # --node-cidr-mask-size
    terminated_pod_gc_threshold: int = 12500  # --terminated-pod-gc-threshold
    pod_gc_quarantine: float = 40.0  # podgc's quarantine before deleting pods of a missing node
    node_startup_grace_period: float = 60.0  # --node-startup-grace-period
    node_monitor_period: float = 5.0  # --node-monitor-period
    ca_cert_pem: bytes = b""  # --cluster-signing-cert-file: csrsigning signs with this CA (PEM)
    ca_key_pem: bytes = b""  # --cluster-signing-key-file


@dataclass
class ControllerContext:
    client: Client
    informers: SharedInformerFactory
    options: ControllerOptions = field(default_factory=ControllerOptions)
    _recorders: dict[str, EventRecorder] = field(default_factory=dict, repr=False)

    def recorder(self, component: str) -> EventRecorder:
        """One EventRecorder per component name (the Event's `source.component`)."""
        rec = self._recorders.get(component)
        if rec is None:
            rec = self._recorders[component] = EventRecorder(self.client, component)
        return rec

    async def close_recorders(self) -> None:
        for rec in self._recorders.values():
            await rec.close()
        self._recorders.clear()


def lazy(module: str, factory: str) -> Callable[[ControllerContext], Runnable]:
    """A factory imported when called, so controller modules may import this one without a cycle."""
    def make(ctx: ControllerContext) -> Runnable:
        fn: Callable[[ControllerContext], Runnable] = getattr(importlib.import_module(module), factory)
        return fn(ctx)
    return make


# Name → factory (kube-controller-manager's controller names). Each controller adds one line.
REGISTRY: dict[str, Callable[[ControllerContext], Runnable]] = {
    "replicaset": lazy("pyk8s.controllers.replicaset", "new_replicaset_controller"),
    "replicationcontroller": lazy("pyk8s.controllers.replicaset", "new_replication_controller"),
    "deployment": lazy("pyk8s.controllers.deployment", "new_deployment_controller"),
    "csrapproving": lazy("pyk8s.controllers.certificates", "new_csr_approver"),
    "csrsigning": lazy("pyk8s.controllers.certificates", "new_csr_signer"),
    "job": lazy("pyk8s.controllers.job", "new_job_controller"),
    "daemonset": lazy("pyk8s.controllers.daemonset", "new_daemonset_controller"),
    "statefulset": lazy("pyk8s.controllers.statefulset", "new_statefulset_controller"),
    "cronjob": lazy("pyk8s.controllers.cronjob", "new_cronjob_controller"),
    "endpoint": lazy("pyk8s.controllers.endpoints", "EndpointsController"),
    "endpointslice": lazy("pyk8s.controllers.endpointslice", "EndpointSliceController"),
    "namespace": lazy("pyk8s.controllers.namespace", "NamespaceController"),
    "garbagecollector": lazy("pyk8s.controllers.garbagecollector", "GarbageCollector"),
    "serviceaccount": lazy("pyk8s.controllers.serviceaccount", "ServiceAccountsController"),
    "root-ca-cert-publisher": lazy("pyk8s.controllers.rootcacert", "RootCACertPublisher"),
    "persistentvolume-binder": lazy("pyk8s.controllers.pvbinder", "PersistentVolumeBinder"),
    "podgc": lazy("pyk8s.controllers.podgc", "PodGCController"),
    "ttl-after-finished": lazy("pyk8s.controllers.ttlafterfinished", "TTLAfterFinishedController"),
    "disruption": lazy("pyk8s.controllers.disruption", "DisruptionController"),
    "nodelifecycle": lazy("pyk8s.controllers.nodelifecycle", "NodeLifecycleController"),
    "nodeipam": lazy("pyk8s.controllers.nodeipam", "NodeIPAMController"),
    "clusterrole-aggregation": lazy("pyk8s.controllers.clusterroleaggregation",
                                    "ClusterRoleAggregationController"),
}


def enabled_controllers(enabled: Iterable[str]) -> list[str]:
    """kube-controller-manager's --controllers: `*` is every controller, `-name` disables one, `name`
    enables one."""
    names = list(enabled)
    everything = "*" in names
    chosen = [n for n in REGISTRY if (everything or n in names) and f"-{n}" not in names]
    unknown = [n for n in names if n not in ("*",) and n.lstrip("-") not in REGISTRY]
    if unknown:
        raise ValueError(f"unknown controllers: {', '.join(unknown)}")
    return chosen


class ControllerManager:
    def __init__(self, ctx: ControllerContext, enabled: Iterable[str] = ("*",),
                 leader_election: bool = True, election: LeaderElectionConfig | None = None) -> None:
        self.ctx = ctx
        self.names = enabled_controllers(enabled)
        self.leader_election = leader_election
        self.election = election or LeaderElectionConfig(name=LEASE_NAME)
        self.controllers: dict[str, Runnable] = {}
        self.running = asyncio.Event()  # set while the controllers run (for tests and health)

    async def run(self) -> None:
        """Run until cancelled. With leader election, campaign again after each lost term."""
        if not self.leader_election:
            await self._run_controllers()
            return
        while True:
            elector = LeaderElector(self.ctx.client, self.election, on_started_leading=self._run_controllers)
            await elector.run()
            log.warning("controller manager: leadership lost; controllers stopped, campaigning again")

    async def _run_controllers(self) -> None:
        ctx = self.ctx
        # Every handler this term's controllers add, now or from their tasks, belongs to the term.
        term = object()
        HANDLER_OWNER.set(term)
        self.controllers = {name: REGISTRY[name](ctx) for name in self.names}
        ctx.informers.start()
        tasks: list[asyncio.Task[None]] = []
        try:
            await ctx.informers.wait_for_sync()
            tasks = [asyncio.create_task(c.run(), name=f"controller {n}")
                     for n, c in self.controllers.items()]
            self.running.set()
            log.info("controller manager: started %s", ", ".join(self.controllers))
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
            for t in done:
                if not t.cancelled() and t.exception() is not None:
                    log.error("controller %s stopped", t.get_name(), exc_info=t.exception())
        finally:
            try:
                await cancel_and_wait(tasks)
            finally:
                # Cleared once nothing of the term can act: no controller task, no handler.
                ctx.informers.remove_handlers(term)
                self.running.clear()
            await ctx.close_recorders()
