"""Pods and pod templates: the PodSpec rules of Kubernetes' pkg/apis/core/validation, and pod updates."""

from __future__ import annotations

from typing import Any

from pyk8s.api.errors import Cause
from pyk8s.api.jsoncopy import json_copy
from pyk8s.api.meta import validate_annotations
from pyk8s.api.validation import _field as f
from pyk8s.api.validation._selector import set_operator_values, validate_label_selector
from pyk8s.api.validation.resources import quantity, validate_resource_requirements
from pyk8s.api.validation.volumes import validate_volumes

Obj = dict[str, Any]

RESTART_POLICIES = ("Always", "OnFailure", "Never")
DNS_POLICIES = ("ClusterFirstWithHostNet", "ClusterFirst", "Default", "None")
PULL_POLICIES = ("Always", "IfNotPresent", "Never")
PROTOCOLS = ("SCTP", "TCP", "UDP")
TERMINATION_MESSAGE_POLICIES = ("File", "FallbackToLogsOnError")
TAINT_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")
_MAX_INT32 = 2147483647


# --- containers -----------------------------------------------------------------------------------


def _validate_ports(ports: Any, path: str, host_network: bool) -> list[Cause]:
    causes: list[Cause] = []
    names: set[str] = set()
    for i, port in enumerate(f.as_list(ports)):
        p = f"{path}[{i}]"
        port = f.as_dict(port)
        name = port.get("name")
        if name:
            name_causes = f.check(f"{p}.name", str(name), f.port_name)
            causes += name_causes
            if not name_causes and f.key(name) in names:
                causes.append(f.duplicate(f"{p}.name", name))
            elif not name_causes:
                names.add(f.key(name))
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
        if host_network and port.get("hostPort") != container_port:
            causes.append(f.invalid(f"{p}.containerPort", container_port,
                                    "must match `hostPort` when `hostNetwork` is true"))  # fmt: skip
        causes += f.one_of(f"{p}.protocol", port.get("protocol"), PROTOCOLS)
        if port.get("hostIP"):
            causes += f.check(f"{p}.hostIP", str(port["hostIP"]), f.ip_address)
    return causes


_ENV_FIELD_PATHS = (
    "metadata.name", "metadata.namespace", "metadata.uid", "spec.nodeName", "spec.serviceAccountName",
    "status.hostIP", "status.hostIPs", "status.podIP", "status.podIPs",
)  # fmt: skip
_ENV_RESOURCE_PATHS = (
    "limits.cpu", "limits.ephemeral-storage", "limits.memory", "requests.cpu", "requests.ephemeral-storage",
    "requests.memory",
)  # fmt: skip


def _validate_key_selector(sel: Any, path: str) -> list[Cause]:
    """configMapKeyRef / secretKeyRef: the object's name is a DNS subdomain, the key a config key."""
    sel = f.as_dict(sel)
    causes = f.check(f"{path}.name", str(sel.get("name") or ""), f.dns1123_subdomain)
    if not sel.get("key"):
        causes.append(f.required(f"{path}.key", ""))
    else:
        causes += f.check(f"{path}.key", str(sel["key"]), f.config_map_key)
    return causes


def _validate_field_ref(ref: Any, path: str) -> list[Cause]:
    ref = f.as_dict(ref)
    if not ref.get("apiVersion"):
        return [f.required(f"{path}.apiVersion", "")]
    field_path = str(ref.get("fieldPath") or "")
    if not field_path:
        return [f.required(f"{path}.fieldPath", "")]
    for prefix in ("metadata.labels['", "metadata.annotations['"):
        if field_path.startswith(prefix) and field_path.endswith("']"):
            key = field_path[len(prefix) : -2]
            return f.check(path, key.lower() if "annotations" in prefix else key, f.qualified_name)
    if field_path not in _ENV_FIELD_PATHS:
        return [f.not_supported(f"{path}.fieldPath", field_path, _ENV_FIELD_PATHS)]
    return []


