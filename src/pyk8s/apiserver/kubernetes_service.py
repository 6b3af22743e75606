"""The `kubernetes` Service in `default` and its Endpoints and EndpointSlice, which point at the API
server (Kubernetes' master endpoint reconciler). The service has no selector, so the endpoints
controllers leave these alone; this writes them at bootstrap and corrects them when the API server's
address or port changed since the last start."""

from __future__ import annotations

from typing import Any

from pyk8s.api import catalog, errors
from pyk8s.api.jsoncopy import json_copy
from pyk8s.apiserver.handlers import APIServer
from pyk8s.apiserver.interfaces import UserInfo
from pyk8s.apiserver.registry import RequestContext
from pyk8s.apiserver.service_alloc import first_service_ip

Obj = dict[str, Any]
NAME = "kubernetes"
NAMESPACE = "default"


def _ctx() -> RequestContext:
    user = UserInfo("system:apiserver", groups=("system:masters",))
    return RequestContext(user, field_manager="kube-apiserver")


def _objects(service_cidr: str, address: str, port: int) -> list[tuple[str, str, Obj, str]]:
    """(group, kind, object, the field that must match) for the three objects."""
    meta = {"name": NAME, "namespace": NAMESPACE}
    ip = first_service_ip(service_cidr)
    family = "IPv6" if ":" in address else "IPv4"
    service: Obj = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {**meta, "labels": {"component": "apiserver", "provider": "kubernetes"}},
        "spec": {
            "type": "ClusterIP",
            "clusterIP": ip,
            "clusterIPs": [ip],
            "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": port}],
            "sessionAffinity": "None",
        },
    }
    endpoints: Obj = {
        "apiVersion": "v1",
        "kind": "Endpoints",
        "metadata": {**meta, "labels": {"endpointslice.kubernetes.io/skip-mirror": "true"}},
        "subsets": [
            {"addresses": [{"ip": address}], "ports": [{"name": "https", "port": port, "protocol": "TCP"}]}
        ],
    }
    slice_: Obj = {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {**meta, "labels": {"kubernetes.io/service-name": NAME}},
        "addressType": family,
        "endpoints": [{"addresses": [address], "conditions": {"ready": True}}],
        "ports": [{"name": "https", "port": port, "protocol": "TCP"}],
    }
    return [("", "Service", service, "spec"), ("", "Endpoints", endpoints, "subsets"),
            ("discovery.k8s.io", "EndpointSlice", slice_, "endpoints")]  # fmt: skip


def _differs(current: Obj, wanted: Obj, field: str) -> bool:
    if field == "spec":  # the port the service forwards to; the address is fixed once allocated
        cur = [(p.get("port"), p.get("targetPort")) for p in (current.get("spec") or {}).get("ports") or []]
        want = [(p["port"], p["targetPort"]) for p in wanted["spec"]["ports"]]
        return cur != want
    if field == "endpoints":
        return any(current.get(k) != wanted[k] for k in ("endpoints", "ports"))
    return bool(current.get(field) != wanted[field])


async def ensure_kubernetes_service(api: APIServer, service_cidr: str, address: str, port: int) -> None:
    """Create the `kubernetes` Service, Endpoints and EndpointSlice in `default`, or bring them back to
    `address`:`port`. The `default` namespace must exist."""
    for group, kind, wanted, field in _objects(service_cidr, address, port):
        info = catalog.by_kind(group, kind)
        if info is None:
            raise LookupError(f"{kind} is missing from the catalog")
        for _ in range(5):  # a conflicting write by someone else: read again
            try:  # from the store, not the watch cache: an update needs the newest resourceVersion
                current = await api.registry.get(info, NAMESPACE, NAME)
            except errors.StatusError as e:
                if e.code != 404:
                    raise
                try:
                    await api.registry.create(info, NAMESPACE, wanted, _ctx())
                    break
                except errors.StatusError as e:
                    if e.code != 409:
                        raise
                    continue
            if not _differs(current, wanted, field):
                break
            updated = json_copy(current)
            if field == "spec":
                updated["spec"] = {**current["spec"], "ports": wanted["spec"]["ports"]}
            elif field == "endpoints":
                updated["endpoints"] = wanted["endpoints"]
                updated["ports"] = wanted["ports"]
                updated["addressType"] = wanted["addressType"]
            else:
                updated[field] = wanted[field]
            try:
                await api.registry.update(info, NAMESPACE, NAME, updated, _ctx())
                break
            except errors.StatusError as e:
                if e.code != 409:
                    raise
