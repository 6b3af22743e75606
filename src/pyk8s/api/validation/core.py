"""Core (v1) kinds other than pods: services, configmaps, secrets, namespaces, nodes, serviceaccounts,
endpoints, persistent volumes and claims, quotas, limit ranges, events, replication controllers."""

from __future__ import annotations

import base64
import binascii
import json
from decimal import Decimal
from typing import Any

from pyk8s.api.errors import Cause
from pyk8s.api.validation import _field as f
from pyk8s.api.validation import pod

Obj = dict[str, Any]

MAX_DATA_SIZE = 1024 * 1024  # core.MaxSecretSize, the limit for configmaps too
SERVICE_TYPES = ("ClusterIP", "ExternalName", "LoadBalancer", "NodePort")
ACCESS_MODES = ("ReadOnlyMany", "ReadWriteMany", "ReadWriteOnce", "ReadWriteOncePod")
RECLAIM_POLICIES = ("Delete", "Recycle", "Retain")
# Volume sources a pod may use but a PersistentVolume may not.
_POD_ONLY_SOURCES = {
    "emptyDir",
    "secret",
    "configMap",
    "downwardAPI",
    "projected",
    "persistentVolumeClaim",
    "gitRepo",
    "ephemeral",
    "image",
}
IMMUTABLE_WHEN_SET = "field is immutable when `immutable` is set"


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


# --- configmaps and secrets -----------------------------------------------------------------------


def _immutable_data(obj: Obj, old: Obj | None, keys: tuple[str, ...]) -> list[Cause]:
    if old is None or old.get("immutable") is not True:
        return []
    causes = [f.forbidden(k, IMMUTABLE_WHEN_SET) for k in keys if obj.get(k) != old.get(k)]
    if obj.get("immutable") is not True:
        causes.append(f.forbidden("immutable", IMMUTABLE_WHEN_SET))
    return causes


def validate_config_map(obj: Obj, old: Obj | None) -> list[Cause]:
    """ValidateConfigMap: key names, no key in both maps, at most 1 MiB in all."""
    data, binary = obj.get("data"), obj.get("binaryData")
    causes = f.type_check("data", data, dict, "a map of strings")
    causes += f.type_check("binaryData", binary, dict, "a map of base64 strings")
    data, binary = f.as_dict(data), f.as_dict(binary)
    size = 0
    for key, value in data.items():
        causes += f.check(f"data[{key}]", key, f.config_map_key)
        causes += f.type_check(f"data[{key}]", value, str, "a string")
        if key in binary:
            causes.append(f.invalid(f"data[{key}]", key, "duplicate of key present in binaryData"))
        size += len(str(value).encode())
    for key, value in binary.items():
        causes += f.check(f"binaryData[{key}]", key, f.config_map_key)
        causes += _base64_errors(f"binaryData[{key}]", value)
        size += len(_decoded(value))
    if size > MAX_DATA_SIZE:
        causes.append(f.too_long("", MAX_DATA_SIZE))  # "" as Kubernetes: the whole object is too big
    return causes + _immutable_data(obj, old, ("data", "binaryData"))


def _decoded(value: Any) -> bytes:
    try:
        return base64.b64decode(str(value), validate=True)
    except (binascii.Error, ValueError):
        return b""


def _base64_errors(path: str, value: Any) -> list[Cause]:
    """[]byte fields travel as base64; Kubernetes' decoder refuses anything else (there as a 400)."""
    try:
        base64.b64decode(str(value), validate=True)
    except (binascii.Error, ValueError):
        return [f.invalid(path, "<secret contents redacted>", "illegal base64 data")]
    return []


def _json_errors(path: str, value: bytes) -> list[Cause]:
    try:
        json.loads(value)
    except ValueError as err:
        return [f.invalid(path, "<secret contents redacted>", str(err))]
    return []