def _validate_env(env: Any, path: str) -> list[Cause]:
    """ValidateEnv and validateEnvVarValueFrom."""
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
        value_from = f.as_dict(value_from)
        vf = f"{p}.valueFrom"
        sources = [k for k in ("fieldRef", "resourceFieldRef", "configMapKeyRef", "secretKeyRef")
                   if value_from.get(k) is not None]  # fmt: skip
        if "fieldRef" in sources:
            causes += _validate_field_ref(value_from["fieldRef"], f"{vf}.fieldRef")
        if "resourceFieldRef" in sources:
            resource = f.as_dict(value_from["resourceFieldRef"]).get("resource")
            if not resource:
                causes.append(f.required(f"{vf}.resourceFieldRef.resource", ""))
            elif resource not in _ENV_RESOURCE_PATHS and not str(resource).startswith(
                ("requests.hugepages-", "limits.hugepages-")
            ):
                causes.append(
                    f.not_supported(f"{vf}.resourceFieldRef.resource", resource, _ENV_RESOURCE_PATHS)
                )
        for ref in ("configMapKeyRef", "secretKeyRef"):
            if ref in sources:
                causes += _validate_key_selector(value_from[ref], f"{vf}.{ref}")
        if not sources:
            causes.append(f.invalid(vf, "", "must specify one of: `fieldRef`, `resourceFieldRef`, "
                                            "`configMapKeyRef` or `secretKeyRef`"))  # fmt: skip
        elif var.get("value"):
            causes.append(f.invalid(vf, "", "may not be specified when `value` is not empty"))
        elif len(sources) > 1:
            causes.append(f.invalid(vf, "", "may not have more than one field specified at a time"))
    return causes


def _validate_env_from(env_from: Any, path: str) -> list[Cause]:
    """ValidateEnvFrom: as Kubernetes, the source count is reported on the list's path."""
    causes: list[Cause] = []
    for i, source in enumerate(f.as_list(env_from)):
        p = f"{path}[{i}]"
        source = f.as_dict(source)
        if source.get("prefix"):
            causes += f.check(f"{p}.prefix", str(source["prefix"]), f.relaxed_env_var_name)
        refs = [k for k in ("configMapRef", "secretRef") if source.get(k) is not None]
        for ref in refs:
            name = f.as_dict(source[ref]).get("name")
            if not name:
                causes.append(f.required(f"{p}.{ref}.name", ""))
            else:
                causes += f.check(f"{p}.{ref}.name", str(name), f.dns1123_subdomain)
        if not refs:
            causes.append(f.invalid(path, "", "must specify one of: `configMapRef` or `secretRef`"))
        elif len(refs) > 1:
            causes.append(f.invalid(path, "", "may not have more than one field specified at a time"))
    return causes


def _validate_mounts(mounts: Any, path: str, volumes: set[str]) -> list[Cause]:
    """ValidateVolumeMounts."""
    causes: list[Cause] = []
    seen_paths: set[str] = set()
    for i, mount in enumerate(f.as_list(mounts)):
        p = f"{path}[{i}]"
        mount = f.as_dict(mount)
        name = mount.get("name") or ""
        if not name:
            causes.append(f.required(f"{p}.name", ""))
        if f.key(name) not in volumes:
            causes.append(f.not_found(f"{p}.name", name))
        mount_path = mount.get("mountPath") or ""
        if not mount_path:
            causes.append(f.required(f"{p}.mountPath", ""))
        if f.key(mount_path) in seen_paths:
            causes.append(f.invalid(f"{p}.mountPath", mount_path, "must be unique"))
        seen_paths.add(f.key(mount_path))
        for key in ("subPath", "subPathExpr"):
            sub = str(mount.get(key) or "")
            if sub.startswith("/"):
                causes.append(f.invalid(f"{p}.{key}", sub, "must be a relative path"))
            elif ".." in sub.split("/"):
                causes.append(f.invalid(f"{p}.{key}", sub, "must not contain '..'"))
        if mount.get("subPath") and mount.get("subPathExpr"):
            causes.append(f.invalid(f"{p}.subPathExpr", mount["subPathExpr"],
                                    "subPathExpr and subPath are mutually exclusive"))  # fmt: skip
    return causes


