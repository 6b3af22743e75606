"""Server-side Table output (`Accept: application/json;as=Table;v=v1;g=meta.k8s.io`), as `kubectl get`
asks for it.

Columns and cells follow Kubernetes' printers (pkg/printers/internalversion/printers.go). Like the real
API server, every cell is computed, wide ones included (priority 1): kubectl hides them unless `-o wide`.
A kind with no printer gets Kubernetes' default table: Name and Created At.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pyk8s.api.resource import ResourceInfo

Obj = dict[str, Any]
Cell = str | int | bool | None


def _units(major: int, major_unit: str, minor: int, minor_unit: str) -> str:
    """"5m3s", or "5m" when the minor part is zero."""
    return f"{major}{major_unit}{minor}{minor_unit}" if minor else f"{major}{major_unit}"


def human_duration(seconds: float) -> str:
    """Kubernetes' duration.HumanDuration: "45s", "5m3s", "3h", "2d4h", "3y12d"."""
    s = int(seconds)
    if s < -1:
        return "<invalid>"
    if s < 0:
        return "0s"
    if s < 120:
        return f"{s}s"
    minutes = s // 60
    if minutes < 10:
        return _units(minutes, "m", s % 60, "s")
    if minutes < 180:
        return f"{minutes}m"
    hours = s // 3600
    if hours < 8:
        return _units(hours, "h", minutes % 60, "m")
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        return _units(hours // 24, "d", hours % 24, "h")
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        return _units(hours // 24 // 365, "y", (hours // 24) % 365, "d")
    return f"{hours // 24 // 365}y"


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _since(value: Any, now: datetime) -> str:
    """translateTimestampSince: the age of a timestamp, `<unknown>` when it is unset."""
    when = _parse_time(value)
    return "<unknown>" if when is None else human_duration((now - when).total_seconds())


def _d(obj: Mapping[str, Any] | None, *path: str) -> Any:
    """obj[path0][path1]…, None where anything along the way is missing."""
    cur: Any = obj
    for key in path:
        if not isinstance(cur, Mapping):
            return None
        cur = cur.get(key)
    return cur


def _format_labels(labels: Mapping[str, str] | None) -> str:
    if not labels:
        return "<none>"
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))


def _format_selector(selector: Mapping[str, Any] | None) -> str:
    """metav1.FormatLabelSelector: requirements sorted by key, `<none>` for an empty selector."""
    if not selector:
        return "<none>"
    reqs: list[tuple[str, str]] = [(k, f"{k}={v}") for k, v in (selector.get("matchLabels") or {}).items()]
    for expr in selector.get("matchExpressions") or ():
        key, op, values = expr.get("key", ""), expr.get("operator", ""), sorted(expr.get("values") or ())
        text = {
            "In": f"{key} in ({','.join(values)})",
            "NotIn": f"{key} notin ({','.join(values)})",
            "Exists": key,
            "DoesNotExist": f"!{key}",
        }.get(op, key)
        reqs.append((key, text))
    return ",".join(text for _, text in sorted(reqs)) or "<none>"


def _containers(pod_spec: Mapping[str, Any] | None) -> tuple[str, str]:
    containers = _d(pod_spec, "containers") or []
    return (",".join(c.get("name", "") for c in containers), ",".join(c.get("image", "") for c in containers))


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    type: str = "string"
    description: str = ""
    priority: int = 0
    format: str = ""

    def to_dict(self) -> Obj:
        return {
            "name": self.name,
            "type": self.type,
            "format": self.format,
            "description": self.description,
            "priority": self.priority,
        }


_NAME = Column(
    "Name",
    format="name",
    description="Name must be unique within a namespace. Is required when "
    "creating resources, although some resources may allow a client to request the generation of "
    "an appropriate name automatically. Name is primarily intended for creation idempotence and "
    "configuration definition. Cannot be updated. More info: "
    "https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names",
)
_AGE = Column(
    "Age",
    description="CreationTimestamp is a timestamp representing the server time when this "
    "object was created. It is not guaranteed to be set in happens-before order across separate "
    "operations. Clients may not set this value. It is represented in RFC3339 form and is in UTC.\n\n"
    "Populated by the system. Read-only. Null for lists. More info: "
    "https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata",
)
_CREATED_AT = Column("Created At", type="date", description=_AGE.description)
_CONTAINERS = Column("Containers", priority=1, description="Names of each container in the template.")
_IMAGES = Column("Images", priority=1, description="Images referenced by each container in the template.")
_SELECTOR = Column(
    "Selector", priority=1, description="A label query over pods that should match the replica count."
)

Printer = Callable[[Obj, datetime], list[Cell]]


