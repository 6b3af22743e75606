"""Services and endpoints (Kubernetes' ValidateService, ValidateEndpoints)."""

from __future__ import annotations

from typing import Any

from pyk8s.api.errors import Cause
from pyk8s.api.validation import _field as f
from pyk8s.api.validation import pod

Obj = dict[str, Any]

SERVICE_TYPES = ("ClusterIP", "ExternalName", "LoadBalancer", "NodePort")


# --- services -------------------------------------------------------------------------------------


def _headless(spec: Obj) -> bool:
    return spec.get("clusterIP") == "None"


_MAX_AFFINITY_SECONDS = 86400


def _go_service_port_key(port: Any, protocol: Any) -> str:
    """The core.ServicePort key Kubernetes reports a duplicate port with, printed as Go's %#v."""
    return (f'core.ServicePort{{Name:"", Protocol:"{protocol}", AppProtocol:(*string)(nil), Port:{port}, '
            'TargetPort:intstr.IntOrString{Type:0, IntVal:0, StrVal:""}, NodePort:0}')  # fmt: skip


def _validate_service_ports(spec: Obj, svc_type: str) -> list[Cause]:
    causes: list[Cause] = []
    ports = f.as_list(spec.get("ports"))
    names: set[str] = set()
    for i, raw in enumerate(ports):
        p = f"spec.ports[{i}]"
        port = f.as_dict(raw)
        name = port.get("name")
        if len(ports) > 1 and not name:
            causes.append(f.required(f"{p}.name", ""))
        elif name:
            causes += f.check(f"{p}.name", str(name), f.dns1123_label)
            if f.key(name) in names:
                causes.append(f.duplicate(f"{p}.name", name))
            names.add(f.key(name))
        causes += [f.invalid(f"{p}.port", port.get("port", 0), m) for m in f.port_number(port.get("port"))]
        causes += f.one_of(f"{p}.protocol", port.get("protocol"), pod.PROTOCOLS)
        target = port.get("targetPort")
        if f.is_int(target):
            causes += [f.invalid(f"{p}.targetPort", target, m) for m in f.port_number(target)]
        elif isinstance(target, str):
            causes += f.check(f"{p}.targetPort", target, f.port_name)
        if port.get("nodePort"):
            causes += [
                f.invalid(f"{p}.nodePort", port["nodePort"], m) for m in f.port_number(port["nodePort"])
            ]
    if svc_type == "ClusterIP":
        causes += [f.forbidden(f"spec.ports[{i}].nodePort", "may not be used when `type` is 'ClusterIP'")
                   for i, port in enumerate(ports) if f.as_dict(port).get("nodePort")]  # fmt: skip
    node_ports: set[tuple[Any, Any]] = set()
    for i, port in enumerate(ports):
        port = f.as_dict(port)
        if port.get("nodePort"):
            key = (f.key(port.get("protocol")), f.key(port["nodePort"]))
            if key in node_ports:
                causes.append(f.duplicate(f"spec.ports[{i}].nodePort", port["nodePort"]))
            node_ports.add(key)
    keys: set[tuple[Any, Any]] = set()
    for i, port in enumerate(ports):
        port = f.as_dict(port)
        key = (f.key(port.get("protocol")), f.key(port.get("port")))
        if key in keys:
            causes.append(
                Cause(
                    "FieldValueDuplicate",
                    f"Duplicate value: {_go_service_port_key(key[1], key[0])}",
                    f"spec.ports[{i}]",
                )
            )
        keys.add(key)
    return causes


def _validate_session_affinity(spec: Obj) -> list[Cause]:
    affinity = spec.get("sessionAffinity")
    causes = f.one_of("spec.sessionAffinity", affinity, ("ClientIP", "None"))
    config = spec.get("sessionAffinityConfig")
    path = "spec.sessionAffinityConfig"
    if affinity == "ClientIP":
        detail = "when session affinity type is ClientIP"
        client_ip = f.as_dict(config).get("clientIP")
        timeout = f.as_dict(client_ip).get("timeoutSeconds")
        if config is None:
            causes.append(f.required(path, detail))
        elif client_ip is None:
            causes.append(f.required(f"{path}.clientIP", detail))
        elif timeout is None:
            causes.append(f.required(f"{path}.clientIP.timeoutSeconds", detail))
        elif not f.is_int(timeout) or not 0 < timeout <= _MAX_AFFINITY_SECONDS:
            detail = f"must be greater than 0 and less than {_MAX_AFFINITY_SECONDS}"
            causes.append(f.invalid(f"{path}.clientIP.timeoutSeconds", timeout, detail))
    elif affinity == "None" and config is not None:
        causes.append(f.forbidden(path, "must not be set when session affinity is None"))
    return causes