def _validate_handler(handler: Any, path: str, kinds: tuple[str, ...]) -> list[Cause]:
    """validateHandler: exactly one action; a second is Forbidden."""
    handler = f.as_dict(handler)
    present = [k for k in kinds if handler.get(k) is not None]
    if not present:
        return [f.required(path, "must specify a handler type")]
    causes = [f.forbidden(f"{path}.{k}", "may not specify more than 1 handler type") for k in present[1:]]
    action, a_path = f.as_dict(handler[present[0]]), f"{path}.{present[0]}"
    if present[0] == "exec" and not action.get("command"):
        causes.append(f.required(f"{a_path}.command", ""))
    elif present[0] == "httpGet":
        if not action.get("path"):
            causes.append(f.required(f"{a_path}.path", ""))
        causes += _validate_port_ref(action.get("port"), f"{a_path}.port")
        if action.get("scheme") not in ("HTTP", "HTTPS"):
            causes.append(f.not_supported(f"{a_path}.scheme", action.get("scheme") or "", ["HTTP", "HTTPS"]))
    elif present[0] in ("tcpSocket", "grpc"):
        causes += _validate_port_ref(action.get("port"), f"{a_path}.port")
    return causes


def _validate_probe(probe: Any, path: str, kind: str) -> list[Cause]:
    """validateProbe plus the liveness, startup and readiness specifics."""
    if probe is None:
        return []
    probe = f.as_dict(probe)
    causes = _validate_handler(probe, path, ("exec", "httpGet", "tcpSocket", "grpc"))
    for key in (
        "initialDelaySeconds",
        "timeoutSeconds",
        "periodSeconds",
        "successThreshold",
        "failureThreshold",
    ):
        causes += f.non_negative(f"{path}.{key}", probe.get(key))
    grace = probe.get("terminationGracePeriodSeconds")
    if grace is not None:
        if kind == "readinessProbe":
            causes.append(f.invalid(f"{path}.terminationGracePeriodSeconds", grace,
                                    "must not be set for readinessProbes"))  # fmt: skip
        elif not f.is_int(grace) or grace <= 0:
            causes.append(f.invalid(f"{path}.terminationGracePeriodSeconds", grace, "must be greater than 0"))
    if kind != "readinessProbe" and probe.get("successThreshold") not in (None, 1):
        causes.append(f.invalid(f"{path}.successThreshold", probe["successThreshold"], "must be 1"))
    return causes


def _validate_port_ref(port: Any, path: str) -> list[Cause]:
    """ValidatePortNumOrName: a port given by number or by IANA name (intstr); unset is the number 0."""
    if port is None:
        port = 0
    if f.is_int(port):
        return [f.invalid(path, port, m) for m in f.port_number(port)]
    if isinstance(port, str):
        return f.check(path, port, f.port_name)
    return f.type_check(path, port, (int, str), "an integer or a string")


def _id_errors(path: str, value: Any) -> list[Cause]:
    """IsValidUserID / IsValidGroupID."""
    if value is None:
        return []
    if not f.is_int(value) or not 0 <= value <= _MAX_INT32:
        return [f.invalid(path, value, f"must be between 0 and {_MAX_INT32}, inclusive")]
    return []


def _validate_security_context(context: Any, path: str) -> list[Cause]:
    """ValidateSecurityContext for one container: ids, and escalation not refused while privileged."""
    if context is None:
        return []
    sc = f.as_dict(context)
    causes: list[Cause] = []
    for key in ("runAsUser", "runAsGroup"):
        causes += _id_errors(f"{path}.{key}", sc.get(key))
    if sc.get("privileged") is True and sc.get("allowPrivilegeEscalation") is False:
        causes.append(
            f.invalid(
                path, context, "cannot set `allowPrivilegeEscalation` to false and `privileged` to true"
            )
        )
    capabilities = f.as_dict(sc.get("capabilities"))
    if sc.get("allowPrivilegeEscalation") is False and "CAP_SYS_ADMIN" in f.as_list(capabilities.get("add")):
        causes.append(f.invalid(path, context, "cannot set `allowPrivilegeEscalation` to false and "
                                               "`capabilities.Add` CAP_SYS_ADMIN"))  # fmt: skip
    return causes