@dataclass(frozen=True, slots=True)
class _Table:
    columns: tuple[Column, ...]
    cells: Printer


# --- pods ---------------------------------------------------------------------------------------------


def _restartable_init(container: Mapping[str, Any] | None) -> bool:
    return bool(container) and _d(container, "restartPolicy") == "Always"


def _later(a: str, b: Any) -> str:
    pb = _parse_time(b)
    if pb is None:
        return a
    pa = _parse_time(a)
    return b if pa is None or pb > pa else a


def pod_status(pod: Obj) -> tuple[str, int, int, str, int]:
    """STATUS, ready and total containers, the last restart time and the restart count as kubectl shows
    them (printPod)."""
    spec, status = pod.get("spec") or {}, pod.get("status") or {}
    phase = status.get("phase", "")
    reason = status.get("reason") or phase
    for cond in status.get("conditions") or ():
        if cond.get("type") == "PodScheduled" and cond.get("reason") == "SchedulingGated":
            reason = "SchedulingGated"
    init_specs = {c.get("name"): c for c in spec.get("initContainers") or ()}
    total = len(spec.get("containers") or ()) + sum(1 for c in init_specs.values() if _restartable_init(c))
    ready = restarts = sidecar_restarts = 0
    last_restart = sidecar_last_restart = ""
    initializing = False
    init_statuses = status.get("initContainerStatuses") or []
    for i, cs in enumerate(init_statuses):
        restarts += int(cs.get("restartCount") or 0)
        finished = _d(cs, "lastState", "terminated", "finishedAt")
        last_restart = _later(last_restart, finished)
        sidecar = _restartable_init(init_specs.get(cs.get("name")))
        if sidecar:
            sidecar_restarts += int(cs.get("restartCount") or 0)
            sidecar_last_restart = _later(sidecar_last_restart, finished)
        terminated, waiting = _d(cs, "state", "terminated"), _d(cs, "state", "waiting")
        if terminated is not None and int(terminated.get("exitCode") or 0) == 0:
            continue
        if sidecar and cs.get("started"):
            if cs.get("ready"):
                ready += 1
            continue
        if terminated is not None:
            if terminated.get("reason"):
                reason = "Init:" + terminated["reason"]
            elif terminated.get("signal"):
                reason = f"Init:Signal:{terminated['signal']}"
            else:
                reason = f"Init:ExitCode:{terminated.get('exitCode', 0)}"
        elif waiting is not None and waiting.get("reason") and waiting["reason"] != "PodInitializing":
            reason = "Init:" + waiting["reason"]
        else:
            reason = f"Init:{i}/{len(spec.get('initContainers') or ())}"
        initializing = True
        break
    initialized = any(
        c.get("type") == "Initialized" and c.get("status") == "True" for c in status.get("conditions") or ()
    )
    if not initializing or initialized:
        restarts, last_restart = sidecar_restarts, sidecar_last_restart
        has_running = False
        for cs in reversed(status.get("containerStatuses") or []):
            restarts += int(cs.get("restartCount") or 0)
            last_restart = _later(last_restart, _d(cs, "lastState", "terminated", "finishedAt"))
            waiting, terminated = _d(cs, "state", "waiting"), _d(cs, "state", "terminated")
            if waiting is not None and waiting.get("reason"):
                reason = waiting["reason"]
            elif terminated is not None and terminated.get("reason"):
                reason = terminated["reason"]
            elif terminated is not None:
                reason = (
                    f"Signal:{terminated['signal']}"
                    if terminated.get("signal")
                    else f"ExitCode:{terminated.get('exitCode', 0)}"
                )
            elif cs.get("ready") and _d(cs, "state", "running") is not None:
                has_running = True
                ready += 1
        if reason == "Completed" and has_running:
            pod_ready = any(
                c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or ()
            )
            reason = "Running" if pod_ready else "NotReady"
    if _d(pod, "metadata", "deletionTimestamp"):
        if status.get("reason") == "NodeLost":
            reason = "Unknown"
        elif phase not in ("Succeeded", "Failed"):
            reason = "Terminating"
    return reason, ready, total, last_restart, restarts


