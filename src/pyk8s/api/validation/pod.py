"""Pods and pod templates: the PodSpec rules of Kubernetes' pkg/apis/core/validation, and pod updates."""

from __future__ import annotations

import copy
from decimal import Decimal
from typing import Any

from pyk8s.api.errors import Cause
from pyk8s.api.quantity import QuantityError, parse_quantity
from pyk8s.api.validation import _field as f
from pyk8s.api.validation._selector import validate_label_selector

Obj = dict[str, Any]

RESTART_POLICIES = ("Always", "OnFailure", "Never")
DNS_POLICIES = ("ClusterFirstWithHostNet", "ClusterFirst", "Default", "None")
PULL_POLICIES = ("Always", "IfNotPresent", "Never")
PROTOCOLS = ("SCTP", "TCP", "UDP")
TERMINATION_MESSAGE_POLICIES = ("File", "FallbackToLogsOnError")
TAINT_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")
HOST_PATH_TYPES = (
    "",
    "DirectoryOrCreate",
    "Directory",
    "FileOrCreate",
    "File",
    "Socket",
    "CharDevice",
    "BlockDevice",
)
# In the order Kubernetes' validateVolumeSource looks at them: the first one found is the volume's source.
VOLUME_SOURCES = (
    "emptyDir", "hostPath", "gitRepo", "gcePersistentDisk", "awsElasticBlockStore", "secret", "nfs", "iscsi",
    "glusterfs", "flexVolume", "persistentVolumeClaim", "rbd", "cinder", "cephfs", "flocker", "downwardAPI",
    "fc", "azureFile", "vsphereVolume", "quobyte", "azureDisk", "photonPersistentDisk", "projected",
    "portworxVolume", "scaleIO", "storageos", "configMap", "csi", "ephemeral", "image",
)  # fmt: skip
_STANDARD_CONTAINER_RESOURCES = ("cpu", "memory", "ephemeral-storage")
_MAX_INT32 = 2147483647
_MODE_ERROR = "must be a number between 0 and 0777 (octal), both inclusive"


# --- resources ------------------------------------------------------------------------------------


def _native(name: str) -> bool:
    return "/" not in name or name.startswith("kubernetes.io/") or ".kubernetes.io/" in name.split("/")[0]


def _overcommit_allowed(name: str) -> bool:
    return _native(name) and not name.startswith("hugepages-")


def quantity(path: str, value: Any) -> tuple[Decimal | None, list[Cause]]:
    try:
        return parse_quantity(value), []
    except QuantityError as err:
        return None, [f.invalid(path, value, str(err))]


def validate_resource_requirements(res: Any, path: str) -> list[Cause]:
    """ValidateResourceRequirements: names, non-negative quantities, requests ≤ limits."""
    res = f.as_dict(res)
    causes: list[Cause] = []
    limits: dict[str, Decimal] = {}
    lim_path, req_path = f"{path}.limits", f"{path}.requests"
    for name, value in f.as_dict(res.get("limits")).items():
        causes += _resource_name(name, f"{lim_path}[{name}]")
        amount, errs = quantity(f"{lim_path}[{name}]", value)
        causes += errs
        if amount is not None:
            limits[name] = amount
            if amount < 0:
                causes.append(f.invalid(f"{lim_path}[{name}]", str(value), f.NON_NEGATIVE))
    for name, value in f.as_dict(res.get("requests")).items():
        causes += _resource_name(name, f"{req_path}[{name}]")
        amount, errs = quantity(f"{req_path}[{name}]", value)
        causes += errs
        if amount is None:
            continue
        if amount < 0:
            causes.append(f.invalid(f"{req_path}[{name}]", str(value), f.NON_NEGATIVE))
        limit = limits.get(name)
        limit_text = str(f.as_dict(res.get("limits")).get(name))
        if limit is not None:
            if amount != limit and not _overcommit_allowed(name):
                causes.append(
                    f.invalid(req_path, str(value), f"must be equal to {name} limit of {limit_text}")
                )
            elif amount > limit:
                causes.append(
                    f.invalid(
                        req_path, str(value), f"must be less than or equal to {name} limit of {limit_text}"
                    )
                )
        elif not _overcommit_allowed(name):
            causes.append(f.required(lim_path, "Limit must be set for non overcommitable resources"))
    return causes