def _validate_container(c: Obj, path: str, volumes: set[str], host_network: bool, init: bool) -> list[Cause]:
    causes: list[Cause] = []
    image = c.get("image")
    if not image:
        causes.append(f.required(f"{path}.image", ""))
    causes += _validate_security_context(c.get("securityContext"), f"{path}.securityContext")
    causes += f.one_of(
        f"{path}.imagePullPolicy", c.get("imagePullPolicy"), PULL_POLICIES, required_when_empty=False
    )
    policy = c.get("terminationMessagePolicy")
    if policy not in TERMINATION_MESSAGE_POLICIES:
        detail = "must be 'File' or 'FallbackToLogsOnError'"
        tm_path = f"{path}.terminationMessagePolicy"
        causes.append(f.required(tm_path, detail) if not policy else f.invalid(tm_path, policy, detail))
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
    restricted = init and not sidecar
    for key in ("lifecycle", "livenessProbe", "readinessProbe", "startupProbe"):
        if c.get(key) is None:
            continue
        if restricted:
            detail = "may not be set for init containers without restartPolicy=Always"
            causes.append(f.forbidden(f"{path}.{key}", detail))
        elif key == "lifecycle":
            lifecycle = f.as_dict(c[key])
            for hook in ("postStart", "preStop"):
                if lifecycle.get(hook) is not None:
                    kinds = ("exec", "httpGet", "tcpSocket", "sleep")
                    causes += _validate_handler(lifecycle[hook], f"{path}.lifecycle.{hook}", kinds)
        else:
            causes += _validate_probe(c[key], f"{path}.{key}", key)
    return causes


def _host_port_conflicts(containers: list[tuple[int, Any]], path: str) -> list[Cause]:
    """checkHostPortConflicts: one protocol/hostIP/hostPort among `containers`."""
    causes: list[Cause] = []
    seen: set[str] = set()
    for i, c in containers:
        for j, port in enumerate(f.as_list(f.as_dict(c).get("ports"))):
            port = f.as_dict(port)
            if not port.get("hostPort"):
                continue
            triple = f"{port.get('protocol') or ''}/{port.get('hostIP') or ''}/{port['hostPort']}"
            if triple in seen:
                causes.append(f.duplicate(f"{path}[{i}].ports[{j}].hostPort", triple))
            seen.add(triple)
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
            causes += f.unique_label_name(f"{cpath}.name", c.get("name"), names)
            causes += _validate_container(c, cpath, volumes, host_network, init)
    # App containers run together; init containers one at a time.
    causes += _host_port_conflicts(list(enumerate(f.as_list(spec.get("containers")))), f"{path}.containers")
    for i, c in enumerate(f.as_list(spec.get("initContainers"))):
        causes += _host_port_conflicts([(i, c)], f"{path}.initContainers")
    causes += _validate_ephemeral_containers(spec, path, volumes, names)
    return causes


# Fields an ephemeral (debug) container may not set: it must not become part of the workload.
_EPHEMERAL_FORBIDDEN = ("ports", "resources", "livenessProbe", "readinessProbe", "startupProbe", "lifecycle")


