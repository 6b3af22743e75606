"""The smaller groups: leases, runtime classes, storage classes, priority classes, disruption budgets,
endpoint slices, events.k8s.io events, pod bindings and access reviews."""

from __future__ import annotations

from typing import Any

from pyk8s.api.errors import Cause
from pyk8s.api.validation import _field as f
from pyk8s.api.validation import pod, resources
from pyk8s.api.validation._selector import validate_label_selector
from pyk8s.api.validation.apps import int_or_percent, not_more_than_100_percent
from pyk8s.api.validation.core import legacy_event_causes

Obj = dict[str, Any]

_HIGHEST_USER_PRIORITY = 1_000_000_000


def validate_lease(obj: Obj, old: Obj | None) -> list[Cause]:
    spec = f.as_dict(obj.get("spec"))
    causes = f.positive("spec.leaseDurationSeconds", spec.get("leaseDurationSeconds"))
    causes += f.non_negative("spec.leaseTransitions", spec.get("leaseTransitions"))
    causes += f.one_of(
        "spec.strategy", spec.get("strategy"), ("OldestEmulationVersion",), required_when_empty=False
    )
    return causes


def validate_runtime_class(obj: Obj, old: Obj | None) -> list[Cause]:
    handler = str(obj.get("handler") or "")
    causes = f.check("handler", handler, f.dns1123_label)
    overhead = f.as_dict(obj.get("overhead"))
    for name, value in f.as_dict(overhead.get("podFixed")).items():
        causes += resources.quantity(f"overhead.podFixed[{name}]", value)[1]
    scheduling = f.as_dict(obj.get("scheduling"))
    causes += f.validate_labels(scheduling.get("nodeSelector"), "scheduling.nodeSelector")
    causes += pod.validate_tolerations(scheduling.get("tolerations"), "scheduling.tolerations")
    if old is not None:
        causes += f.immutable("handler", obj.get("handler"), old.get("handler"))
    return causes


def validate_storage_class(obj: Obj, old: Obj | None) -> list[Cause]:
    causes: list[Cause] = []
    provisioner = obj.get("provisioner")
    if not provisioner:
        causes.append(f.required("provisioner", ""))
    else:
        causes += f.check("provisioner", str(provisioner).lower(), f.qualified_name)
    causes += f.one_of(
        "reclaimPolicy", obj.get("reclaimPolicy"), ("Delete", "Retain"), required_when_empty=False
    )
    causes += f.one_of(
        "volumeBindingMode", obj.get("volumeBindingMode"), ("Immediate", "WaitForFirstConsumer")
    )
    params = f.as_dict(obj.get("parameters"))
    if len(params) > 512:
        causes.append(Cause("FieldValueTooLong", "Too long: Provisioner Parameters exceeded 512 entries",
                            "parameters"))  # fmt: skip
    causes += [f.invalid("parameters", key, "field can not be empty.") for key in params if not key]
    if old is not None:
        for key in ("parameters", "provisioner", "reclaimPolicy"):
            if obj.get(key) != old.get(key):
                causes.append(f.forbidden(key, f"updates to {key} are forbidden."))
        causes += f.immutable("volumeBindingMode", obj.get("volumeBindingMode"), old.get("volumeBindingMode"))
    return causes


_SYSTEM_PRIORITY_CLASSES = {"system-node-critical": 2000001000, "system-cluster-critical": 2000000000}


def _system_priority_class_error(name: str, value: Any, global_default: Any) -> str:
    """IsKnownSystemPriorityClass's complaint, or "" for a known system class."""
    if name not in _SYSTEM_PRIORITY_CLASSES:
        return f"{name} is not a known system priority class"
    if value != _SYSTEM_PRIORITY_CLASSES[name]:
        return f"value of {name} PriorityClass must be {_SYSTEM_PRIORITY_CLASSES[name]}"
    if global_default is True:
        return f"globalDefault of {name} PriorityClass must be false"
    return ""


def validate_priority_class(obj: Obj, old: Obj | None) -> list[Cause]:
    causes: list[Cause] = []
    name = str(f.as_dict(obj.get("metadata")).get("name") or "")
    value = obj.get("value")
    causes += f.type_check("value", value, int, "an integer")
    if name.startswith("system-"):
        err = _system_priority_class_error(name, value, obj.get("globalDefault"))
        if err:
            reserved = "priority class names with 'system-' prefix are reserved for system use only"
            causes.append(f.forbidden("metadata.name", f"{reserved}. error: {err}"))
    elif f.is_int(value) and value > _HIGHEST_USER_PRIORITY:
        causes.append(f.forbidden("value", f"maximum allowed value of a user defined priority is "
                                           f"{_HIGHEST_USER_PRIORITY}"))  # fmt: skip
    causes += f.one_of("preemptionPolicy", obj.get("preemptionPolicy"), ("PreemptLowerPriority", "Never"),
                       required_when_empty=False)  # fmt: skip
    if old is not None:
        if value != old.get("value"):
            causes.append(f.forbidden("value", "may not be changed in an update."))
        causes += f.immutable("preemptionPolicy", obj.get("preemptionPolicy"), old.get("preemptionPolicy"))
    return causes


def validate_pod_disruption_budget(obj: Obj, old: Obj | None) -> list[Cause]:
    spec = f.as_dict(obj.get("spec"))
    causes: list[Cause] = []
    if spec.get("minAvailable") is not None and spec.get("maxUnavailable") is not None:
        causes.append(f.invalid("spec", spec, "minAvailable and maxUnavailable cannot be both set"))
    for key in ("minAvailable", "maxUnavailable"):
        causes += int_or_percent(spec.get(key), f"spec.{key}")
        causes += not_more_than_100_percent(spec.get(key), f"spec.{key}")
    causes += validate_label_selector(spec.get("selector"), "spec.selector")
    causes += f.one_of(
        "spec.unhealthyPodEvictionPolicy",
        spec.get("unhealthyPodEvictionPolicy"),
        ("AlwaysAllow", "IfHealthyBudget"),
        required_when_empty=False,
    )
    return causes