def _pod(pod: Obj, now: datetime) -> list[Cell]:
    reason, ready, total, last_restart, restarts = pod_status(pod)
    restarts_text = str(restarts)
    if restarts and last_restart:
        restarts_text = f"{restarts} ({_since(last_restart, now)} ago)"
    spec, status = pod.get("spec") or {}, pod.get("status") or {}
    ips = status.get("podIPs") or []
    gates = spec.get("readinessGates") or []
    gates_text = "<none>"
    if gates:
        conditions = {c.get("type"): c.get("status") for c in status.get("conditions") or ()}
        true = sum(1 for g in gates if conditions.get(g.get("conditionType")) == "True")
        gates_text = f"{true}/{len(gates)}"
    return [
        _d(pod, "metadata", "name"),
        f"{ready}/{total}",
        reason,
        restarts_text,
        _since(_d(pod, "metadata", "creationTimestamp"), now),
        (ips[0].get("ip") if ips else "") or "<none>",
        spec.get("nodeName") or "<none>",
        status.get("nominatedNodeName") or "<none>",
        gates_text,
    ]


# --- workloads ----------------------------------------------------------------------------------------


def _age(obj: Obj, now: datetime) -> str:
    return _since(_d(obj, "metadata", "creationTimestamp"), now)


def _name(obj: Obj) -> Any:
    return _d(obj, "metadata", "name")


def _wide(spec: Mapping[str, Any], selector: str) -> list[Cell]:
    """The cells of _WORKLOAD_WIDE: the containers and images of spec.template, and the selector."""
    return [*_containers(_d(spec, "template", "spec")), selector]


def _deployment(obj: Obj, now: datetime) -> list[Cell]:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    return [
        _name(obj),
        f"{status.get('readyReplicas', 0)}/{spec.get('replicas', 1)}",
        int(status.get("updatedReplicas", 0)),
        int(status.get("availableReplicas", 0)),
        _age(obj, now),
        *_wide(spec, _format_selector(spec.get("selector"))),
    ]


def _replica_set(obj: Obj, now: datetime) -> list[Cell]:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    selector = (
        _format_labels(spec.get("selector"))
        if obj.get("kind") == "ReplicationController"
        else _format_selector(spec.get("selector"))
    )
    return [
        _name(obj),
        int(spec.get("replicas", 1)),
        int(status.get("replicas", 0)),
        int(status.get("readyReplicas", 0)),
        _age(obj, now),
        *_wide(spec, selector),
    ]


def _stateful_set(obj: Obj, now: datetime) -> list[Cell]:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    return [
        _name(obj),
        f"{status.get('readyReplicas', 0)}/{spec.get('replicas', 1)}",
        _age(obj, now),
        *_containers(_d(spec, "template", "spec")),
    ]


def _daemon_set(obj: Obj, now: datetime) -> list[Cell]:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    return [
        _name(obj),
        int(status.get("desiredNumberScheduled", 0)),
        int(status.get("currentNumberScheduled", 0)),
        int(status.get("numberReady", 0)),
        int(status.get("updatedNumberScheduled", 0)),
        int(status.get("numberAvailable", 0)),
        _format_labels(_d(spec, "template", "spec", "nodeSelector")),
        _age(obj, now),
        *_wide(spec, _format_selector(spec.get("selector"))),
    ]


def _has_condition(obj: Obj, kind: str) -> bool:
    for cond in _d(obj, "status", "conditions") or ():
        if cond.get("type") == kind:
            return bool(cond.get("status") == "True")
    return False


def _job(obj: Obj, now: datetime) -> list[Cell]:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    succeeded = status.get("succeeded", 0)
    if spec.get("completions") is not None:
        completions = f"{succeeded}/{spec['completions']}"
    elif (spec.get("parallelism") or 0) > 1:
        completions = f"{succeeded}/1 of {spec['parallelism']}"
    else:
        completions = f"{succeeded}/1"
    start, end = _parse_time(status.get("startTime")), _parse_time(status.get("completionTime"))
    duration = "" if start is None else human_duration(((end or now) - start).total_seconds())
    if _has_condition(obj, "Complete"):
        state = "Complete"
    elif _has_condition(obj, "Failed"):
        state = "Failed"
    elif _d(obj, "metadata", "deletionTimestamp"):
        state = "Terminating"
    elif _has_condition(obj, "Suspended"):
        state = "Suspended"
    elif _has_condition(obj, "FailureTarget"):
        state = "FailureTarget"
    else:
        state = "Running"
    return [
        _name(obj),
        state,
        completions,
        duration,
        _age(obj, now),
        *_wide(spec, _format_selector(spec.get("selector"))),
    ]


def _cron_job(obj: Obj, now: datetime) -> list[Cell]:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    last = status.get("lastScheduleTime")
    job_spec = _d(spec, "jobTemplate", "spec") or {}
    suspend = spec.get("suspend")
    return [
        _name(obj),
        spec.get("schedule", ""),
        spec.get("timeZone") or "<none>",
        "<unset>" if suspend is None else ("True" if suspend else "False"),
        len(status.get("active") or ()),
        _since(last, now) if last else "<none>",
        _age(obj, now),
        *_wide(job_spec, _format_selector(job_spec.get("selector"))),
    ]


