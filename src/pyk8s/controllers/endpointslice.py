"""EndpointSlices from Service selectors and pod readiness (Kubernetes' endpointslice controller).

For a Service with a selector, slices labelled `kubernetes.io/service-name` and
`endpointslice.kubernetes.io/managed-by: endpointslice-controller.k8s.io`, owned by the Service, hold one
endpoint per selected pod with an IP: its address, conditions (ready = serving and not terminating; serving
= the pod's Ready condition; terminating = being deleted; with `publishNotReadyAddresses` every endpoint is
ready), nodeName, targetRef and hostname. Terminating pods stay in slices (marked so), as in Kubernetes.
Endpoints that resolve to the same port set share slices of at most `max_endpoints_per_slice` (100);
addressType IPv4. Slices are read live before each change, so a lagging cache never makes duplicates;
those of other managers and Services without selectors are left alone.
"""

from __future__ import annotations

import logging
from typing import Any

from pyk8s.api.catalog import require
from pyk8s.api.errors import StatusError
from pyk8s.api.pods import pod_ready
from pyk8s.client.cache import NODE_NAME_INDEX, DeletedFinalStateUnknown, node_name_index, split_key
from pyk8s.client.controller import Controller
from pyk8s.controllers.endpoints import (
    TRIGGER_TIME_ANNOTATION,
    PodServiceIndex,
    endpoint_ports,
    hostname_for,
    selected_pods,
    service_labels,
    target_ref,
    trigger_time,
)
from pyk8s.controllers.manager import ControllerContext

__all__ = ["MANAGED_BY", "MANAGED_BY_LABEL", "SERVICE_NAME_LABEL", "EndpointSliceController"]

log = logging.getLogger(__name__)


SERVICES = require("", "Service")
PODS = require("", "Pod")
SLICES = require("discovery.k8s.io", "EndpointSlice")
NODES = require("", "Node")
ZONE_LABEL = "topology.kubernetes.io/zone"
SERVICE_NAME_LABEL = "kubernetes.io/service-name"
MANAGED_BY_LABEL = "endpointslice.kubernetes.io/managed-by"
MANAGED_BY = "endpointslice-controller.k8s.io"
MAX_ENDPOINTS_PER_SLICE = 100

Obj = dict[str, Any]
PortKey = tuple[tuple[Any, ...], ...]


def _port_key(ports: list[Obj]) -> PortKey:
    return tuple(tuple(sorted(p.items())) for p in _sorted_ports(ports))


def _sorted_ports(ports: list[Obj]) -> list[Obj]:
    return sorted(ports, key=lambda p: (p.get("name", ""), p["port"]))


def _endpoint(service: Obj, pod: Obj, zones: dict[str, str]) -> Obj:
    tolerate = bool((service.get("spec") or {}).get("publishNotReadyAddresses"))
    terminating = bool(pod["metadata"].get("deletionTimestamp"))
    serving = pod_ready(pod)
    ep: Obj = {"addresses": [pod["status"]["podIP"]],
               "conditions": {"ready": tolerate or (serving and not terminating), "serving": serving,
                              "terminating": terminating},
               "targetRef": target_ref(pod)}
    node_name = (pod.get("spec") or {}).get("nodeName")
    if node_name:
        ep["nodeName"] = node_name
        if zones.get(node_name):
            ep["zone"] = zones[node_name]
    hostname = hostname_for(service, pod)
    if hostname:
        ep["hostname"] = hostname
    return ep


def _zone(node: Obj | None) -> str | None:
    zone = ((node or {}).get("metadata") or {}).get("labels", {}).get(ZONE_LABEL)
    return str(zone) if zone else None


def desired_groups(service: Obj, pods: list[Obj],
                   zones: dict[str, str] | None = None) -> dict[PortKey, tuple[list[Obj], list[Obj]]]:
    """Port set → (ports, endpoints sorted by address) of the IPv4 pods; `zones` maps node names to
    their `topology.kubernetes.io/zone`."""
    groups: dict[PortKey, tuple[list[Obj], list[Obj]]] = {}
    for pod in pods:
        if ":" in pod["status"]["podIP"]:
            continue  # IPv6 addresses belong in IPv6 slices, which pyk8s does not make
        ports = endpoint_ports(service, pod)
        if ports is None:
            continue
        key = _port_key(ports)
        groups.setdefault(key, (_sorted_ports(ports), []))[1].append(_endpoint(service, pod, zones or {}))
    for _, endpoints in groups.values():
        endpoints.sort(key=lambda e: e["addresses"][0])
    return groups


