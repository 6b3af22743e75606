"""Endpoints from Service selectors and pod readiness (Kubernetes' endpoint controller).

For a Service with a selector, the Endpoints object of the same name lists the selected pods that have an
IP: ready pods (or every pod, with `publishNotReadyAddresses`) in `addresses`, the others in
`notReadyAddresses`; terminating and finished pods are left out. Each address carries the pod's IP,
nodeName, targetRef and — for a pod whose subdomain is the Service — its hostname. Ports are resolved per
pod, so a named targetPort maps to each pod's own container port; subsets group the addresses that share a
port set. Services without a selector are left alone (their Endpoints are the user's).

The pieces shared with the EndpointSlice controller (pod selection, readiness, port resolution) live here.
"""

from __future__ import annotations

import logging
from typing import Any

from pyk8s.api.catalog import require
from pyk8s.api.errors import StatusError
from pyk8s.api.labels import selector_from_set
from pyk8s.api.pods import pod_ready
from pyk8s.client.cache import DeletedFinalStateUnknown, Lister, split_key
from pyk8s.client.controller import Controller
from pyk8s.controllers.manager import ControllerContext

__all__ = ["TRIGGER_TIME_ANNOTATION", "EndpointsController", "PodServiceIndex", "endpoint_ports",
           "hostname_for", "resolve_port", "selected_pods", "trigger_time"]

log = logging.getLogger(__name__)


SERVICES = require("", "Service")
PODS = require("", "Pod")
ENDPOINTS = require("", "Endpoints")
TRIGGER_TIME_ANNOTATION = "endpoints.kubernetes.io/last-change-trigger-time"
HEADLESS_LABEL = "service.kubernetes.io/headless"
OVER_CAPACITY_ANNOTATION = "endpoints.kubernetes.io/over-capacity"
# Endpoints hold at most this many addresses (EndpointSlices have no such limit).
MAX_ENDPOINT_ADDRESSES = 1000

Obj = dict[str, Any]


# --- shared with the EndpointSlice controller -------------------------------------------------------------