def _validate_cluster_ips(spec: Obj, svc_type: str) -> list[Cause]:
    causes: list[Cause] = []
    if svc_type == "ExternalName":
        if spec.get("clusterIPs") or spec.get("clusterIP") not in (None, ""):
            causes.append(f.forbidden("spec.clusterIPs", "may not be set for ExternalName services"))
        return causes
    ips = f.as_list(spec.get("clusterIPs")) or ([spec["clusterIP"]] if spec.get("clusterIP") else [])
    if spec.get("clusterIP") and ips and spec["clusterIP"] != ips[0]:
        causes.append(f.invalid("spec.clusterIPs", ips, "element [0] must match clusterIP"))
    for i, ip in enumerate(ips):
        if ip == "None":
            if i > 0 or len(ips) > 1:
                causes.append(
                    f.invalid(f"spec.clusterIPs[{i}]", ip, "'None' must be the first and only value")
                )
        elif f.ip_address(str(ip)):
            causes.append(
                f.invalid(f"spec.clusterIPs[{i}]", ip, "must be empty, 'None', or a valid IP address")
            )
    if _headless(spec) and svc_type in ("NodePort", "LoadBalancer"):
        causes.append(
            f.invalid("spec.clusterIPs[0]", "None", f"may not be set to 'None' for {svc_type} services")
        )
    return causes


def validate_service(obj: Obj, old: Obj | None) -> list[Cause]:
    """ValidateService, in Kubernetes' order, and ValidateServiceUpdate's immutable cluster IP."""
    spec = f.as_dict(obj.get("spec"))
    causes: list[Cause] = []
    svc_type = spec.get("type") or ""
    if not f.as_list(spec.get("ports")) and not _headless(spec) and svc_type != "ExternalName":
        causes.append(f.required("spec.ports", ""))
    if svc_type == "ExternalName":
        cname = str(spec.get("externalName") or "").removesuffix(".")
        if cname:
            causes += f.check("spec.externalName", cname, f.dns1123_subdomain)
        else:
            causes.append(f.required("spec.externalName", ""))
    causes += _validate_service_ports(spec, svc_type)
    causes += f.validate_labels(spec.get("selector"), "spec.selector")
    causes += _validate_session_affinity(spec)
    causes += _validate_cluster_ips(spec, svc_type)
    for i, ip in enumerate(f.as_list(spec.get("externalIPs"))):
        causes += f.check(f"spec.externalIPs[{i}]", str(ip), f.ip_address)
    causes += f.one_of("spec.type", svc_type, SERVICE_TYPES)
    externally_accessible = svc_type in ("NodePort", "LoadBalancer") or (
        svc_type == "ClusterIP" and bool(spec.get("externalIPs"))
    )
    policy = spec.get("externalTrafficPolicy")
    if not externally_accessible:
        if policy:
            causes.append(f.invalid("spec.externalTrafficPolicy", policy,
                                    "may only be set for externally-accessible services"))  # fmt: skip
    else:
        causes += f.one_of("spec.externalTrafficPolicy", policy, ("Cluster", "Local"))
    causes += f.one_of("spec.internalTrafficPolicy", spec.get("internalTrafficPolicy"), ("Cluster", "Local"),
                       required_when_empty=False)  # fmt: skip
    for i, family in enumerate(f.as_list(spec.get("ipFamilies"))):
        causes += f.one_of(f"spec.ipFamilies[{i}]", family, ("IPv4", "IPv6"))
    policies = ("SingleStack", "PreferDualStack", "RequireDualStack")
    causes += f.one_of("spec.ipFamilyPolicy", spec.get("ipFamilyPolicy"), policies, required_when_empty=False)
    if old is not None:
        old_spec = f.as_dict(old.get("spec"))
        old_ips = f.as_list(old_spec.get("clusterIPs"))
        new_ips = f.as_list(spec.get("clusterIPs"))
        still_has_ip = svc_type != "ExternalName" and old_spec.get("type") != "ExternalName"
        if old_ips and still_has_ip and new_ips[:1] != old_ips[:1]:
            causes.append(f.invalid("spec.clusterIPs[0]", new_ips, "may not change once set"))
    return causes


# --- endpoints ------------------------------------------------------------------------------------


def validate_endpoints(obj: Obj, old: Obj | None) -> list[Cause]:
    causes: list[Cause] = []
    for i, subset in enumerate(f.as_list(obj.get("subsets"))):
        p = f"subsets[{i}]"
        subset = f.as_dict(subset)
        addresses = f.as_list(subset.get("addresses"))
        not_ready = f.as_list(subset.get("notReadyAddresses"))
        if not addresses and not not_ready:
            causes.append(f.required(p, "must specify `addresses` or `notReadyAddresses`"))
        for key, items in (("addresses", addresses), ("notReadyAddresses", not_ready)):
            for j, addr in enumerate(items):
                ip = str(f.as_dict(addr).get("ip") or "")
                causes += f.check(f"{p}.{key}[{j}].ip", ip, f.ip_address)
                hostname = f.as_dict(addr).get("hostname")
                if hostname:
                    causes += f.check(f"{p}.{key}[{j}].hostname", str(hostname), f.dns1123_label)
        ports = f.as_list(subset.get("ports"))
        for j, port in enumerate(ports):
            pp = f"{p}.ports[{j}]"
            port = f.as_dict(port)
            if len(ports) > 1 and not port.get("name"):
                causes.append(f.required(f"{pp}.name", ""))
            elif port.get("name"):
                causes += f.check(f"{pp}.name", str(port["name"]), f.dns1123_label)
            causes += [
                f.invalid(f"{pp}.port", port.get("port", 0), m) for m in f.port_number(port.get("port"))
            ]
            causes += f.one_of(f"{pp}.protocol", port.get("protocol"), pod.PROTOCOLS)
    return causes