def _resource_name(name: str, path: str) -> list[Cause]:
    causes = f.check(path, name, f.qualified_name)
    if causes:
        return causes
    if "/" not in name and name not in _STANDARD_CONTAINER_RESOURCES and not name.startswith("hugepages-"):
        return [f.invalid(path, name, "must be a standard resource for containers")]
    return []


# --- containers -----------------------------------------------------------------------------------


def _validate_ports(ports: Any, path: str, host_network: bool) -> list[Cause]:
    causes: list[Cause] = []
    names: set[str] = set()
    for i, port in enumerate(f.as_list(ports)):
        p = f"{path}[{i}]"
        port = f.as_dict(port)
        name = port.get("name")
        if name:
            causes += f.check(f"{p}.name", str(name), f.port_name)
            if name in names:
                causes.append(f.duplicate(f"{p}.name", name))
            names.add(str(name))
        container_port = port.get("containerPort")
        if not container_port:
            causes.append(f.required(f"{p}.containerPort", ""))
        else:
            causes += [
                f.invalid(f"{p}.containerPort", container_port, m) for m in f.port_number(container_port)
            ]
        host_port = port.get("hostPort")
        if host_port:
            causes += [f.invalid(f"{p}.hostPort", host_port, m) for m in f.port_number(host_port)]
            if host_network and host_port != container_port:
                causes.append(
                    f.invalid(
                        f"{p}.hostPort", host_port, "must match `containerPort` when `hostNetwork` is true"
                    )
                )
        causes += f.one_of(f"{p}.protocol", port.get("protocol"), PROTOCOLS)
        if port.get("hostIP"):
            causes += f.check(f"{p}.hostIP", str(port["hostIP"]), f.ip_address)
    return causes


def _validate_env(env: Any, path: str) -> list[Cause]:
    causes: list[Cause] = []
    for i, var in enumerate(f.as_list(env)):
        p = f"{path}[{i}]"
        var = f.as_dict(var)
        name = var.get("name")
        if not name:
            causes.append(f.required(f"{p}.name", ""))
        else:
            causes += f.check(f"{p}.name", str(name), f.relaxed_env_var_name)
        value_from = var.get("valueFrom")
        if value_from is None:
            continue
        sources = [
            k
            for k in ("fieldRef", "resourceFieldRef", "configMapKeyRef", "secretKeyRef")
            if f.as_dict(value_from).get(k) is not None
        ]
        vf = f"{p}.valueFrom"
        if var.get("value"):
            causes.append(f.invalid(vf, "", "may not be specified when `value` is not empty"))
        if not sources:
            causes.append(
                f.required(
                    vf,
                    "must specify one of: `fieldRef`, `resourceFieldRef`, "
                    "`configMapKeyRef` or `secretKeyRef`",
                )
            )
        elif len(sources) > 1:
            causes.append(f.invalid(vf, "", "may not have more than one field specified at a time"))
        for ref in ("configMapKeyRef", "secretKeyRef"):
            sel = f.as_dict(value_from).get(ref)
            if sel is not None:
                sel = f.as_dict(sel)
                if not sel.get("key"):
                    causes.append(f.required(f"{vf}.{ref}.key", ""))
                else:
                    causes += f.check(f"{vf}.{ref}.key", str(sel["key"]), f.config_map_key)
                if not sel.get("name"):
                    causes.append(f.required(f"{vf}.{ref}.name", ""))
        field_ref = f.as_dict(value_from).get("fieldRef")
        if field_ref is not None and not f.as_dict(field_ref).get("fieldPath"):
            causes.append(f.required(f"{vf}.fieldRef.fieldPath", ""))
        res_ref = f.as_dict(value_from).get("resourceFieldRef")
        if res_ref is not None and not f.as_dict(res_ref).get("resource"):
            causes.append(f.required(f"{vf}.resourceFieldRef.resource", ""))
    return causes