def validate_secret(obj: Obj, old: Obj | None) -> list[Cause]:
    """ValidateSecret: key names, at most 1 MiB, and the keys each well-known type needs."""
    raw = obj.get("data")
    causes = f.type_check("data", raw, dict, "a map of base64 strings")
    for key, value in f.as_dict(raw).items():
        causes += f.check(f"data[{key}]", key, f.config_map_key)
        causes += _base64_errors(f"data[{key}]", value)
    data = {k: _decoded(v) for k, v in f.as_dict(raw).items()}
    if sum(len(v) for v in data.values()) > MAX_DATA_SIZE:
        causes.append(f.too_long("data", MAX_DATA_SIZE))
    secret_type = obj.get("type") or "Opaque"
    annotations = f.as_dict(f.as_dict(obj.get("metadata")).get("annotations"))
    if secret_type == "kubernetes.io/service-account-token":
        if not annotations.get("kubernetes.io/service-account.name"):
            causes.append(f.required("metadata.annotations[kubernetes.io/service-account.name]", ""))
    elif secret_type in ("kubernetes.io/dockercfg", "kubernetes.io/dockerconfigjson"):
        key = ".dockercfg" if secret_type == "kubernetes.io/dockercfg" else ".dockerconfigjson"
        if key not in data:
            causes.append(f.required(f"data[{key}]", ""))
        else:
            causes += _json_errors(f"data[{key}]", data[key])
    elif secret_type == "kubernetes.io/basic-auth":
        if "username" not in data and "password" not in data:
            causes += [f.required("data[username]", ""), f.required("data[password]", "")]
    elif secret_type == "kubernetes.io/ssh-auth":
        if not data.get("ssh-privatekey"):
            causes.append(f.required("data[ssh-privatekey]", ""))
    elif secret_type == "kubernetes.io/tls":
        causes += [f.required(f"data[{key}]", "") for key in ("tls.crt", "tls.key") if key not in data]
    if old is not None:
        causes += f.immutable("type", secret_type, old.get("type") or "Opaque")
        causes += _immutable_data(obj, old, ("data",))
    return causes


# --- namespaces, nodes, service accounts ----------------------------------------------------------


STANDARD_FINALIZERS = ("kubernetes", "orphan", "foregroundDeletion")


def kube_finalizer_errors(name: str) -> list[str]:
    """validateKubeFinalizerName: a finalizer without a domain must be one of Kubernetes' own."""
    if "/" not in name and name not in STANDARD_FINALIZERS:
        return ["name is neither a standard finalizer name nor is it fully qualified"]
    return []


def validate_namespace(obj: Obj, old: Obj | None) -> list[Cause]:
    """ValidateNamespace: spec.finalizers are qualified names, standard ones when without a domain."""
    causes: list[Cause] = []
    for fin in f.as_list(f.as_dict(obj.get("spec")).get("finalizers")):
        causes += f.check("spec.finalizers", str(fin), f.qualified_name)
        causes += f.check("spec.finalizers", str(fin), kube_finalizer_errors)
    return causes


def validate_node(obj: Obj, old: Obj | None) -> list[Cause]:
    spec = f.as_dict(obj.get("spec"))
    causes: list[Cause] = []
    cidrs = f.as_list(spec.get("podCIDRs")) or ([spec["podCIDR"]] if spec.get("podCIDR") else [])
    for i, c in enumerate(cidrs):
        causes += f.check(f"spec.podCIDRs[{i}]", str(c), f.cidr)
    seen: set[tuple[str, str]] = set()
    for i, taint in enumerate(f.as_list(spec.get("taints"))):
        p = f"spec.taints[{i}]"
        taint = f.as_dict(taint)
        key = f.key(taint.get("key") or "")
        causes += f.check(f"{p}.key", key, f.qualified_name)
        value = f.key(taint.get("value") or "")
        value_errors = f.label_value(value)
        if value_errors:
            causes.append(f.invalid(f"{p}.value", value, ";".join(value_errors)))
        causes += f.one_of(f"{p}.effect", taint.get("effect"), pod.TAINT_EFFECTS)
        pair = (key, f.key(taint.get("effect")))
        if pair in seen:
            shown = (f"core.Taint{{Key:{f.go_value(key)}, Value:{f.go_value(value)}, "
                     f"Effect:{f.go_value(pair[1])}, TimeAdded:(*v1.Time)(nil)}}")  # fmt: skip
            detail = "taints must be unique by key and effect pair"
            causes.append(Cause("FieldValueDuplicate", f"Duplicate value: {shown}: {detail}", p))
            continue
        seen.add(pair)
    if old is not None:
        old_spec = f.as_dict(old.get("spec"))
        old_cidrs = f.as_list(old_spec.get("podCIDRs"))
        if old_cidrs and cidrs != old_cidrs:
            causes.append(
                f.forbidden("spec.podCIDRs", 'node updates may not change podCIDR except from "" to valid')
            )
        if old_spec.get("providerID") and spec.get("providerID") != old_spec["providerID"]:
            causes.append(
                f.forbidden(
                    "spec.providerID", 'node updates may not change providerID except from "" to valid'
                )
            )
    return causes