def _controller_revision(obj: Obj, now: datetime) -> list[Cell]:
    controller = "<none>"
    for ref in _d(obj, "metadata", "ownerReferences") or ():
        if ref.get("controller"):
            api_version = ref.get("apiVersion", "")
            group = api_version.split("/")[0] if "/" in api_version else ""
            kind = ref.get("kind", "").lower() + (f".{group}" if group else "")
            controller = f"{kind}/{ref.get('name', '')}"
    return [_name(obj), controller, int(obj.get("revision", 0)), _age(obj, now)]


def _pdb(obj: Obj, now: datetime) -> list[Cell]:
    spec = obj.get("spec") or {}
    min_available, max_unavailable = spec.get("minAvailable"), spec.get("maxUnavailable")
    return [
        _name(obj),
        "N/A" if min_available is None else str(min_available),
        "N/A" if max_unavailable is None else str(max_unavailable),
        int(_d(obj, "status", "disruptionsAllowed") or 0),
        _age(obj, now),
    ]


# --- services and networking ---------------------------------------------------------------------------


def _service(obj: Obj, now: datetime) -> list[Cell]:
    spec = obj.get("spec") or {}
    svc_type = spec.get("type", "ClusterIP")
    cluster_ips = spec.get("clusterIPs") or ([spec["clusterIP"]] if spec.get("clusterIP") else [])
    external = spec.get("externalIPs") or []
    if svc_type in ("ClusterIP", "NodePort"):
        external_ip = ",".join(external) or "<none>"
    elif svc_type == "LoadBalancer":
        ingress = _d(obj, "status", "loadBalancer", "ingress") or []
        lb = sorted({i.get("ip") or i.get("hostname") for i in ingress if i.get("ip") or i.get("hostname")})
        external_ip = ",".join([*lb, *external]) or "<pending>"
    elif svc_type == "ExternalName":
        external_ip = spec.get("externalName", "")
    else:
        external_ip = "<unknown>"
    ports = ",".join(
        (
            f"{p.get('port')}:{p['nodePort']}/{p.get('protocol', 'TCP')}"
            if p.get("nodePort")
            else f"{p.get('port')}/{p.get('protocol', 'TCP')}"
        )
        for p in spec.get("ports") or ()
    )
    return [
        _name(obj),
        svc_type,
        cluster_ips[0] if cluster_ips else "<none>",
        external_ip,
        ports or "<none>",
        _age(obj, now),
        _format_labels(spec.get("selector")),
    ]


def _more(items: list[str], count: int, limit: int = 3, empty: str = "<unset>") -> str:
    text = ",".join(items[:limit])
    if count > limit:
        return f"{text} + {count - limit} more..."
    return text or empty


def _endpoints(obj: Obj, now: datetime) -> list[Cell]:
    subsets = obj.get("subsets") or []
    found: list[str] = []
    count = 0
    for ss in subsets:
        addresses = [a.get("ip", "") for a in ss.get("addresses") or ()]
        ports = ss.get("ports") or []
        if not ports:
            count += len(addresses)
            found.extend(addresses)
            continue
        for port in ports:
            count += len(addresses)
            found.extend(
                f"[{ip}]:{port.get('port')}" if ":" in ip else f"{ip}:{port.get('port')}" for ip in addresses
            )
    return [_name(obj), _more(found, count, empty="<none>") if subsets else "<none>", _age(obj, now)]


def _endpoint_slice(obj: Obj, now: datetime) -> list[Cell]:
    ports = [
        str(p["port"]) if p.get("port") is not None else (p.get("name") or "*")
        for p in obj.get("ports") or ()
    ]
    addresses = [a for e in obj.get("endpoints") or () for a in e.get("addresses") or ()]
    return [
        _name(obj),
        obj.get("addressType", ""),
        _more(ports, len(ports)),
        _more(addresses, len(addresses)),
        _age(obj, now),
    ]


# --- cluster and config ---------------------------------------------------------------------------------