def _terminal(pod: Obj) -> bool:
    return (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed")


def selected_pods(service: Obj, pods: Lister) -> list[Obj]:
    """The pods of the Service's namespace its selector matches, with an IP, not finished."""
    selector = (service.get("spec") or {}).get("selector")
    ns = service["metadata"].get("namespace")
    sel = selector_from_set(selector)
    return [p for p in pods.list(ns, sel)
            if (p.get("status") or {}).get("podIP") and not _terminal(p)]


def resolve_port(pod: Obj, service_port: Obj) -> int | None:
    """The pod's port for a Service port (podutil.FindPort): a number as is, a name looked up among the
    containers' ports of the same protocol; None when the pod has no such port."""
    target = service_port.get("targetPort", service_port.get("port"))
    if isinstance(target, int):
        return target
    if isinstance(target, str) and target.isdigit():
        return int(target)
    protocol = service_port.get("protocol") or "TCP"
    for container in (pod.get("spec") or {}).get("containers") or []:
        for p in container.get("ports") or []:
            if p.get("name") == target and (p.get("protocol") or "TCP") == protocol:
                return int(p["containerPort"])
    return None


def endpoint_ports(service: Obj, pod: Obj) -> list[Obj] | None:
    """The EndpointPorts of the Service for this pod, or None when a named port does not resolve and the
    pod is left out (as Kubernetes does)."""
    out: list[Obj] = []
    for sp in (service.get("spec") or {}).get("ports") or []:
        port = resolve_port(pod, sp)
        if port is None:
            return None
        ep: Obj = {"port": port, "protocol": sp.get("protocol") or "TCP"}
        if sp.get("name"):
            ep["name"] = sp["name"]
        if sp.get("appProtocol"):
            ep["appProtocol"] = sp["appProtocol"]
        out.append(ep)
    return out


def hostname_for(service: Obj, pod: Obj) -> str | None:
    spec = pod.get("spec") or {}
    if spec.get("hostname") and spec.get("subdomain") == service["metadata"]["name"]:
        return str(spec["hostname"])
    return None


def target_ref(pod: Obj) -> Obj:
    meta = pod["metadata"]
    return {"kind": "Pod", "namespace": meta.get("namespace", ""), "name": meta["name"],
            "uid": meta.get("uid", "")}


def trigger_time(service: Obj, pods: list[Obj]) -> str | None:
    """The newest change among the Service and its pods (each pod's Ready transition, or its creation)."""
    times = [service["metadata"].get("creationTimestamp") or ""]
    for p in pods:
        ready = [c.get("lastTransitionTime") for c in (p.get("status") or {}).get("conditions") or []
                 if c.get("type") == "Ready" and c.get("lastTransitionTime")]
        times.append(ready[0] if ready else p["metadata"].get("creationTimestamp") or "")
    newest = max(times)
    return newest or None


def service_labels(service: Obj) -> dict[str, str]:
    labels = dict(service["metadata"].get("labels") or {})
    if (service.get("spec") or {}).get("clusterIP") == "None":
        labels[HEADLESS_LABEL] = ""
    return labels


class PodServiceIndex:
    """Enqueue the Services a pod change concerns (by the old and the new labels, as Kubernetes)."""

    def __init__(self, services: Lister, enqueue_key: Any) -> None:
        self.services = services
        self.enqueue_key = enqueue_key

    def _for(self, pod: Obj) -> None:
        meta = pod.get("metadata") or {}
        ns, labels = meta.get("namespace"), meta.get("labels") or {}
        for svc in self.services.list(ns):
            selector = (svc.get("spec") or {}).get("selector")
            if selector and selector_from_set(selector).matches(labels):
                self.enqueue_key(f"{ns}/{svc['metadata']['name']}")

    def on_add(self, pod: Obj) -> None:
        self._for(pod)

    def on_update(self, old: Obj, new: Obj) -> None:
        if old.get("metadata", {}).get("resourceVersion") == new.get("metadata", {}).get("resourceVersion"):
            return
        self._for(new)
        if (old.get("metadata") or {}).get("labels") != (new.get("metadata") or {}).get("labels"):
            self._for(old)

    def on_delete(self, obj: Obj | DeletedFinalStateUnknown) -> None:
        self._for(obj.obj if isinstance(obj, DeletedFinalStateUnknown) else obj)


# --- the Endpoints controller ------------------------------------------------------------------------------

def desired_subsets(service: Obj, pods: list[Obj]) -> list[Obj]:
    tolerate = bool((service.get("spec") or {}).get("publishNotReadyAddresses"))
    groups: dict[tuple[tuple[Any, ...], ...], tuple[list[Obj], list[Obj], list[Obj]]] = {}
    for pod in pods:
        if pod["metadata"].get("deletionTimestamp") and not tolerate:
            continue
        ports = endpoint_ports(service, pod)
        if ports is None:
            continue
        addr: Obj = {"ip": pod["status"]["podIP"], "targetRef": target_ref(pod)}
        if (pod.get("spec") or {}).get("nodeName"):
            addr["nodeName"] = pod["spec"]["nodeName"]
        hostname = hostname_for(service, pod)
        if hostname:
            addr["hostname"] = hostname
        ports.sort(key=lambda p: (p.get("name", ""), p["port"], p["protocol"]))
        key = tuple(tuple(sorted(p.items())) for p in ports)
        ready, not_ready, _ = groups.setdefault(key, ([], [], ports))
        (ready if tolerate or pod_ready(pod) else not_ready).append(addr)
    subsets = []
    for ready, not_ready, ports in groups.values():
        subset: Obj = {}
        if ready:
            subset["addresses"] = sorted(ready, key=lambda a: a["ip"])
        if not_ready:
            subset["notReadyAddresses"] = sorted(not_ready, key=lambda a: a["ip"])
        if ports:
            subset["ports"] = ports
        subsets.append(subset)
    subsets.sort(key=lambda s: str(s.get("ports")))
    return subsets


def truncate(subsets: list[Obj], limit: int = MAX_ENDPOINT_ADDRESSES) -> bool:
    """Cut the subsets to `limit` addresses, ready ones first (as Kubernetes' over-capacity handling
    keeps the ready ones); True when something was cut."""
    total = sum(len(s.get("addresses", [])) + len(s.get("notReadyAddresses", [])) for s in subsets)
    if total <= limit:
        return False
    left = limit
    for field in ("addresses", "notReadyAddresses"):
        for s in subsets:
            keep = s.get(field, [])[:left]
            left -= len(keep)
            if keep:
                s[field] = keep
            else:
                s.pop(field, None)
    subsets[:] = [s for s in subsets if s.get("addresses") or s.get("notReadyAddresses")]
    return True


class EndpointsController(Controller):
    name = "endpoint"

    def __init__(self, ctx: ControllerContext) -> None:
        super().__init__(workers=min(ctx.options.workers, 5))
        self.client = ctx.client
        svc_inf = ctx.informers.informer(SERVICES)
        pod_inf = ctx.informers.informer(PODS)
        ep_inf = ctx.informers.informer(ENDPOINTS)
        self.services, self.pods, self.endpoints = svc_inf.lister, pod_inf.lister, ep_inf.lister
        svc_inf.add_handler(self.enqueue, lambda _old, new: self.enqueue(new), self.enqueue)
        index = PodServiceIndex(self.services, self.queue.add)
        pod_inf.add_handler(index.on_add, index.on_update, index.on_delete)
        # An Endpoints object changed or deleted by someone else is put right again.
        ep_inf.add_handler(None, lambda _old, new: self._endpoints_changed(new), self._endpoints_changed)

    def _endpoints_changed(self, obj: Obj | DeletedFinalStateUnknown) -> None:
        ep = obj.obj if isinstance(obj, DeletedFinalStateUnknown) else obj
        key = f"{ep['metadata'].get('namespace')}/{ep['metadata']['name']}"
        if self.services.get_by_key(key) is not None:
            self.queue.add(key)

    async def reconcile(self, key: str) -> float | None:
        ns, name = split_key(key)
        service = self.services.get(name, ns)
        if service is None:
            # Kubernetes deletes the Endpoints of a deleted Service.
            if self.endpoints.get(name, ns) is not None:
                try:
                    await self.client.delete(ENDPOINTS, name, ns)
                except StatusError as e:
                    if e.code != 404:
                        raise
            return None
        if not (service.get("spec") or {}).get("selector"):
            return None
        pods = selected_pods(service, self.pods)
        subsets = desired_subsets(service, pods)
        truncated = truncate(subsets)
        labels = service_labels(service)
        current = self.endpoints.get(name, ns)
        annotations = dict((current or {}).get("metadata", {}).get("annotations") or {})
        if current is not None and (current.get("subsets") or []) == subsets \
                and (current["metadata"].get("labels") or {}) == labels \
                and (OVER_CAPACITY_ANNOTATION in annotations) == truncated:
            return None
        annotations.pop(OVER_CAPACITY_ANNOTATION, None)
        if truncated:
            annotations[OVER_CAPACITY_ANNOTATION] = "truncated"
        when = trigger_time(service, pods)
        if when:
            annotations[TRIGGER_TIME_ANNOTATION] = when
        meta: Obj = {"name": name, "namespace": ns, "labels": labels, "annotations": annotations}
        body: Obj = {"apiVersion": "v1", "kind": "Endpoints", "metadata": meta, "subsets": subsets}
        if current is None:
            try:
                await self.client.create(ENDPOINTS, body, ns)
            except StatusError as e:
                if e.code != 403:  # 403: the namespace is terminating; 409: our cache lags, retried
                    raise
            return None
        body["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
        try:
            await self.client.update(ENDPOINTS, body, ns)
        except StatusError as e:
            if e.code != 404:
                raise
        return None