def validate_service_account(obj: Obj, old: Obj | None) -> list[Cause]:
    """ValidateServiceAccount checks only the metadata."""
    return []


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


# --- storage --------------------------------------------------------------------------------------


def _validate_access_modes(modes: Any, path: str, detail: str = "") -> list[Cause]:
    modes = f.as_list(modes)
    if not modes:
        return [f.required(path, detail)]
    causes = [f.not_supported(path, m, ACCESS_MODES) for m in modes if m not in ACCESS_MODES]
    if "ReadWriteOncePod" in modes and len(modes) > 1:
        causes.append(f.forbidden(path, "may not use ReadWriteOncePod with other access modes"))
    return causes


def validate_persistent_volume(obj: Obj, old: Obj | None) -> list[Cause]:
    spec = f.as_dict(obj.get("spec"))
    causes = _validate_access_modes(spec.get("accessModes"), "spec.accessModes")
    capacity = f.as_dict(spec.get("capacity"))
    if not capacity:
        causes.append(f.required("spec.capacity", ""))
    elif "storage" not in capacity or len(capacity) > 1:
        causes.append(f.not_supported("spec.capacity", sorted(capacity), ["storage"]))
    for name, value in capacity.items():
        causes += pod.quantity(f"spec.capacity[{name}]", value)[1]
    causes += f.one_of(
        "spec.persistentVolumeReclaimPolicy",
        spec.get("persistentVolumeReclaimPolicy"),
        RECLAIM_POLICIES,
        required_when_empty=False,
    )
    causes += f.one_of(
        "spec.volumeMode", spec.get("volumeMode"), ("Block", "Filesystem"), required_when_empty=False
    )
    sources = (*(s for s in pod.VOLUME_SOURCES if s not in _POD_ONLY_SOURCES), "local")
    local = spec.get("local")
    causes += pod.validate_volume_sources(spec, "spec", sources)
    if local is not None and not f.as_dict(local).get("path"):
        causes.append(f.required("spec.local.path", ""))
    if local is not None and spec.get("nodeAffinity") is None:
        causes.append(f.required("spec.nodeAffinity", "Local volume requires node affinity"))
    if old is not None:
        old_spec = f.as_dict(old.get("spec"))
        for key in ("volumeMode",):
            causes += f.immutable(f"spec.{key}", spec.get(key), old_spec.get(key))
    return causes