def _validate_env_from(env_from: Any, path: str) -> list[Cause]:
    causes: list[Cause] = []
    for i, source in enumerate(f.as_list(env_from)):
        p = f"{path}[{i}]"
        source = f.as_dict(source)
        refs = [k for k in ("configMapRef", "secretRef") if source.get(k) is not None]
        if not refs:
            causes.append(f.invalid(p, "", "must specify one of: `configMapRef` or `secretRef`"))
        elif len(refs) > 1:
            causes.append(f.invalid(p, "", "may not have more than one field specified at a time"))
        causes += [
            f.required(f"{p}.{ref}.name", "") for ref in refs if not f.as_dict(source[ref]).get("name")
        ]
    return causes


def _validate_mounts(mounts: Any, path: str, volumes: set[str]) -> list[Cause]:
    causes: list[Cause] = []
    seen_paths: set[str] = set()
    for i, mount in enumerate(f.as_list(mounts)):
        p = f"{path}[{i}]"
        mount = f.as_dict(mount)
        name = mount.get("name")
        if not name:
            causes.append(f.required(f"{p}.name", ""))
        elif name not in volumes:
            causes.append(f.not_found(f"{p}.name", name))
        mount_path = mount.get("mountPath")
        if not mount_path:
            causes.append(f.required(f"{p}.mountPath", ""))
        elif mount_path in seen_paths:
            causes.append(f.invalid(f"{p}.mountPath", mount_path, "must be unique"))
        else:
            seen_paths.add(str(mount_path))
        if mount.get("subPath") and (
            ".." in str(mount["subPath"]).split("/") or str(mount["subPath"]).startswith("/")
        ):
            causes.append(f.invalid(f"{p}.subPath", mount["subPath"], "must be a relative path without '..'"))
    return causes


def _validate_probe(probe: Any, path: str, liveness_or_startup: bool) -> list[Cause]:
    if probe is None:
        return []
    probe = f.as_dict(probe)
    causes: list[Cause] = []
    handlers = [k for k in ("exec", "httpGet", "tcpSocket", "grpc") if probe.get(k) is not None]
    if not handlers:
        causes.append(f.required(path, "must specify a handler type"))
    elif len(handlers) > 1:
        causes.append(f.forbidden(f"{path}.{handlers[1]}", "may not specify more than 1 handler type"))
    for key in (
        "initialDelaySeconds",
        "timeoutSeconds",
        "periodSeconds",
        "successThreshold",
        "failureThreshold",
        "terminationGracePeriodSeconds",
    ):
        causes += f.non_negative(f"{path}.{key}", probe.get(key))
    if liveness_or_startup and probe.get("successThreshold") not in (None, 1):
        causes.append(f.invalid(f"{path}.successThreshold", probe["successThreshold"], "must be 1"))
    http = probe.get("httpGet")
    if http is not None:
        http = f.as_dict(http)
        causes += _validate_port_ref(http.get("port"), f"{path}.httpGet.port")
        scheme = http.get("scheme")
        if scheme not in (None, "HTTP", "HTTPS"):
            causes.append(f.not_supported(f"{path}.httpGet.scheme", scheme, ["HTTP", "HTTPS"]))
    tcp = probe.get("tcpSocket")
    if tcp is not None:
        causes += _validate_port_ref(f.as_dict(tcp).get("port"), f"{path}.tcpSocket.port")
    exec_ = probe.get("exec")
    if exec_ is not None and not f.as_dict(exec_).get("command"):
        causes.append(f.required(f"{path}.exec.command", ""))
    return causes