def _node(obj: Obj, now: datetime) -> list[Cell]:
    status, spec = obj.get("status") or {}, obj.get("spec") or {}
    conditions = {c.get("type"): c.get("status") for c in status.get("conditions") or ()}
    states = (
        ["Unknown"]
        if "Ready" not in conditions
        else ["Ready" if conditions["Ready"] == "True" else "NotReady"]
    )
    if spec.get("unschedulable"):
        states.append("SchedulingDisabled")
    roles: set[str] = set()
    for key, value in (_d(obj, "metadata", "labels") or {}).items():
        if key.startswith("node-role.kubernetes.io/"):
            roles.add(key.removeprefix("node-role.kubernetes.io/"))
        elif key == "kubernetes.io/role" and value:
            roles.add(value)
    roles.discard("")
    info = status.get("nodeInfo") or {}
    addresses = {a.get("type"): a.get("address") for a in reversed(status.get("addresses") or [])}
    return [
        _name(obj),
        ",".join(states),
        ",".join(sorted(roles)) or "<none>",
        _age(obj, now),
        info.get("kubeletVersion", ""),
        addresses.get("InternalIP") or "<none>",
        addresses.get("ExternalIP") or "<none>",
        info.get("osImage") or "<unknown>",
        info.get("kernelVersion") or "<unknown>",
        info.get("containerRuntimeVersion") or "<unknown>",
    ]


def _namespace(obj: Obj, now: datetime) -> list[Cell]:
    return [_name(obj), _d(obj, "status", "phase") or "", _age(obj, now)]


def _config_map(obj: Obj, now: datetime) -> list[Cell]:
    return [_name(obj), len(obj.get("data") or {}) + len(obj.get("binaryData") or {}), _age(obj, now)]


def _secret(obj: Obj, now: datetime) -> list[Cell]:
    return [_name(obj), obj.get("type", ""), len(obj.get("data") or {}), _age(obj, now)]


def _service_account(obj: Obj, now: datetime) -> list[Cell]:
    return [_name(obj), len(obj.get("secrets") or ()), _age(obj, now)]


def _event_source(obj: Obj) -> str:
    component = _d(obj, "source", "component") or obj.get("reportingComponent") or ""
    host = _d(obj, "source", "host") or obj.get("reportingInstance") or ""
    return f"{component}, {host}" if host else component


def _event(obj: Obj, now: datetime) -> list[Cell]:
    series = obj.get("series")
    if series:
        last_seen = _since(series.get("lastObservedTime"), now)
        count = series.get("count", 0)
    else:
        last_seen = _since(obj.get("lastTimestamp") or obj.get("eventTime"), now)
        count = obj.get("count", 0)
    first_seen = _since(obj.get("firstTimestamp") or obj.get("eventTime"), now)
    involved = obj.get("involvedObject") or {}
    return [
        last_seen,
        obj.get("type", ""),
        obj.get("reason", ""),
        f"{involved.get('kind', '').lower()}/{involved.get('name', '')}",
        involved.get("fieldPath", ""),
        _event_source(obj),
        obj.get("message", ""),
        first_seen,
        int(count or 0),
        _name(obj),
    ]


def _events_v1(obj: Obj, now: datetime) -> list[Cell]:
    """events.k8s.io/v1 Events, shown with core Events' columns under their core field names."""
    core = {
        **obj,
        "involvedObject": obj.get("regarding") or {},
        "message": obj.get("note", ""),
        "source": obj.get("deprecatedSource") or {},
        "count": obj.get("deprecatedCount", 0),
        "firstTimestamp": obj.get("deprecatedFirstTimestamp"),
        "lastTimestamp": obj.get("deprecatedLastTimestamp"),
        "reportingComponent": obj.get("reportingController", ""),
    }
    return _event(core, now)


def _lease(obj: Obj, now: datetime) -> list[Cell]:
    holder = _d(obj, "spec", "holderIdentity")
    return [_name(obj), "<unknown>" if holder is None else holder, _age(obj, now)]


def _csr(obj: Obj, now: datetime) -> list[Cell]:
    types = {c.get("type") for c in _d(obj, "status", "conditions") or []}
    condition = "Denied" if "Denied" in types else "Approved" if "Approved" in types else "Pending"
    condition += ",Failed" if "Failed" in types else ""
    condition += ",Issued" if _d(obj, "status", "certificate") else ""
    seconds = _d(obj, "spec", "expirationSeconds")
    duration = human_duration(seconds) if isinstance(seconds, int) else "<none>"
    spec = _d(obj, "spec") or {}
    return [_name(obj), _age(obj, now), spec.get("signerName", ""), spec.get("username", ""), duration,
            condition]


def _created_at(obj: Obj, now: datetime) -> list[Cell]:
    return [_name(obj), _d(obj, "metadata", "creationTimestamp")]


def _binding(obj: Obj, now: datetime) -> list[Cell]:
    ref = obj.get("roleRef") or {}
    users, groups, sas = [], [], []
    for subject in obj.get("subjects") or ():
        kind, name = subject.get("kind"), subject.get("name", "")
        if kind == "User":
            users.append(name)
        elif kind == "Group":
            groups.append(name)
        elif kind == "ServiceAccount":
            sas.append(f"{subject.get('namespace', '')}:{name}")
    return [
        _name(obj),
        f"{ref.get('kind', '')}/{ref.get('name', '')}",
        _age(obj, now),
        ", ".join(users),
        ", ".join(groups),
        ", ".join(sas),
    ]