def validate_persistent_volume_claim(obj: Obj, old: Obj | None) -> list[Cause]:
    spec = f.as_dict(obj.get("spec"))
    causes = _validate_access_modes(
        spec.get("accessModes"), "spec.accessModes", "at least 1 access mode is required"
    )
    requests = f.as_dict(f.as_dict(spec.get("resources")).get("requests"))
    if "storage" not in requests:
        causes.append(f.required("spec.resources[storage]", ""))
    else:
        amount, errs = pod.quantity("spec.resources[storage]", requests["storage"])
        causes += errs
        if amount is not None and amount <= 0:
            causes.append(
                f.invalid("spec.resources[storage]", str(requests["storage"]), "must be greater than zero")
            )
    causes += f.validate_labels(
        f.as_dict(spec.get("selector")).get("matchLabels"), "spec.selector.matchLabels"
    )
    causes += f.one_of(
        "spec.volumeMode", spec.get("volumeMode"), ("Block", "Filesystem"), required_when_empty=False
    )
    if spec.get("storageClassName"):
        causes += f.check("spec.storageClassName", str(spec["storageClassName"]), f.dns1123_subdomain)
    if old is not None:
        old_spec = f.as_dict(old.get("spec"))
        # Binding may fill volumeName once; resources (expansion) and the attributes class may change.
        mutable = {"resources", "volumeAttributesClassName"} | (
            {"volumeName"} if not old_spec.get("volumeName") else set()
        )
        if {k: v for k, v in spec.items() if k not in mutable} != {
            k: v for k, v in old_spec.items() if k not in mutable
        }:
            causes.append(
                f.forbidden(
                    "spec",
                    "spec is immutable after creation except resources.requests "
                    "and volumeAttributesClassName for bound claims",
                )
            )
    return causes


# --- quotas, limit ranges, events, replication controllers ----------------------------------------

_QUOTA_SCOPES = (
    "Terminating",
    "NotTerminating",
    "BestEffort",
    "NotBestEffort",
    "PriorityClass",
    "CrossNamespacePodAffinity",
    "VolumeAttributesClass",
)


_INTEGER_QUOTA_RESOURCES = (
    "pods",
    "services",
    "replicationcontrollers",
    "resourcequotas",
    "secrets",
    "configmaps",
    "persistentvolumeclaims",
    "services.nodeports",
    "services.loadbalancers",
)
_QUOTA_RESOURCES = (*_INTEGER_QUOTA_RESOURCES, "cpu", "memory", "ephemeral-storage", "requests.cpu",
                    "requests.memory", "requests.storage", "requests.ephemeral-storage", "limits.cpu",
                    "limits.memory", "limits.ephemeral-storage")  # fmt: skip


def _quota_resource_errors(name: str) -> list[str]:
    """ValidateResourceQuotaResourceName: a standard quota resource unless it has a domain (count/…)."""
    if "/" in name or name in _QUOTA_RESOURCES or name.startswith(("hugepages-", "requests.hugepages-")):
        return []
    return ["must be a standard resource for quota"]


def validate_resource_quota(obj: Obj, old: Obj | None) -> list[Cause]:
    """ValidateResourceQuotaSpec: resource names, non-negative (integer) amounts, scopes."""
    spec = f.as_dict(obj.get("spec"))
    causes: list[Cause] = []
    for name, value in f.as_dict(spec.get("hard")).items():
        p = f"spec.hard[{name}]"
        name_errors = f.qualified_name(name)
        causes += [f.invalid(p, name, m) for m in name_errors or _quota_resource_errors(name)]
        amount, errs = pod.quantity(p, value)
        causes += errs
        if amount is not None and amount < 0:
            causes.append(f.invalid(p, str(value), f.NON_NEGATIVE))
        integer = name in _INTEGER_QUOTA_RESOURCES or name.startswith("count/")
        if amount is not None and integer and amount != amount.to_integral_value():
            causes.append(f.invalid(p, str(value), "must be an integer"))
    scopes = [f.key(s) for s in f.as_list(spec.get("scopes"))]
    causes += [
        f.invalid("spec.scopes", scopes, "unsupported scope") for s in scopes if s not in _QUOTA_SCOPES
    ]
    for pair in (("BestEffort", "NotBestEffort"), ("Terminating", "NotTerminating")):
        if all(s in scopes for s in pair):
            causes.append(f.invalid("spec.scopes", scopes, "conflicting scopes"))
    return causes


_LIMIT_TYPES = ("Pod", "Container", "PersistentVolumeClaim")