def _validate_port_ref(port: Any, path: str) -> list[Cause]:
    """A port given by number or by IANA name (intstr)."""
    if port is None or port == "":
        return [f.required(path, "")]
    if f.is_int(port):
        return [f.invalid(path, port, m) for m in f.port_number(port)]
    if isinstance(port, str):
        return f.check(path, port, f.port_name)
    return f.type_check(path, port, (int, str), "an integer or a string")


def _validate_container(c: Obj, path: str, volumes: set[str], host_network: bool, init: bool) -> list[Cause]:
    causes: list[Cause] = []
    image = c.get("image")
    if not image:
        causes.append(f.required(f"{path}.image", ""))
    elif isinstance(image, str) and image != image.strip():
        causes.append(f.invalid(f"{path}.image", image, "must not have leading or trailing whitespace"))
    causes += f.one_of(
        f"{path}.imagePullPolicy", c.get("imagePullPolicy"), PULL_POLICIES, required_when_empty=False
    )
    causes += f.one_of(
        f"{path}.terminationMessagePolicy",
        c.get("terminationMessagePolicy"),
        TERMINATION_MESSAGE_POLICIES,
        required_when_empty=False,
    )
    for key in ("command", "args"):
        causes += f.type_check(f"{path}.{key}", c.get(key), list, "a list of strings")
    causes += _validate_ports(c.get("ports"), f"{path}.ports", host_network)
    causes += _validate_env(c.get("env"), f"{path}.env")
    causes += _validate_env_from(c.get("envFrom"), f"{path}.envFrom")
    causes += _validate_mounts(c.get("volumeMounts"), f"{path}.volumeMounts", volumes)
    causes += validate_resource_requirements(c.get("resources"), f"{path}.resources")
    sidecar = init and c.get("restartPolicy") == "Always"
    if init and c.get("restartPolicy") not in (None, "Always"):
        causes.append(f.not_supported(f"{path}.restartPolicy", c["restartPolicy"], ["Always"]))
    elif not init and c.get("restartPolicy") is not None:
        causes.append(f.forbidden(f"{path}.restartPolicy", "may not be set for non-init containers"))
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        if init and not sidecar and c.get(probe) is not None:
            causes.append(
                f.forbidden(
                    f"{path}.{probe}", "may not be set for init containers without restartPolicy=Always"
                )
            )
        else:
            causes += _validate_probe(c.get(probe), f"{path}.{probe}", probe != "readinessProbe")
    if init and not sidecar and c.get("lifecycle") is not None:
        causes.append(
            f.forbidden(
                f"{path}.lifecycle", "may not be set for init containers without restartPolicy=Always"
            )
        )
    return causes


def _validate_containers(spec: Obj, path: str, volumes: set[str]) -> list[Cause]:
    causes: list[Cause] = []
    host_network = spec.get("hostNetwork") is True
    names: set[str] = set()
    containers = spec.get("containers")
    if not containers:
        causes.append(f.required(f"{path}.containers", ""))
    for key, init in (("containers", False), ("initContainers", True)):
        for i, c in enumerate(f.as_list(spec.get(key))):
            cpath = f"{path}.{key}[{i}]"
            if not isinstance(c, dict):
                causes += f.type_check(cpath, c, dict, "an object")
                continue
            name = c.get("name")
            if not name:
                causes.append(f.required(f"{cpath}.name", ""))
            else:
                causes += f.check(f"{cpath}.name", str(name), f.dns1123_label)
                if name in names:
                    causes.append(f.duplicate(f"{cpath}.name", name))
                names.add(str(name))
            causes += _validate_container(c, cpath, volumes, host_network, init)
    for i, c in enumerate(f.as_list(spec.get("ephemeralContainers"))):
        name = f.as_dict(c).get("name")
        if name and name in names:
            causes.append(f.duplicate(f"{path}.ephemeralContainers[{i}].name", name))
    return causes


# --- volumes --------------------------------------------------------------------------------------