_ACCESS_MODES = {
    "ReadWriteOnce": "RWO",
    "ReadOnlyMany": "ROX",
    "ReadWriteMany": "RWX",
    "ReadWriteOncePod": "RWOP",
}


def _modes(modes: list[str] | None) -> str:
    return ",".join(_ACCESS_MODES.get(m, m) for m in modes or ())


def _pv(obj: Obj, now: datetime) -> list[Cell]:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    claim = spec.get("claimRef")
    phase = "Terminating" if _d(obj, "metadata", "deletionTimestamp") else status.get("phase", "")
    return [
        _name(obj),
        str(_d(spec, "capacity", "storage") or ""),
        _modes(spec.get("accessModes")),
        spec.get("persistentVolumeReclaimPolicy", ""),
        phase,
        f"{claim.get('namespace', '')}/{claim.get('name', '')}" if claim else "",
        spec.get("storageClassName", ""),
        spec.get("volumeAttributesClassName") or "<unset>",
        status.get("reason", ""),
        _age(obj, now),
        spec.get("volumeMode") or "<unset>",
    ]


def _pvc(obj: Obj, now: datetime) -> list[Cell]:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    phase = "Terminating" if _d(obj, "metadata", "deletionTimestamp") else status.get("phase", "")
    bound = bool(spec.get("volumeName"))
    return [
        _name(obj),
        phase,
        spec.get("volumeName", ""),
        str(_d(status, "capacity", "storage") or "") if bound else "",
        _modes(status.get("accessModes")) if bound else "",
        spec.get("storageClassName") or "",
        spec.get("volumeAttributesClassName") or "<unset>",
        _age(obj, now),
        spec.get("volumeMode") or "<unset>",
    ]


def _resource_quota(obj: Obj, now: datetime) -> list[Cell]:
    hard, used = _d(obj, "status", "hard") or {}, _d(obj, "status", "used") or {}
    requests: list[str] = []
    limits: list[str] = []
    for name in sorted(hard):
        text = f"{name}: {used.get(name, '0')}/{hard[name]}"
        (limits if name.startswith("limits.") else requests).append(text)
    return [_name(obj), ", ".join(requests), ", ".join(limits), _age(obj, now)]


def _storage_class(obj: Obj, now: datetime) -> list[Cell]:
    name = _name(obj)
    annotations = _d(obj, "metadata", "annotations") or {}
    if "true" in (
        annotations.get("storageclass.kubernetes.io/is-default-class"),
        annotations.get("storageclass.beta.kubernetes.io/is-default-class"),
    ):
        name = f"{name} (default)"
    return [
        name,
        obj.get("provisioner", ""),
        obj.get("reclaimPolicy") or "Delete",
        obj.get("volumeBindingMode") or "Immediate",
        bool(obj.get("allowVolumeExpansion")),
        _age(obj, now),
    ]


def _priority_class(obj: Obj, now: datetime) -> list[Cell]:
    return [
        _name(obj),
        int(obj.get("value", 0)),
        bool(obj.get("globalDefault")),
        _age(obj, now),
        obj.get("preemptionPolicy") or "",
    ]


def _runtime_class(obj: Obj, now: datetime) -> list[Cell]:
    return [_name(obj), obj.get("handler", ""), _age(obj, now)]


def _pod_template(obj: Obj, now: datetime) -> list[Cell]:
    names, images = _containers(_d(obj, "template", "spec"))
    return [_name(obj), names, images, _format_labels(_d(obj, "template", "metadata", "labels"))]


def _col(name: str, type: str = "string", priority: int = 0, description: str = "") -> Column:
    return Column(name, type, description or name, priority)


_WORKLOAD_WIDE = (_CONTAINERS, _IMAGES, _SELECTOR)
_BINDING_COLUMNS = (
    _NAME,
    _col(
        "Role",
        description="RoleRef can reference a Role in the current namespace "
        "or a ClusterRole in the global namespace.",
    ),
    _AGE,
    _col("Users", priority=1),
    _col("Groups", priority=1),
    _col("ServiceAccounts", priority=1),
)
_CREATED_AT_TABLE = _Table((_NAME, _CREATED_AT), _created_at)
_REPLICA_SET_TABLE = _Table(  # ReplicaSets and ReplicationControllers
    (_NAME, _col("Desired", "integer"), _col("Current", "integer"), _col("Ready", "integer"), _AGE,
     *_WORKLOAD_WIDE),
    _replica_set,
)
_EVENT_COLUMNS = (  # core and events.k8s.io Events
    _col("Last Seen"),
    _col("Type"),
    _col("Reason"),
    _col("Object"),
    _col("Subobject", priority=1),
    _col("Source", priority=1),
    _col("Message"),
    _col("First Seen", priority=1),
    _col("Count", priority=1),
    Column("Name", priority=1, format="name", description=_NAME.description),
)