def _validate_ephemeral_containers(spec: Obj, path: str, volumes: set[str], names: set[str]) -> list[Cause]:
    """validateEphemeralContainers: named, unique among all containers, targeting an existing one."""
    causes: list[Cause] = []
    for i, c in enumerate(f.as_list(spec.get("ephemeralContainers"))):
        p = f"{path}.ephemeralContainers[{i}]"
        c = f.as_dict(c)
        target = c.get("targetContainerName")
        if target and f.key(target) not in names:
            causes.append(f.not_found(f"{p}.targetContainerName", target))
        name = c.get("name")
        if not name:
            causes.append(f.required(p, "ephemeralContainer requires a name"))
            continue
        causes += f.check(f"{p}.name", f.key(name), f.dns1123_label)
        causes += _validate_container(c, p, volumes, host_network=False, init=False)
        if f.key(name) in names:
            causes.append(f.duplicate(f"{p}.name", name))
        names.add(f.key(name))
        causes += [f.forbidden(f"{p}.{key}", "cannot be set for an Ephemeral Container")
                   for key in _EPHEMERAL_FORBIDDEN if c.get(key)]  # fmt: skip
        for j, mount in enumerate(f.as_list(c.get("volumeMounts"))):
            for key in ("subPath", "subPathExpr"):
                if f.as_dict(mount).get(key):
                    causes.append(
                        f.forbidden(
                            f"{p}.volumeMounts[{j}].{key}", "cannot be set for an Ephemeral Container"
                        )
                    )
    return causes


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
            value = str(tol.get("value") or "")
            errs = f.label_value(value)
            if errs:
                causes.append(f.invalid(f"{p}.operator", value, ";".join(errs)))
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


def _validate_node_selector_requirements(requirements: Any, path: str) -> list[Cause]:
    """validateNodeSelectorRequirement: In/NotIn need values, Exists/DoesNotExist none, Gt/Lt one."""
    causes: list[Cause] = []
    for j, raw in enumerate(f.as_list(requirements)):
        p = f"{path}[{j}]"
        req = f.as_dict(raw)
        op = req.get("operator")
        values = f.as_list(req.get("values"))
        checked = set_operator_values(op, values, p)
        if checked is not None:
            causes += checked
        elif op in ("Gt", "Lt"):
            if len(values) != 1:
                detail = "must be specified single value when `operator` is 'Lt' or 'Gt'"
                causes.append(f.required(f"{p}.values", detail))
        else:
            causes.append(f.invalid(f"{p}.operator", op, "not a valid selector operator"))
        causes += f.check(f"{p}.key", f.key(req.get("key") or ""), f.qualified_name)
    return causes


def _validate_weight(term: Obj, path: str) -> list[Cause]:
    weight = term.get("weight")
    if not f.is_int(weight) or not 1 <= weight <= 100:
        return [f.invalid(f"{path}.weight", weight, "must be in the range 1-100")]
    return []


def _validate_pod_affinity_term(term: Any, path: str) -> list[Cause]:
    """validatePodAffinityTerm: a selector, namespaces that are labels, and a topology key."""
    term = f.as_dict(term)
    causes = validate_label_selector(term.get("labelSelector"), f"{path}.labelSelector")
    causes += validate_label_selector(term.get("namespaceSelector"), f"{path}.namespaceSelector")
    for name in f.as_list(term.get("namespaces")):
        causes += f.check(f"{path}.namespace", f.key(name), f.dns1123_label)
    key = term.get("topologyKey")
    if not key:
        causes.append(f.required(f"{path}.topologyKey", "can not be empty"))
    else:
        causes += f.check(f"{path}.topologyKey", f.key(key), f.qualified_name)
    return causes