def _limit_resource_errors(limit_type: str, name: str) -> list[str]:
    """validateLimitRangeResourceName: qualified, and for pods and containers a standard container
    resource unless it has a domain."""
    errors = f.qualified_name(name)
    if errors or "/" in name or limit_type not in ("Pod", "Container"):
        return errors
    if name in ("cpu", "memory", "ephemeral-storage") or name.startswith("hugepages-"):
        return []
    return ["must be a standard limit type or fully qualified"]


# (smaller, larger, reported at, value shown, message): the orders ValidateLimitRange enforces.
_LIMIT_ORDER = (
    ("min", "max", "min", "min", "min value {min} is greater than max value {max}"),
    ("min", "defaultRequest", "defaultRequest", "defaultRequest",
     "min value {min} is greater than default request value {defaultRequest}"),
    ("defaultRequest", "max", "defaultRequest", "defaultRequest",
     "default request value {defaultRequest} is greater than max value {max}"),
    ("defaultRequest", "default", "defaultRequest", "defaultRequest",
     "default request value {defaultRequest} is greater than default limit value {default}"),
    ("min", "default", "default", "min", "min value {min} is greater than default value {default}"),
    ("default", "max", "default", "max", "default value {default} is greater than max value {max}"),
)  # fmt: skip


def _limit_range_item(item: Obj, p: str) -> list[Cause]:
    causes: list[Cause] = []
    limit_type = f.key(item.get("type") or "")
    amounts: dict[str, dict[str, Decimal]] = {}
    shown: dict[str, dict[str, str]] = {}
    keys: list[str] = []
    sections = ["max", "min", "maxLimitRequestRatio"]
    if limit_type == "Pod":
        causes += [f.forbidden(f"{p}.{key}", "may not be specified when `type` is 'Pod'")
                   for key in ("default", "defaultRequest") if item.get(key)]  # fmt: skip
    else:
        sections += ["default", "defaultRequest"]
    for section in sections:
        for name, value in f.as_dict(item.get(section)).items():
            path = f"{p}.{section}[{name}]"
            causes += [f.invalid(path, name, m) for m in _limit_resource_errors(limit_type, name)]
            amount, errs = pod.quantity(path, value)
            causes += errs
            if amount is not None:
                amounts.setdefault(section, {})[name] = amount
                shown.setdefault(section, {})[name] = str(value)
                if name not in keys:
                    keys.append(name)
    if limit_type == "PersistentVolumeClaim" and not (
        "storage" in f.as_dict(item.get("min")) or "storage" in f.as_dict(item.get("max"))
    ):
        detail = "either minimum or maximum storage value is required, but neither was provided"
        causes.append(f.required(f"{p}.limits", detail))
    for k in keys:
        a = {section: amounts.get(section, {}).get(k) for section in sections}
        t = {section: shown.get(section, {}).get(k, "") for section in sections}
        for left, right, at, value, template in _LIMIT_ORDER:
            low, high = a.get(left), a.get(right)
            if low is not None and high is not None and low > high:
                causes.append(f.invalid_shown(f"{p}.{at}[{k}]", t[value], template.format(**t)))
        ratio, lo, hi = a["maxLimitRequestRatio"], a["min"], a["max"]
        ratio_path, ratio_text = f"{p}.maxLimitRequestRatio[{k}]", t["maxLimitRequestRatio"]
        if ratio is not None and ratio < 1:
            causes.append(f.invalid_shown(ratio_path, ratio_text, f"ratio {ratio_text} is less than 1"))
        if ratio is not None and lo and hi is not None and ratio > hi / lo:
            detail = f"ratio {ratio_text} is greater than max/min = {float(hi / lo):f}"
            causes.append(f.invalid_shown(ratio_path, ratio_text, detail))
    return causes