_TABLES: dict[tuple[str, str], _Table] = {
    ("", "Pod"): _Table(
        (
            _NAME,
            _col("Ready", description="The aggregate readiness state of this pod for accepting traffic."),
            _col("Status", description="The aggregate status of the containers in this pod."),
            _col(
                "Restarts",
                description="The number of times the containers in this pod have been "
                "restarted and when the last container in this pod has restarted.",
            ),
            _AGE,
            _col("IP", priority=1),
            _col("Node", priority=1),
            _col("Nominated Node", priority=1),
            _col("Readiness Gates", priority=1),
        ),
        _pod,
    ),
    ("", "PodTemplate"): _Table(
        (_NAME, _col("Containers"), _col("Images"), _col("Pod Labels")), _pod_template
    ),
    ("", "ReplicationController"): _REPLICA_SET_TABLE,
    ("apps", "ReplicaSet"): _REPLICA_SET_TABLE,
    ("apps", "Deployment"): _Table(
        (_NAME, _col("Ready"), _col("Up-to-date"), _col("Available"), _AGE, *_WORKLOAD_WIDE), _deployment
    ),
    ("apps", "StatefulSet"): _Table((_NAME, _col("Ready"), _AGE, _CONTAINERS, _IMAGES), _stateful_set),
    ("apps", "DaemonSet"): _Table(
        (
            _NAME,
            _col("Desired", "integer"),
            _col("Current", "integer"),
            _col("Ready", "integer"),
            _col("Up-to-date", "integer"),
            _col("Available", "integer"),
            _col("Node Selector"),
            _AGE,
            *_WORKLOAD_WIDE,
        ),
        _daemon_set,
    ),
    ("apps", "ControllerRevision"): _Table(
        (_NAME, _col("Controller"), _col("Revision"), _AGE), _controller_revision
    ),
    ("batch", "Job"): _Table(
        (_NAME, _col("Status"), _col("Completions"), _col("Duration"), _AGE, *_WORKLOAD_WIDE), _job
    ),
    ("batch", "CronJob"): _Table(
        (
            _NAME,
            _col("Schedule"),
            _col("Timezone"),
            _col("Suspend", "boolean"),
            _col("Active", "integer"),
            _col("Last Schedule"),
            _AGE,
            *_WORKLOAD_WIDE,
        ),
        _cron_job,
    ),
    ("", "Service"): _Table(
        (
            _NAME,
            _col("Type"),
            _col("Cluster-IP"),
            _col("External-IP"),
            _col("Port(s)"),
            _AGE,
            _col("Selector", priority=1),
        ),
        _service,
    ),
    ("", "Endpoints"): _Table((_NAME, _col("Endpoints"), _AGE), _endpoints),
    ("discovery.k8s.io", "EndpointSlice"): _Table(
        (_NAME, _col("AddressType"), _col("Ports"), _col("Endpoints"), _AGE), _endpoint_slice
    ),
    ("", "Node"): _Table(
        (
            _NAME,
            _col("Status"),
            _col("Roles"),
            _AGE,
            _col("Version"),
            _col("Internal-IP", priority=1),
            _col("External-IP", priority=1),
            _col("OS-Image", priority=1),
            _col("Kernel-Version", priority=1),
            _col("Container-Runtime", priority=1),
        ),
        _node,
    ),
    ("", "Namespace"): _Table((_NAME, _col("Status"), _AGE), _namespace),
    ("", "ConfigMap"): _Table((_NAME, _col("Data"), _AGE), _config_map),
    ("", "Secret"): _Table((_NAME, _col("Type"), _col("Data"), _AGE), _secret),
    ("", "ServiceAccount"): _Table((_NAME, _col("Secrets"), _AGE), _service_account),
    ("", "Event"): _Table(_EVENT_COLUMNS, _event),
    ("events.k8s.io", "Event"): _Table(_EVENT_COLUMNS, _events_v1),
    ("", "PersistentVolume"): _Table(
        (
            _NAME,
            _col("Capacity"),
            _col("Access Modes"),
            _col("Reclaim Policy"),
            _col("Status"),
            _col("Claim"),
            _col("StorageClass"),
            _col("VolumeAttributesClass"),
            _col("Reason"),
            _AGE,
            _col("VolumeMode", priority=1),
        ),
        _pv,
    ),
    ("", "PersistentVolumeClaim"): _Table(
        (
            _NAME,
            _col("Status"),
            _col("Volume"),
            _col("Capacity"),
            _col("Access Modes"),
            _col("StorageClass"),
            _col("VolumeAttributesClass"),
            _AGE,
            _col("VolumeMode", priority=1),
        ),
        _pvc,
    ),
    ("", "ResourceQuota"): _Table((_NAME, _col("Request"), _col("Limit"), _AGE), _resource_quota),
    ("coordination.k8s.io", "Lease"): _Table((_NAME, _col("Holder"), _AGE), _lease),
    ("certificates.k8s.io", "CertificateSigningRequest"): _Table(
        (_NAME, _AGE, _col("SignerName"), _col("Requestor"), _col("RequestedDuration"), _col("Condition")),
        _csr),
    ("rbac.authorization.k8s.io", "Role"): _CREATED_AT_TABLE,
    ("rbac.authorization.k8s.io", "ClusterRole"): _CREATED_AT_TABLE,
    ("rbac.authorization.k8s.io", "RoleBinding"): _Table(_BINDING_COLUMNS, _binding),
    ("rbac.authorization.k8s.io", "ClusterRoleBinding"): _Table(_BINDING_COLUMNS, _binding),
    ("storage.k8s.io", "StorageClass"): _Table(
        (
            _NAME,
            _col("Provisioner"),
            _col("ReclaimPolicy"),
            _col("VolumeBindingMode"),
            _col("AllowVolumeExpansion"),
            _AGE,
        ),
        _storage_class,
    ),
    ("scheduling.k8s.io", "PriorityClass"): _Table(
        (_NAME, _col("Value", "integer"), _col("Global-Default", "boolean"), _AGE, _col("PreemptionPolicy")),
        _priority_class,
    ),
    ("node.k8s.io", "RuntimeClass"): _Table((_NAME, _col("Handler"), _AGE), _runtime_class),
    ("policy", "PodDisruptionBudget"): _Table(
        (_NAME, _col("Min Available"), _col("Max Unavailable"), _col("Allowed Disruptions", "integer"), _AGE),
        _pdb,
    ),
}