def _validate_mode(value: Any, path: str) -> list[Cause]:
    if value is None:
        return []
    if not f.is_int(value) or not 0 <= value <= 0o777:
        return [f.invalid(path, value, _MODE_ERROR)]
    return []


def _validate_key_paths(items: Any, path: str) -> list[Cause]:
    causes: list[Cause] = []
    for i, item in enumerate(f.as_list(items)):
        item = f.as_dict(item)
        p = f"{path}[{i}]"
        if not item.get("key"):
            causes.append(f.required(f"{p}.key", ""))
        item_path = item.get("path")
        if not item_path:
            causes.append(f.required(f"{p}.path", ""))
        elif str(item_path).startswith("/"):
            causes.append(f.invalid(f"{p}.path", item_path, "must be a relative path"))
        elif ".." in str(item_path).split("/"):
            causes.append(f.invalid(f"{p}.path", item_path, "must not contain '..'"))
        causes += _validate_mode(item.get("mode"), f"{p}.mode")
    return causes


def _validate_source(kind: str, src: Any, path: str) -> list[Cause]:
    src = f.as_dict(src)
    causes: list[Cause] = []
    if kind == "hostPath":
        if not src.get("path"):
            causes.append(f.required(f"{path}.path", ""))
        if src.get("type") is not None and src["type"] not in HOST_PATH_TYPES:
            causes.append(f.not_supported(f"{path}.type", src["type"], HOST_PATH_TYPES))
    elif kind == "emptyDir":
        if src.get("medium") not in (None, "", "Memory", "HugePages") and not str(src["medium"]).startswith(
            "HugePages-"
        ):
            causes.append(f.not_supported(f"{path}.medium", src["medium"], ["", "Memory", "HugePages"]))
        if src.get("sizeLimit") is not None:
            causes += quantity(f"{path}.sizeLimit", src["sizeLimit"])[1]
    elif kind == "secret":
        if not src.get("secretName"):
            causes.append(f.required(f"{path}.secretName", ""))
        causes += _validate_mode(src.get("defaultMode"), f"{path}.defaultMode")
        causes += _validate_key_paths(src.get("items"), f"{path}.items")
    elif kind == "configMap":
        if not src.get("name"):
            causes.append(f.required(f"{path}.name", ""))
        causes += _validate_mode(src.get("defaultMode"), f"{path}.defaultMode")
        causes += _validate_key_paths(src.get("items"), f"{path}.items")
    elif kind == "persistentVolumeClaim":
        if not src.get("claimName"):
            causes.append(f.required(f"{path}.claimName", ""))
    elif kind == "nfs":
        if not src.get("server"):
            causes.append(f.required(f"{path}.server", ""))
        if not src.get("path"):
            causes.append(f.required(f"{path}.path", ""))
        elif not str(src["path"]).startswith("/"):
            causes.append(f.invalid(f"{path}.path", src["path"], "must be an absolute path"))
    elif kind in ("downwardAPI", "projected"):
        causes += _validate_mode(src.get("defaultMode"), f"{path}.defaultMode")
    elif kind == "csi":
        if not src.get("driver"):
            causes.append(f.required(f"{path}.driver", ""))
    elif kind == "image" and not src.get("reference"):
        causes.append(f.required(f"{path}.reference", ""))
    return causes


def validate_volume_sources(vol: Obj, path: str, sources: tuple[str, ...] = VOLUME_SOURCES) -> list[Cause]:
    """Exactly one source: none is `Required: must specify a volume type`, a second is Forbidden."""
    present = [k for k in sources if vol.get(k) is not None]
    if not present:
        return [f.required(path, "must specify a volume type")]
    causes = [f.forbidden(f"{path}.{k}", "may not specify more than 1 volume type") for k in present[1:]]
    return causes + _validate_source(present[0], vol[present[0]], f"{path}.{present[0]}")