_ADDRESS_TYPES = ("FQDN", "IPv4", "IPv6")


def _address_errors(address_type: str, address: str) -> list[str]:
    if address_type == "FQDN":
        return f.dns1123_subdomain(address)
    errs = f.ip_address(address)
    if not errs and (":" in address) != (address_type == "IPv6"):
        return [f"must be a valid {address_type} address"]
    return [f"must be a valid {address_type} address"] if errs else []


def validate_endpoint_slice(obj: Obj, old: Obj | None) -> list[Cause]:
    causes: list[Cause] = []
    address_type = obj.get("addressType")
    endpoints = f.as_list(obj.get("endpoints"))
    if len(endpoints) > 1000:
        causes.append(f.too_many("endpoints", len(endpoints), 1000))
    for i, ep in enumerate(endpoints):
        p = f"endpoints[{i}]"
        ep = f.as_dict(ep)
        addresses = f.as_list(ep.get("addresses"))
        if not addresses:
            causes.append(f.required(f"{p}.addresses", "must contain at least 1 address"))
        elif len(addresses) > 100:
            causes.append(f.too_many(f"{p}.addresses", len(addresses), 100))
        if address_type in _ADDRESS_TYPES:
            for j, addr in enumerate(addresses):
                causes += [
                    f.invalid(f"{p}.addresses[{j}]", addr, m)
                    for m in _address_errors(str(address_type), str(addr))
                ]
        if ep.get("hostname"):
            causes += f.check(f"{p}.hostname", str(ep["hostname"]), f.dns1123_label)
        if ep.get("nodeName"):
            causes += f.check(f"{p}.nodeName", str(ep["nodeName"]), f.dns1123_subdomain)
    names: set[str] = set()
    for i, port in enumerate(f.as_list(obj.get("ports"))):
        p = f"ports[{i}]"
        port = f.as_dict(port)
        name = str(port.get("name") or "")
        if name:
            causes += f.check(f"{p}.name", name, f.dns1123_label)
        if name in names:
            causes.append(f.duplicate(f"{p}.name", name))
        names.add(name)
        causes += f.one_of(f"{p}.protocol", port.get("protocol"), pod.PROTOCOLS)
        if port.get("port") is not None:
            causes += [f.invalid(f"{p}.port", port["port"], m) for m in f.port_number(port["port"])]
    if old is None:
        causes += f.one_of("addressType", address_type, _ADDRESS_TYPES)
    else:
        causes += f.immutable("addressType", address_type, old.get("addressType"))
    return causes


def validate_events_event(obj: Obj, old: Obj | None) -> list[Cause]:
    """events.k8s.io/v1: the legacy rules, then the strict ones — an eventTime, a Normal or Warning type,
    and none of the deprecated core fields."""
    causes = legacy_event_causes(obj, involved=f.as_dict(obj.get("regarding")), message=obj.get("note"),
                                 reporting_field="reportingController")  # fmt: skip
    series = obj.get("series")
    if series is not None:
        series = f.as_dict(series)
        if not f.is_int(series.get("count")) or series["count"] < 2:
            causes.append(f.invalid("series.count", "", "should be at least 2"))
        if not series.get("lastObservedTime"):
            causes.append(f.required("series.lastObservedTime", ""))
    if not obj.get("eventTime"):
        causes.append(f.required("eventTime", ""))
    if obj.get("type") not in ("Normal", "Warning"):
        causes.append(f.invalid("type", "", f"has invalid value: {obj.get('type') or ''}"))
    deprecated = (
        ("deprecatedFirstTimestamp", "firstTimestamp"),
        ("deprecatedLastTimestamp", "lastTimestamp"),
        ("deprecatedCount", "count"),
    )
    for key, path in deprecated:
        if obj.get(key):
            causes.append(f.invalid(path, "", "needs to be unset"))
    source = f.as_dict(obj.get("deprecatedSource"))
    if source.get("component") or source.get("host"):
        causes.append(f.invalid("deprecatedSource", "", "needs to be unset"))
    return causes


def validate_binding(obj: Obj, old: Obj | None) -> list[Cause]:
    target = f.as_dict(obj.get("target"))
    causes: list[Cause] = []
    if target.get("kind") and target["kind"] != "Node":
        causes.append(f.not_supported("target.kind", target["kind"], ["Node", "<empty>"]))
    if not target.get("name"):
        causes.append(f.required("target.name", ""))
    return causes


def _validate_access_attributes(spec: Obj) -> list[Cause]:
    has_resource = spec.get("resourceAttributes") is not None
    has_non_resource = spec.get("nonResourceAttributes") is not None
    if has_resource == has_non_resource:
        return [
            f.invalid(
                "spec.resourceAttributes",
                spec.get("resourceAttributes"),
                "exactly one of nonResourceAttributes or resourceAttributes must be specified",
            )
        ]
    return []


def validate_subject_access_review(obj: Obj, old: Obj | None) -> list[Cause]:
    spec = f.as_dict(obj.get("spec"))
    causes = _validate_access_attributes(spec)
    if not spec.get("user") and not spec.get("groups"):
        causes.append(
            f.invalid("spec.user", spec.get("user") or "", "at least one of user or group must be specified")
        )
    return causes


def validate_self_subject_access_review(obj: Obj, old: Obj | None) -> list[Cause]:
    return _validate_access_attributes(f.as_dict(obj.get("spec")))