def _validate_affinity(affinity: Any, path: str) -> list[Cause]:
    """validateAffinity: node affinity terms and preferences, pod (anti-)affinity terms and weights."""
    causes: list[Cause] = []
    affinity = f.as_dict(affinity)
    node = affinity.get("nodeAffinity")
    if node is not None:
        node = f.as_dict(node)
        n_path = f"{path}.nodeAffinity"
        required = node.get("requiredDuringSchedulingIgnoredDuringExecution")
        if required is not None:
            req_path = f"{n_path}.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms"
            terms = f.as_list(f.as_dict(required).get("nodeSelectorTerms"))
            if not terms:
                causes.append(f.required(req_path, "must have at least one node selector term"))
            for i, term in enumerate(terms):
                expressions = f.as_dict(term).get("matchExpressions")
                causes += _validate_node_selector_requirements(
                    expressions, f"{req_path}[{i}].matchExpressions"
                )
        pref_path = f"{n_path}.preferredDuringSchedulingIgnoredDuringExecution"
        for i, pref in enumerate(f.as_list(node.get("preferredDuringSchedulingIgnoredDuringExecution"))):
            pref = f.as_dict(pref)
            causes += _validate_weight(pref, f"{pref_path}[{i}]")
            expressions = f.as_dict(pref.get("preference")).get("matchExpressions")
            causes += _validate_node_selector_requirements(
                expressions, f"{pref_path}[{i}].preference.matchExpressions"
            )
    for kind in ("podAffinity", "podAntiAffinity"):
        pod_affinity = f.as_dict(affinity.get(kind))
        k_path = f"{path}.{kind}"
        for i, term in enumerate(
            f.as_list(pod_affinity.get("requiredDuringSchedulingIgnoredDuringExecution"))
        ):
            causes += _validate_pod_affinity_term(
                term, f"{k_path}.requiredDuringSchedulingIgnoredDuringExecution[{i}]"
            )
        pref_path = f"{k_path}.preferredDuringSchedulingIgnoredDuringExecution"
        for i, pref in enumerate(
            f.as_list(pod_affinity.get("preferredDuringSchedulingIgnoredDuringExecution"))
        ):
            pref = f.as_dict(pref)
            causes += _validate_weight(pref, f"{pref_path}[{i}]")
            causes += _validate_pod_affinity_term(
                pref.get("podAffinityTerm"), f"{pref_path}[{i}].podAffinityTerm"
            )
    return causes


# --- the PodSpec ----------------------------------------------------------------------------------


def _validate_dns_config(spec: Obj, path: str) -> list[Cause]:
    """validatePodDNSConfig, with the expanded search limits (the default since 1.28)."""
    config = spec.get("dnsConfig")
    if spec.get("dnsPolicy") == "None":
        if config is None:
            return [f.required(path, "must provide `dnsConfig` when `dnsPolicy` is None")]
        if not f.as_list(f.as_dict(config).get("nameservers")):
            detail = "must provide at least one DNS nameserver when `dnsPolicy` is None"
            return [f.required(f"{path}.nameservers", detail)]
    if config is None:
        return []
    config = f.as_dict(config)
    causes: list[Cause] = []
    servers = f.as_list(config.get("nameservers"))
    if len(servers) > 3:
        causes.append(f.invalid(f"{path}.nameservers", servers, "must not have more than 3 nameservers"))
    for i, server in enumerate(servers):
        if f.ip_address(str(server)):
            causes.append(f.invalid(f"{path}.nameservers[{i}]", server, "must be valid IP address"))
    searches = [str(s) for s in f.as_list(config.get("searches"))]
    if len(searches) > 32:
        causes.append(f.invalid(f"{path}.searches", searches, "must not have more than 32 search paths"))
    if len(" ".join(searches)) > 2048:
        causes.append(
            f.invalid(
                f"{path}.searches",
                searches,
                "must not have more than 2048 characters (including spaces) in the search list",
            )
        )
    for i, search in enumerate(searches):
        causes += f.check(f"{path}.searches[{i}]", search.removesuffix("."), f.dns1123_subdomain)
    for i, option in enumerate(f.as_list(config.get("options"))):
        if not f.as_dict(option).get("name"):
            causes.append(f.required(f"{path}.options[{i}]", "must not be empty"))
    return causes