def _validate_volumes(volumes: Any, path: str) -> tuple[set[str], list[Cause]]:
    causes: list[Cause] = []
    names: set[str] = set()
    for i, vol in enumerate(f.as_list(volumes)):
        p = f"{path}[{i}]"
        if not isinstance(vol, dict):
            causes += f.type_check(p, vol, dict, "an object")
            continue
        name = vol.get("name")
        if not name:
            causes.append(f.required(f"{p}.name", ""))
        else:
            causes += f.check(f"{p}.name", str(name), f.dns1123_label)
            if name in names:
                causes.append(f.duplicate(f"{p}.name", name))
            names.add(str(name))
        causes += validate_volume_sources(vol, p)
    return names, causes


# --- scheduling -----------------------------------------------------------------------------------


def validate_tolerations(tolerations: Any, path: str) -> list[Cause]:
    causes: list[Cause] = []
    for i, tol in enumerate(f.as_list(tolerations)):
        p = f"{path}[{i}]"
        tol = f.as_dict(tol)
        key = tol.get("key") or ""
        op = tol.get("operator") or "Equal"
        if key:
            causes += f.check(f"{p}.key", str(key), f.qualified_name)
        elif op != "Exists":
            causes.append(
                f.invalid(
                    f"{p}.operator",
                    op,
                    "operator must be Exists when `key` is empty, which "
                    'means "match all values and all keys"',
                )
            )
        if tol.get("tolerationSeconds") is not None and tol.get("effect") != "NoExecute":
            causes.append(
                f.invalid(
                    f"{p}.effect",
                    tol.get("effect") or "",
                    "effect must be 'NoExecute' when `tolerationSeconds` is set",
                )
            )
        if op == "Equal":
            causes += f.check(f"{p}.value", str(tol.get("value") or ""), f.label_value)
        elif op == "Exists":
            if tol.get("value"):
                causes.append(
                    f.invalid(f"{p}.operator", tol, "value must be empty when `operator` is 'Exists'")
                )
        else:
            causes.append(f.not_supported(f"{p}.operator", op, ["Equal", "Exists"]))
        if tol.get("effect"):
            causes += f.one_of(f"{p}.effect", tol["effect"], TAINT_EFFECTS)
    return causes


def _validate_spread(constraints: Any, path: str) -> list[Cause]:
    causes: list[Cause] = []
    seen: set[tuple[str, str]] = set()
    for i, c in enumerate(f.as_list(constraints)):
        p = f"{path}[{i}]"
        c = f.as_dict(c)
        skew = c.get("maxSkew")
        if not f.is_int(skew) or skew <= 0:
            causes.append(f.invalid(f"{p}.maxSkew", skew, "must be greater than zero"))
        key = c.get("topologyKey")
        if not key:
            causes.append(f.required(f"{p}.topologyKey", "can not be empty"))
        else:
            causes += f.check(f"{p}.topologyKey", str(key), f.qualified_name)
        when = c.get("whenUnsatisfiable")
        causes += f.one_of(f"{p}.whenUnsatisfiable", when, ["DoNotSchedule", "ScheduleAnyway"])
        pair = (str(key), str(when))
        if pair in seen:
            causes.append(f.duplicate(f"{p}.{{topologyKey, whenUnsatisfiable}}", f"{key}, {when}"))
        seen.add(pair)
        causes += validate_label_selector(c.get("labelSelector"), f"{p}.labelSelector")
    return causes