class EndpointSliceController(Controller):
    name = "endpointslice"

    def __init__(self, ctx: ControllerContext, *,
                 max_endpoints_per_slice: int = MAX_ENDPOINTS_PER_SLICE) -> None:
        super().__init__(workers=min(ctx.options.workers, 5))
        self.client = ctx.client
        self.max_endpoints = max_endpoints_per_slice
        svc_inf = ctx.informers.informer(SERVICES)
        pod_inf = ctx.informers.informer(PODS)
        slice_inf = ctx.informers.informer(SLICES)
        self.services, self.pods = svc_inf.lister, pod_inf.lister
        node_inf = ctx.informers.informer(NODES)
        self.nodes = node_inf.lister
        pod_inf.add_index(NODE_NAME_INDEX, node_name_index)

        def zone_changed(old: Obj | None, new: Obj) -> None:
            if _zone(old) != _zone(new):  # the zone of every endpoint on the node changes
                for pod in self.pods.by_index(NODE_NAME_INDEX, new["metadata"]["name"]):
                    index.on_add(pod)
        node_inf.add_handler(lambda new: zone_changed(None, new), zone_changed)
        svc_inf.add_handler(self.enqueue, lambda _old, new: self.enqueue(new), self.enqueue)
        index = PodServiceIndex(self.services, self.queue.add)
        pod_inf.add_handler(index.on_add, index.on_update, index.on_delete)
        slice_inf.add_handler(None, lambda _old, new: self._slice_changed(new), self._slice_changed)

    def _slice_changed(self, obj: Obj | DeletedFinalStateUnknown) -> None:
        es = obj.obj if isinstance(obj, DeletedFinalStateUnknown) else obj
        labels = es["metadata"].get("labels") or {}
        if labels.get(MANAGED_BY_LABEL) == MANAGED_BY and labels.get(SERVICE_NAME_LABEL):
            self.queue.add(f"{es['metadata'].get('namespace')}/{labels[SERVICE_NAME_LABEL]}")

    async def reconcile(self, key: str) -> float | None:
        ns, name = split_key(key)
        service = self.services.get(name, ns)
        if service is None or not (service.get("spec") or {}).get("selector") \
                or service["metadata"].get("deletionTimestamp"):
            return None  # a deleted Service's slices go with it: the garbage collector follows ownership
        pods = selected_pods(service, self.pods)
        zones = {}
        for node_name in {str((p.get("spec") or {}).get("nodeName") or "") for p in pods} - {""}:
            zone = _zone(self.nodes.get(node_name))
            if zone:
                zones[node_name] = zone
        groups = desired_groups(service, pods, zones)
        selector = f"{SERVICE_NAME_LABEL}={name},{MANAGED_BY_LABEL}={MANAGED_BY}"
        existing = (await self.client.list(SLICES, ns, label_selector=selector)).get("items") or []
        existing.sort(key=lambda s: s["metadata"]["name"])
        by_ports: dict[PortKey, list[Obj]] = {}
        for es in existing:
            by_ports.setdefault(_port_key(es.get("ports") or []), []).append(es)
        labels = {**service_labels(service), SERVICE_NAME_LABEL: name, MANAGED_BY_LABEL: MANAGED_BY}
        when = trigger_time(service, pods)
        if not groups:
            groups[()] = ([], [])  # a Service without endpoints has one empty placeholder slice
        leftovers = [es for key_, slices in by_ports.items() if key_ not in groups for es in slices]
        for pkey, (ports, endpoints) in groups.items():
            size = self.max_endpoints
            chunks = [endpoints[i:i + size] for i in range(0, len(endpoints), size)] or [[]]
            current = by_ports.get(pkey, [])
            for i, chunk in enumerate(chunks):
                if i < len(current):
                    await self._update(current[i], labels, ports, chunk, when)
                else:
                    await self._create(service, labels, ports, chunk, when)
            leftovers.extend(current[len(chunks):])
        for es in leftovers:
            try:
                await self.client.delete(SLICES, es["metadata"]["name"], ns)
            except StatusError as e:
                if e.code != 404:
                    raise
        return None

    def _body(self, labels: dict[str, str], ports: list[Obj], endpoints: list[Obj], when: str | None,
              meta: Obj) -> Obj:
        annotations = dict(meta.get("annotations") or {})
        if when:
            annotations[TRIGGER_TIME_ANNOTATION] = when
        return {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                "metadata": {**meta, "labels": labels, "annotations": annotations},
                "addressType": "IPv4", "endpoints": endpoints, "ports": ports}

    async def _create(self, service: Obj, labels: dict[str, str], ports: list[Obj], endpoints: list[Obj],
                      when: str | None) -> None:
        smeta = service["metadata"]
        ns = smeta.get("namespace")
        meta = {"generateName": f"{smeta['name']}-", "namespace": ns, "ownerReferences": [{
            "apiVersion": "v1", "kind": "Service", "name": smeta["name"], "uid": smeta["uid"],
            "controller": True, "blockOwnerDeletion": True}]}
        try:
            await self.client.create(SLICES, self._body(labels, ports, endpoints, when, meta), ns)
        except StatusError as e:
            if e.code != 403:  # the namespace is terminating
                raise

    async def _update(self, es: Obj, labels: dict[str, str], ports: list[Obj], endpoints: list[Obj],
                      when: str | None) -> None:
        if (es.get("endpoints") or []) == endpoints and (es.get("ports") or []) == ports \
                and (es["metadata"].get("labels") or {}) == labels:
            return
        body = self._body(labels, ports, endpoints, when, dict(es["metadata"]))
        try:
            await self.client.update(SLICES, body)
        except StatusError as e:
            if e.code != 404:
                raise