def validate_pod_spec(spec: Any, path: str) -> list[Cause]:
    if not isinstance(spec, dict):
        return (
            [f.required(f"{path}.containers", "")]
            if spec is None
            else f.type_check(path, spec, dict, "an object")
        )
    volumes, causes = validate_volumes(spec.get("volumes"), f"{path}.volumes")
    causes += _validate_containers(spec, path, volumes)
    causes += f.one_of(f"{path}.restartPolicy", spec.get("restartPolicy"), RESTART_POLICIES)
    causes += f.one_of(f"{path}.dnsPolicy", spec.get("dnsPolicy"), DNS_POLICIES)
    causes += _validate_dns_config(spec, f"{path}.dnsConfig")
    for i, gate in enumerate(f.as_list(spec.get("readinessGates"))):
        condition = str(f.as_dict(gate).get("conditionType") or "")
        causes += f.check(f"{path}.readinessGates[{i}].conditionType", condition, f.qualified_name)
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
    causes += _validate_affinity(spec.get("affinity"), f"{path}.affinity")
    sec = f.as_dict(spec.get("securityContext"))
    for key in ("runAsUser", "runAsGroup", "fsGroup"):
        causes += _id_errors(f"{path}.securityContext.{key}", sec.get(key))
    for i, group in enumerate(f.as_list(sec.get("supplementalGroups"))):
        causes += _id_errors(f"{path}.securityContext.supplementalGroups[{i}]", group)
    gates: set[str] = set()
    for i, gate in enumerate(f.as_list(spec.get("schedulingGates"))):
        name = str(f.as_dict(gate).get("name") or "")
        causes += f.check(f"{path}.schedulingGates[{i}].name", name, f.qualified_name)
        if name in gates:
            causes.append(f.duplicate(f"{path}.schedulingGates[{i}].name", name))
        gates.add(name)
    preemption = ("PreemptLowerPriority", "Never")
    causes += f.one_of(
        f"{path}.preemptionPolicy", spec.get("preemptionPolicy"), preemption, required_when_empty=False
    )
    pod_os = spec.get("os")
    if pod_os is not None:
        os_name = f.as_dict(pod_os).get("name")
        if not os_name:
            causes.append(f.required(f"{path}.os.name", ""))
        elif os_name not in ("linux", "windows"):
            causes.append(f.not_supported(f"{path}.os.name", os_name, ["linux", "windows"]))
    for alias in f.as_list(spec.get("hostAliases")):
        alias = f.as_dict(alias)
        if f.ip_address(f.key(alias.get("ip") or "")):
            causes.append(
                f.invalid(f"{path}.hostAliases.ip", alias.get("ip") or "", "must be valid IP address")
            )
        for hostname in f.as_list(alias.get("hostnames")):
            causes += f.check(f"{path}.hostAliases.hostnames", f.key(hostname), f.dns1123_subdomain)
    for name, value in f.as_dict(spec.get("overhead")).items():
        causes += quantity(f"{path}.overhead[{name}]", value)[1]
    return causes


def validate_pod_template_spec(template: Any, path: str) -> list[Cause]:
    """ValidatePodTemplateSpec: labels, annotations and the spec. Kubernetes reports the template's labels
    at `<template>.labels`, without `metadata` — kept, since kubectl users see those paths."""
    if template is None:
        return [f.required(path, "")]
    template = f.as_dict(template)
    meta = f.as_dict(template.get("metadata"))
    causes = f.validate_labels(meta.get("labels"), f"{path}.labels")
    causes += validate_annotations(meta.get("annotations"), f"{path}.annotations")
    return causes + validate_pod_spec(template.get("spec"), f"{path}.spec")


def validate_pod(obj: Obj, old: Obj | None) -> list[Cause]:
    causes = validate_pod_spec(obj.get("spec"), "spec")
    # validateContainersOnlyForPod: templates keep tolerating padded images, for compatibility.
    spec = f.as_dict(obj.get("spec"))
    for key in ("containers", "initContainers"):
        for i, c in enumerate(f.as_list(spec.get(key))):
            image = f.as_dict(c).get("image")
            if isinstance(image, str) and image != image.strip():
                detail = "must not have leading or trailing whitespace"
                causes.append(f.invalid(f"spec.{key}[{i}].image", image, detail))
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


def _without_seconds(toleration: Any) -> Any:
    return {k: v for k, v in toleration.items() if k != "tolerationSeconds"} if isinstance(
        toleration, dict) else toleration  # fmt: skip