def validate_limit_range(obj: Obj, old: Obj | None) -> list[Cause]:
    """ValidateLimitRange: one item per type, known resource names, min ≤ default request ≤ default ≤
    max, and sane ratios."""
    causes: list[Cause] = []
    seen: set[str] = set()
    for i, item in enumerate(f.as_list(f.as_dict(obj.get("spec")).get("limits"))):
        p = f"spec.limits[{i}]"
        item = f.as_dict(item)
        limit_type = f.key(item.get("type") or "")
        if limit_type not in _LIMIT_TYPES:
            causes.append(
                f.invalid(f"{p}.type", limit_type, "must be a standard limit type or fully qualified")
            )
        if limit_type in seen:
            causes.append(f.duplicate(f"{p}.type", limit_type))
        seen.add(limit_type)
        causes += _limit_range_item(item, p)
    return causes


_EVENT_FIELD_LIMIT = 128  # reportingInstance, action, reason
_EVENT_NOTE_LIMIT = 1024


def legacy_event_causes(event: Obj, *, involved: Obj, message: Any, reporting_field: str) -> list[Cause]:
    """legacyValidateEvent, which every event passes: events without an eventTime only need matching
    namespaces; newer ones say who reported what. Field paths are the internal ones, as Kubernetes'."""
    namespace = str(f.as_dict(event.get("metadata")).get("namespace") or "")
    involved_ns = str(involved.get("namespace") or "")
    causes: list[Cause] = []
    mismatch = f.invalid("involvedObject.namespace", involved_ns, "does not match event.namespace")
    if not event.get("eventTime"):
        if (not involved_ns and namespace not in ("", "default")) or (
            involved_ns and involved_ns != namespace
        ):
            causes.append(mismatch)
    else:
        if not involved_ns and namespace not in ("default", "kube-system"):
            causes.append(mismatch)
        controller = str(event.get(reporting_field) or "")
        if not controller:
            causes.append(f.required(reporting_field, ""))
        causes += f.check(reporting_field, controller, f.qualified_name)
        for key in ("reportingInstance", "action", "reason"):
            value = str(event.get(key) or "")
            if not value:
                causes.append(f.required(key, ""))
            if len(value) > _EVENT_FIELD_LIMIT:
                causes.append(f.invalid(key, "", f"can have at most {_EVENT_FIELD_LIMIT} characters"))
        if len(str(message or "")) > _EVENT_NOTE_LIMIT:
            causes.append(f.invalid("message", "", f"can have at most {_EVENT_NOTE_LIMIT} characters"))
    causes += f.check("namespace", namespace, f.dns1123_subdomain)
    return causes


def validate_event(obj: Obj, old: Obj | None) -> list[Cause]:
    """Core v1 events: legacy validation only, for backward compatibility (no ObjectMeta rules)."""
    involved = f.as_dict(obj.get("involvedObject"))
    return legacy_event_causes(obj, involved=involved, message=obj.get("message"),
                               reporting_field="reportingComponent")  # fmt: skip


def validate_replication_controller(obj: Obj, old: Obj | None) -> list[Cause]:
    spec = f.as_dict(obj.get("spec"))
    causes = f.non_negative("spec.replicas", spec.get("replicas"))
    causes += f.non_negative("spec.minReadySeconds", spec.get("minReadySeconds"))
    selector = f.as_dict(spec.get("selector"))
    if not selector:
        causes.append(f.required("spec.selector", ""))
    causes += f.validate_labels(selector, "spec.selector")
    template = spec.get("template")
    if template is not None:
        labels = f.as_dict(f.as_dict(f.as_dict(template).get("metadata")).get("labels"))
        if selector and not all(labels.get(k) == v for k, v in selector.items()):
            causes.append(
                f.invalid(
                    "spec.template.metadata.labels", labels, "`selector` does not match template `labels`"
                )
            )
        causes += pod.validate_pod_template_spec(template, "spec.template")
        causes += f.one_of(
            "spec.template.spec.restartPolicy",
            f.as_dict(f.as_dict(template).get("spec")).get("restartPolicy"),
            ["Always"],
        )
    else:
        causes.append(f.required("spec.template", ""))
    return causes
