"""Core (v1) defaults other than pods: services, secrets, namespaces, volumes and claims, endpoints,
nodes, limit ranges, replication controllers."""

from __future__ import annotations

import base64
import ipaddress
from typing import Any

from pyk8s.api.defaults import pod as pod_defaults
from pyk8s.api.defaults._util import Obj, as_dict, canonical_resources, child, dicts, set_default

NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"


def service(obj: Obj) -> None:
    """SetDefaults_Service, plus the cluster IP fields the REST layer fills (clusterIPs mirrors
    clusterIP; one IPv4 family on a single-stack cluster)."""
    spec = child(obj, "spec")
    set_default(spec, "type", "ClusterIP")
    set_default(spec, "sessionAffinity", "None")
    svc_type = spec["type"]
    if spec["sessionAffinity"] == "None":
        spec.pop("sessionAffinityConfig", None)
    elif spec["sessionAffinity"] == "ClientIP":
        config = spec.get("sessionAffinityConfig")
        client_ip = config.get("clientIP") if isinstance(config, dict) else None
        if not isinstance(client_ip, dict) or client_ip.get("timeoutSeconds") is None:
            spec["sessionAffinityConfig"] = {"clientIP": {"timeoutSeconds": 10800}}
    for port in dicts(spec.get("ports")):
        set_default(port, "protocol", "TCP")
        if port.get("targetPort") in (None, 0, ""):
            port["targetPort"] = port.get("port")
    externally_accessible = svc_type in ("NodePort", "LoadBalancer") or (
        svc_type == "ClusterIP" and bool(spec.get("externalIPs"))
    )
    if externally_accessible:
        set_default(spec, "externalTrafficPolicy", "Cluster")
    if svc_type in ("NodePort", "LoadBalancer", "ClusterIP"):
        set_default(spec, "internalTrafficPolicy", "Cluster")
    if svc_type == "LoadBalancer":
        set_default(spec, "allocateLoadBalancerNodePorts", True)
    if svc_type == "ExternalName":
        return
    cluster_ip = spec.get("clusterIP")
    if cluster_ip and not spec.get("clusterIPs"):
        spec["clusterIPs"] = [cluster_ip]
    set_default(spec, "ipFamilyPolicy", "SingleStack")
    if not spec.get("ipFamilies"):
        family = "IPv4"
        if cluster_ip and cluster_ip != "None":
            try:
                family = "IPv6" if ipaddress.ip_address(cluster_ip).version == 6 else "IPv4"
            except ValueError:
                pass  # validation reports the address
        spec["ipFamilies"] = [family]


def secret(obj: Obj) -> None:
    """Type Opaque; stringData merges into data (it wins over data), as the v1 conversion does."""
    set_default(obj, "type", "Opaque")
    string_data = obj.pop("stringData", None)
    if isinstance(string_data, dict) and string_data:
        data = child(obj, "data")
        for key, value in string_data.items():
            data[key] = base64.b64encode(str(value).encode()).decode()


def namespace(obj: Obj) -> None:
    name = as_dict(obj.get("metadata")).get("name")
    if isinstance(name, str) and name:
        child(child(obj, "metadata"), "labels")[NAMESPACE_NAME_LABEL] = name
    spec = child(obj, "spec")
    if "finalizers" not in spec:
        spec["finalizers"] = ["kubernetes"]
    set_default(child(obj, "status"), "phase", "Active")


def persistent_volume(obj: Obj) -> None:
    spec = child(obj, "spec")
    canonical_resources(spec, "capacity")
    set_default(spec, "persistentVolumeReclaimPolicy", "Retain")
    set_default(spec, "volumeMode", "Filesystem")
    if isinstance(spec.get("hostPath"), dict) and "type" not in spec["hostPath"]:
        spec["hostPath"]["type"] = ""
    set_default(child(obj, "status"), "phase", "Pending")


def persistent_volume_claim(obj: Obj) -> None:
    spec = child(obj, "spec")
    set_default(spec, "volumeMode", "Filesystem")
    for key in ("limits", "requests"):
        canonical_resources(spec.get("resources"), key)
    for key in ("capacity", "allocatedResources"):
        canonical_resources(obj.get("status"), key)
    set_default(child(obj, "status"), "phase", "Pending")


def endpoints(obj: Obj) -> None:
    for subset in dicts(obj.get("subsets")):
        for port in dicts(subset.get("ports")):
            set_default(port, "protocol", "TCP")


def node(obj: Obj) -> None:
    for key in ("capacity", "allocatable"):
        canonical_resources(obj.get("status"), key)
    status = obj.get("status")
    if isinstance(status, dict) and status.get("capacity") and not status.get("allocatable"):
        status["allocatable"] = dict(status["capacity"])


def limit_range(obj: Obj) -> None:
    """Container limits: default from max, defaultRequest from default, then from min."""
    for item in dicts(child(obj, "spec").get("limits")):
        for key in ("max", "min", "default", "defaultRequest", "maxLimitRequestRatio"):
            canonical_resources(item, key)
        if item.get("type") != "Container":
            continue
        default, request = child(item, "default"), child(item, "defaultRequest")
        for name, value in as_dict(item.get("max")).items():
            default.setdefault(name, value)
        for name, value in default.items():
            request.setdefault(name, value)
        for name, value in as_dict(item.get("min")).items():
            request.setdefault(name, value)


def replication_controller(obj: Obj) -> None:
    spec = child(obj, "spec")
    template = spec.get("template")
    labels: Any = None
    if isinstance(template, dict):
        labels = as_dict(template.get("metadata")).get("labels")
        pod_defaults.pod_template(template)
    if labels and not spec.get("selector"):
        spec["selector"] = dict(labels)
    meta = child(obj, "metadata")
    if labels and not meta.get("labels"):
        meta["labels"] = dict(labels)
    set_default(spec, "replicas", 1)


def pod_template(obj: Obj) -> None:
    pod_defaults.pod_template(obj.get("template"))


def resource_quota(obj: Obj) -> None:
    canonical_resources(obj.get("spec"), "hard")
    for key in ("hard", "used"):
        canonical_resources(obj.get("status"), key)