def _validate_pod_update(new: Obj, old: Obj) -> list[Cause]:
    """ValidatePodUpdate: the spec is immutable but for images, a shorter deadline, added tolerations
    (and their seconds), a negative grace period raised to 1, and removed scheduling gates."""
    causes: list[Cause] = []
    path = "spec.activeDeadlineSeconds"
    old_deadline, new_deadline = old.get("activeDeadlineSeconds"), new.get("activeDeadlineSeconds")
    if f.is_int(new_deadline):
        if not 0 <= new_deadline <= _MAX_INT32:
            return [f.invalid(path, new_deadline, f"must be between 0 and {_MAX_INT32}, inclusive")]
        if f.is_int(old_deadline) and old_deadline < new_deadline:
            return [f.invalid(path, new_deadline, "must be less than or equal to previous value")]
    elif new_deadline is None and old_deadline is not None:
        causes.append(f.invalid(path, None, "must not update from a positive integer to nil value"))
    new_tols = [_without_seconds(t) for t in f.as_list(new.get("tolerations"))]
    if any(_without_seconds(t) not in new_tols for t in f.as_list(old.get("tolerations"))):
        detail = "existing toleration can not be modified except its tolerationSeconds"
        causes.append(f.forbidden("spec.tolerations", detail))
    old_gates = f.as_list(old.get("schedulingGates"))
    if any(f.key(g) not in map(f.key, old_gates) for g in f.as_list(new.get("schedulingGates"))):
        detail = "only deletion is allowed, but found new scheduling gate"
        causes.append(f.forbidden("spec.schedulingGates", detail))
    # Copy what may change from the old spec into the new one; whatever still differs is forbidden.
    munged = json_copy(new)
    for key in ("containers", "initContainers"):
        olds = f.as_list(old.get(key))
        for i, c in enumerate(f.as_list(munged.get(key))):
            if i < len(olds) and isinstance(c, dict) and isinstance(olds[i], dict):
                c["image"] = olds[i].get("image")
    for key in ("activeDeadlineSeconds", "tolerations", "schedulingGates"):
        munged.pop(key, None)
        if key in old:
            munged[key] = old[key]
    old_grace, new_grace = old.get("terminationGracePeriodSeconds"), new.get("terminationGracePeriodSeconds")
    if f.is_int(old_grace) and old_grace < 0 and new_grace == 1:
        munged["terminationGracePeriodSeconds"] = old_grace
    if munged != old:
        changed = sorted(k for k in set(munged) | set(old) if munged.get(k) != old.get(k))
        diff = "\n".join(
            f"  spec.{k}: {f.go_value(old.get(k))} -> {f.go_value(munged.get(k))}" for k in changed
        )
        allowed = ",".join(_UPDATABLE)
        causes.append(f.forbidden("spec", f"pod updates may not change fields other than {allowed}\n{diff}"))
    return causes


def validate_ephemeral_containers_update(obj: Obj, old: Obj) -> list[Cause]:
    """ValidatePodEphemeralContainersUpdate, for the pods/ephemeralcontainers subresource (what
    `kubectl debug` writes): the new pod must be valid, and existing ephemeral containers may be neither
    removed nor changed. The caller carries everything but spec.ephemeralContainers over from `old`."""
    causes = validate_pod_spec(obj.get("spec"), "spec")
    annotations = f.as_dict(f.as_dict(old.get("metadata")).get("annotations"))
    if "kubernetes.io/config.mirror" in annotations:
        return [f.forbidden("", "static pods do not support ephemeral containers")]
    new_by_name = {f.key(f.as_dict(c).get("name")): c for c in f.as_list(f.as_dict(obj.get("spec")).get(
        "ephemeralContainers"))}  # fmt: skip
    for container in f.as_list(f.as_dict(old.get("spec")).get("ephemeralContainers")):
        name = f.key(f.as_dict(container).get("name"))
        if name not in new_by_name:
            detail = f"existing ephemeral containers {f.go_value(name)} may not be removed\n"
            causes.append(f.forbidden("spec.ephemeralContainers", detail))
        elif new_by_name[name] != container:
            detail = f"existing ephemeral containers {f.go_value(name)} may not be changed\n"
            causes.append(f.forbidden("spec.ephemeralContainers", detail))
    return causes
