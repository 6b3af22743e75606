"""Core (v1) kinds without a module of their own: namespaces, nodes, service accounts, events,
replication controllers."""

from __future__ import annotations

from typing import Any

from pyk8s.api.errors import Cause
from pyk8s.api.validation import _field as f
from pyk8s.api.validation import pod

Obj = dict[str, Any]


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
