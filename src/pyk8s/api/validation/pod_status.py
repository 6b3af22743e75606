"""ValidatePodStatusUpdate: a pods/status write is checked for what it may change. Its spec is the stored
one (the status strategy keeps it), valid when it was written, so it is not validated again: on a busy
cluster this is most pod writes (every kubelet status update)."""

from __future__ import annotations

import ipaddress
from typing import Any

from pyk8s.api.errors import Cause
from pyk8s.api.validation import _field as f

Obj = dict[str, Any]


def validate_pod_status_update(obj: Obj, old: Obj) -> list[Cause]:
    spec, status, old_status = f.as_dict(obj.get("spec")), f.as_dict(obj.get("status")), f.as_dict(
        old.get("status"))
    causes: list[Cause] = []
    nominated = status.get("nominatedNodeName")
    if nominated and nominated != old_status.get("nominatedNodeName"):
        causes += f.check("status.nominatedNodeName", f.key(nominated), f.dns1123_subdomain)
    for key in ("containerStatuses", "initContainerStatuses"):
        causes += _state_transitions(spec.get("restartPolicy", "Always"), f.as_list(status.get(key)),
                                     f.as_list(old_status.get(key)), f"status.{key}")
    causes += _ips(status.get("podIPs"), "status.podIPs")
    causes += _ips(status.get("hostIPs"), "status.hostIPs")
    return causes


def _state_transitions(policy: Any, new: list[Any], old: list[Any], path: str) -> list[Cause]:
    """ValidateContainerStateTransition: a container that will not restart stays terminated."""
    if policy == "Always":
        return []
    before = {f.as_dict(s).get("name"): f.as_dict(f.as_dict(s).get("state")) for s in old}
    causes = []
    for i, s in enumerate(new):
        was = f.as_dict(before.get(f.as_dict(s).get("name"))).get("terminated")
        if not isinstance(was, dict) or "terminated" in f.as_dict(f.as_dict(s).get("state")):
            continue
        if policy == "Never" or (policy == "OnFailure" and was.get("exitCode") == 0):
            detail = "may not be transitioned to non-terminated state"
            causes.append(f.forbidden(f"{path}[{i}].state", detail))
    return causes


def _ips(items: Any, path: str) -> list[Cause]:
    """validatePodIPs / validateHostIPs: valid addresses, no repeats, at most one per family."""
    if items is None:
        return []
    causes: list[Cause] = []
    ips = [f.key(f.as_dict(item).get("ip", "")) for item in f.as_list(items)]
    families: list[int] = []
    for i, ip in enumerate(ips):
        errs = f.ip_address(ip)
        causes += [f.invalid(f"{path}[{i}].ip", ip, msg) for msg in errs]
        if ip in ips[:i]:
            causes.append(f.duplicate(f"{path}[{i}].ip", ip))
        if not errs:
            families.append(ipaddress.ip_address(ip).version)
    if len(families) > 2 or (len(families) == 2 and families[0] == families[1]):
        causes.append(f.invalid(path, ips, "may specify no more than one IP for each IP family"))
    return causes
