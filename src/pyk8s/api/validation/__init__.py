"""Validation per kind, as Kubernetes validates: `validate` runs the common ObjectMeta checks with the
kind's name rule, then the kind's own rules (one module per API group or kind family)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pyk8s.api.errors import Cause
from pyk8s.api.resource import ResourceInfo
from pyk8s.api.validation import _field as f
from pyk8s.api.validation import (
    apps,
    batch,
    certificates,
    config,
    core,
    other,
    pod,
    pod_status,
    quota,
    rbac,
    service,
    storage,
)
from pyk8s.api.validation._meta import (
    NameRule,
    name_is_dns1035_label,
    name_is_dns_label,
    name_is_dns_subdomain,
    name_is_path_segment,
    validate_object_meta,
    validate_object_meta_update,
)

Obj = dict[str, Any]
Validator = Callable[[Obj, Obj | None], list[Cause]]

_RBAC = "rbac.authorization.k8s.io"

VALIDATORS: dict[tuple[str, str], Validator] = {
    ("", "Pod"): pod.validate_pod,
    ("", "PodTemplate"): pod.validate_pod_template,
    ("", "Service"): service.validate_service,
    ("", "ConfigMap"): config.validate_config_map,
    ("", "Secret"): config.validate_secret,
    ("", "Namespace"): core.validate_namespace,
    ("", "Node"): core.validate_node,
    ("", "ServiceAccount"): core.validate_service_account,
    ("", "Endpoints"): service.validate_endpoints,
    ("", "PersistentVolume"): storage.validate_persistent_volume,
    ("", "PersistentVolumeClaim"): storage.validate_persistent_volume_claim,
    ("", "ResourceQuota"): quota.validate_resource_quota,
    ("", "LimitRange"): quota.validate_limit_range,
    ("", "Event"): core.validate_event,
    ("", "ReplicationController"): core.validate_replication_controller,
    ("", "Binding"): other.validate_binding,
    ("apps", "Deployment"): apps.validate_deployment,
    ("apps", "ReplicaSet"): apps.validate_replica_set,
    ("apps", "StatefulSet"): apps.validate_stateful_set,
    ("apps", "DaemonSet"): apps.validate_daemon_set,
    ("apps", "ControllerRevision"): apps.validate_controller_revision,
    ("batch", "Job"): batch.validate_job,
    ("batch", "CronJob"): batch.validate_cron_job,
    ("certificates.k8s.io", "CertificateSigningRequest"): certificates.validate_csr,
    (_RBAC, "Role"): rbac.validate_role,
    (_RBAC, "ClusterRole"): rbac.validate_cluster_role,
    (_RBAC, "RoleBinding"): rbac.validate_role_binding,
    (_RBAC, "ClusterRoleBinding"): rbac.validate_cluster_role_binding,
    ("coordination.k8s.io", "Lease"): other.validate_lease,
    ("node.k8s.io", "RuntimeClass"): other.validate_runtime_class,
    ("storage.k8s.io", "StorageClass"): other.validate_storage_class,
    ("scheduling.k8s.io", "PriorityClass"): other.validate_priority_class,
    ("policy", "PodDisruptionBudget"): other.validate_pod_disruption_budget,
    ("discovery.k8s.io", "EndpointSlice"): other.validate_endpoint_slice,
    ("events.k8s.io", "Event"): other.validate_events_event,
    ("authorization.k8s.io", "SubjectAccessReview"): other.validate_subject_access_review,
    ("authorization.k8s.io", "LocalSubjectAccessReview"): other.validate_subject_access_review,
    ("authorization.k8s.io", "SelfSubjectAccessReview"): other.validate_self_subject_access_review,
}

# What a status subresource write of these kinds is checked for instead of the whole object.
STATUS_VALIDATORS: dict[tuple[str, str], Callable[[Obj, Obj], list[Cause]]] = {
    ("", "Pod"): pod_status.validate_pod_status_update,
}

# Kinds whose names are not DNS subdomains. Services are DNS-1035 labels, namespaces DNS-1123 labels,
# RBAC objects only need to be one URL path segment.
NAME_RULES: dict[tuple[str, str], NameRule] = {
    ("", "Namespace"): name_is_dns_label,
    ("", "Service"): name_is_dns1035_label,
    (_RBAC, "Role"): name_is_path_segment,
    (_RBAC, "ClusterRole"): name_is_path_segment,
    (_RBAC, "RoleBinding"): name_is_path_segment,
    (_RBAC, "ClusterRoleBinding"): name_is_path_segment,
}

# Kinds whose metadata Kubernetes does not validate: create-only requests, and core events.
_NO_META = {
    ("", "Event"),  # core events keep the legacy rules only, for old clients
    ("", "Binding"),
    ("authorization.k8s.io", "SubjectAccessReview"),
    ("authorization.k8s.io", "LocalSubjectAccessReview"),
    ("authorization.k8s.io", "SelfSubjectAccessReview"),
    ("authorization.k8s.io", "SelfSubjectRulesReview"),
    ("authentication.k8s.io", "TokenReview"),
    ("authentication.k8s.io", "SelfSubjectReview"),
}


def validate(
    info: ResourceInfo, obj: dict[str, Any], old: dict[str, Any] | None = None, subresource: str = ""
) -> list[Cause]:
    """Every problem with `obj` (an update of `old` when given, through `subresource`), with field paths;
    [] when valid."""
    if not isinstance(obj, dict):
        return f.type_check("", obj, dict, "an object")
    key = (info.group, info.kind)
    causes: list[Cause] = []
    if key not in _NO_META:
        causes += validate_object_meta(
            obj.get("metadata"), info.namespaced, name_rule=NAME_RULES.get(key, name_is_dns_subdomain)
        )
        # Built-in kinds also hold finalizers without a domain to Kubernetes' own names.
        for fin in f.as_list(f.as_dict(obj.get("metadata")).get("finalizers")):
            causes += f.check("metadata.finalizers", str(fin), core.kube_finalizer_errors)
        if isinstance(old, dict):
            causes += validate_object_meta_update(obj.get("metadata"), old.get("metadata"))
    status_validator = STATUS_VALIDATORS.get(key) if subresource == "status" else None
    if status_validator is not None and isinstance(old, dict):
        return causes + status_validator(obj, old)
    validator = VALIDATORS.get(key)
    if validator is not None:
        causes += validator(obj, old if isinstance(old, dict) else None)
    return causes