@functools.cache
def columns(group: str, kind: str) -> list[Obj]:
    """The columnDefinitions of a kind's table."""
    table = _TABLES.get((group, kind), _CREATED_AT_TABLE)
    return [c.to_dict() for c in table.columns]


def _row_object(info: ResourceInfo, obj: Obj, include_object: str) -> Obj | None:
    if include_object == "None":
        return None
    if include_object == "Object":
        return obj
    return {
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": obj.get("metadata", {}),
    }


def _conditions(info: ResourceInfo, obj: Obj) -> list[Obj] | None:
    """Pods that finished carry a Completed row condition (kubectl hides them unless --show-all)."""
    if (info.group, info.kind) != ("", "Pod"):
        return None
    phase = _d(obj, "status", "phase")
    if phase == "Succeeded":
        return [
            {
                "type": "Completed",
                "status": "True",
                "reason": "Succeeded",
                "message": "The pod has completed successfully.",
            }
        ]
    if phase == "Failed":
        return [{"type": "Completed", "status": "True", "reason": "Failed", "message": "The pod failed."}]
    return None


def to_table(
    info: ResourceInfo,
    objects: list[Obj],
    include_object: str = "Metadata",
    list_meta: Obj | None = None,
    now: datetime | None = None,
) -> Obj:
    """A meta.k8s.io/v1 Table of `objects` (each a full object of `info`'s kind).

    include_object: "Metadata" (default; rows carry PartialObjectMetadata), "Object" or "None".
    list_meta: resourceVersion / continue / remainingItemCount of the list the rows come from.
    """
    now = now or datetime.now(UTC)
    table = _TABLES.get((info.group, info.kind), _CREATED_AT_TABLE)
    rows: list[Obj] = []
    for obj in objects:
        row: Obj = {"cells": table.cells(obj, now)}
        conditions = _conditions(info, obj)
        if conditions:
            row["conditions"] = conditions
        row["object"] = _row_object(info, obj, include_object)
        rows.append(row)
    meta = {
        k: v
        for k, v in (list_meta or {}).items()
        if k in ("resourceVersion", "continue", "remainingItemCount") and v not in (None, "")
    }
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": meta,
        "columnDefinitions": columns(info.group, info.kind),
        "rows": rows,
    }