def _validate_node_selector_terms(affinity: Any, path: str) -> list[Cause]:
    causes: list[Cause] = []
    node = f.as_dict(f.as_dict(affinity).get("nodeAffinity"))
    required = node.get("requiredDuringSchedulingIgnoredDuringExecution")
    if required is None:
        return causes
    req_path = f"{path}.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms"
    terms = f.as_list(f.as_dict(required).get("nodeSelectorTerms"))
    if not terms:
        causes.append(f.required(req_path, "must have at least one node selector term"))
    for i, term in enumerate(terms):
        for j, req in enumerate(f.as_list(f.as_dict(term).get("matchExpressions"))):
            p = f"{req_path}[{i}].matchExpressions[{j}]"
            req = f.as_dict(req)
            op = req.get("operator")
            values = f.as_list(req.get("values"))
            if op in ("In", "NotIn"):
                if not values:
                    causes.append(
                        f.required(f"{p}.values", "must be specified when `operator` is 'In' or 'NotIn'")
                    )
            elif op in ("Exists", "DoesNotExist"):
                if values:
                    causes.append(
                        f.forbidden(
                            f"{p}.values",
                            "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
                        )
                    )
            elif op in ("Gt", "Lt"):
                if len(values) != 1:
                    causes.append(
                        f.required(
                            f"{p}.values", "must be specified single value when `operator` is 'Lt' or 'Gt'"
                        )
                    )
            else:
                causes.append(f.invalid(f"{p}.operator", op, "not a valid selector operator"))
            causes += f.check(f"{p}.key", str(req.get("key") or ""), f.qualified_name)
    return causes


# --- the PodSpec ----------------------------------------------------------------------------------


def validate_pod_spec(spec: Any, path: str) -> list[Cause]:
    if not isinstance(spec, dict):
        return (
            [f.required(f"{path}.containers", "")]
            if spec is None
            else f.type_check(path, spec, dict, "an object")
        )
    volumes, causes = _validate_volumes(spec.get("volumes"), f"{path}.volumes")
    causes += _validate_containers(spec, path, volumes)
    causes += f.one_of(f"{path}.restartPolicy", spec.get("restartPolicy"), RESTART_POLICIES)
    causes += f.one_of(f"{path}.dnsPolicy", spec.get("dnsPolicy"), DNS_POLICIES)
    if spec.get("dnsPolicy") == "None" and spec.get("dnsConfig") is None:
        causes.append(f.required(f"{path}.dnsConfig", "must provide `dnsConfig` when `dnsPolicy` is None"))
    causes += f.validate_labels(spec.get("nodeSelector"), f"{path}.nodeSelector")
    for key in ("serviceAccountName", "nodeName", "priorityClassName"):
        if spec.get(key):
            causes += f.check(f"{path}.{key}", str(spec[key]), f.dns1123_subdomain)
    for key in ("hostname", "subdomain"):
        if spec.get(key):
            causes += f.check(f"{path}.{key}", str(spec[key]), f.dns1123_label)
    deadline = spec.get("activeDeadlineSeconds")
    if deadline is not None and (not f.is_int(deadline) or not 1 <= deadline <= _MAX_INT32):
        causes.append(
            f.invalid(
                f"{path}.activeDeadlineSeconds", deadline, f"must be between 1 and {_MAX_INT32}, inclusive"
            )
        )
    causes += f.type_check(
        f"{path}.terminationGracePeriodSeconds", spec.get("terminationGracePeriodSeconds"), int, "an integer"
    )
    causes += validate_tolerations(spec.get("tolerations"), f"{path}.tolerations")
    causes += _validate_spread(spec.get("topologySpreadConstraints"), f"{path}.topologySpreadConstraints")
    causes += _validate_node_selector_terms(spec.get("affinity"), f"{path}.affinity")
    sec = f.as_dict(spec.get("securityContext"))
    for key in ("runAsUser", "runAsGroup", "fsGroup"):
        causes += f.non_negative(f"{path}.securityContext.{key}", sec.get(key))
    gates: set[str] = set()
    for i, gate in enumerate(f.as_list(spec.get("schedulingGates"))):
        name = str(f.as_dict(gate).get("name") or "")
        causes += f.check(f"{path}.schedulingGates[{i}].name", name, f.qualified_name)
        if name in gates:
            causes.append(f.duplicate(f"{path}.schedulingGates[{i}].name", name))
        gates.add(name)
    for i, secret in enumerate(f.as_list(spec.get("imagePullSecrets"))):
        if not f.as_dict(secret).get("name"):
            causes.append(f.required(f"{path}.imagePullSecrets[{i}].name", ""))
    return causes


