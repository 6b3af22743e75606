"""Defaults of the smaller groups: RBAC subjects and role refs, storage and priority classes, endpoint
slice ports."""

from __future__ import annotations

from pyk8s.api.defaults._util import Obj, canonical_resources, child, dicts, set_default

RBAC_GROUP = "rbac.authorization.k8s.io"


def role_binding(obj: Obj) -> None:
    set_default(child(obj, "roleRef"), "apiGroup", RBAC_GROUP)
    for subject in dicts(obj.get("subjects")):
        if subject.get("kind") in ("User", "Group"):
            set_default(subject, "apiGroup", RBAC_GROUP)
        elif subject.get("kind") == "ServiceAccount" and subject.get("apiGroup") is None:
            subject["apiGroup"] = ""


def storage_class(obj: Obj) -> None:
    set_default(obj, "reclaimPolicy", "Delete")
    set_default(obj, "volumeBindingMode", "Immediate")


def priority_class(obj: Obj) -> None:
    set_default(obj, "preemptionPolicy", "PreemptLowerPriority")


def endpoint_slice(obj: Obj) -> None:
    for port in dicts(obj.get("ports")):
        set_default(port, "protocol", "TCP")
        if "name" not in port:
            port["name"] = ""


def runtime_class(obj: Obj) -> None:
    canonical_resources(obj.get("overhead"), "podFixed")