def validate_pod_template_spec(template: Any, path: str) -> list[Cause]:
    """A PodTemplateSpec inside a workload: labels, annotations and the spec."""
    if template is None:
        return [f.required(path, "")]
    template = f.as_dict(template)
    meta = f.as_dict(template.get("metadata"))
    causes = f.validate_labels(meta.get("labels"), f"{path}.metadata.labels")
    return causes + validate_pod_spec(template.get("spec"), f"{path}.spec")


def validate_pod(obj: Obj, old: Obj | None) -> list[Cause]:
    causes = validate_pod_spec(obj.get("spec"), "spec")
    if old is not None:
        causes += _validate_pod_update(f.as_dict(obj.get("spec")), f.as_dict(old.get("spec")))
    return causes


def validate_pod_template(obj: Obj, old: Obj | None) -> list[Cause]:
    """The PodTemplate kind (core/v1 podtemplates)."""
    return validate_pod_template_spec(obj.get("template"), "template")


# --- updates --------------------------------------------------------------------------------------

_UPDATABLE = (
    "`spec.containers[*].image`",
    "`spec.initContainers[*].image`",
    "`spec.activeDeadlineSeconds`",
    "`spec.tolerations` (only additions to existing tolerations)",
    "`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)",
)


def _validate_pod_update(new: Obj, old: Obj) -> list[Cause]:
    """ValidatePodUpdate: the spec is immutable but for images, the deadline, added tolerations, the grace
    period and removed scheduling gates."""
    causes: list[Cause] = []
    old_deadline, new_deadline = old.get("activeDeadlineSeconds"), new.get("activeDeadlineSeconds")
    if old_deadline is not None:
        if new_deadline is None:
            causes.append(
                f.invalid(
                    "spec.activeDeadlineSeconds", None, "must not update from a positive integer to nil value"
                )
            )
        elif f.is_int(new_deadline) and f.is_int(old_deadline) and new_deadline > old_deadline:
            causes.append(
                f.invalid(
                    "spec.activeDeadlineSeconds", new_deadline, "must be less than or equal to previous value"
                )
            )
    old_tols = f.as_list(old.get("tolerations"))
    new_tols = f.as_list(new.get("tolerations"))
    for tol in old_tols:
        if tol not in new_tols:
            causes.append(
                f.forbidden(
                    "spec.tolerations", "existing toleration can not be modified except its tolerationSeconds"
                )
            )
            break
    old_gates = f.as_list(old.get("schedulingGates"))
    if any(g not in old_gates for g in f.as_list(new.get("schedulingGates"))):
        causes.append(
            f.forbidden("spec.schedulingGates", "only deletion is allowed, but found new scheduling gate")
        )
    # Mask the fields that may change, then anything left that differs is forbidden.
    masked = copy.deepcopy(new)
    for key in ("containers", "initContainers"):
        olds = f.as_list(old.get(key))
        news = f.as_list(masked.get(key))
        for i, c in enumerate(news):
            if i < len(olds) and isinstance(c, dict) and isinstance(olds[i], dict):
                c["image"] = olds[i].get("image")
    for key in ("activeDeadlineSeconds", "tolerations", "terminationGracePeriodSeconds", "schedulingGates"):
        masked.pop(key, None)
    reference = {
        k: v
        for k, v in old.items()
        if k
        not in ("activeDeadlineSeconds", "tolerations", "terminationGracePeriodSeconds", "schedulingGates")
    }
    if masked != reference:
        changed = sorted(k for k in set(masked) | set(reference) if masked.get(k) != reference.get(k))
        diff = "\n".join(
            f"  spec.{k}: {f.go_value(reference.get(k))} -> {f.go_value(masked.get(k))}" for k in changed
        )
        causes.append(
            f.forbidden(
                "spec", "pod updates may not change fields other than " + ",".join(_UPDATABLE) + "\n" + diff
            )
        )
    return causes
