"""Defaulting per kind, as Kubernetes defaults (its SetDefaults_* functions, plus the few fields its
create strategies fill that `kubectl get -o yaml` shows). Runs before validation, in place."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pyk8s.api.defaults import apps, batch, core, other, pod
from pyk8s.api.resource import ResourceInfo

Defaulter = Callable[[dict[str, Any]], None]

_RBAC = other.RBAC_GROUP

DEFAULTERS: dict[tuple[str, str], Defaulter] = {
    ("", "Pod"): pod.pod,
    ("", "PodTemplate"): core.pod_template,
    ("", "ReplicationController"): core.replication_controller,
    ("", "Service"): core.service,
    ("", "Secret"): core.secret,
    ("", "Namespace"): core.namespace,
    ("", "PersistentVolume"): core.persistent_volume,
    ("", "PersistentVolumeClaim"): core.persistent_volume_claim,
    ("", "Endpoints"): core.endpoints,
    ("", "Node"): core.node,
    ("", "LimitRange"): core.limit_range,
    ("", "ResourceQuota"): core.resource_quota,
    ("apps", "Deployment"): apps.deployment,
    ("apps", "ReplicaSet"): apps.replica_set,
    ("apps", "StatefulSet"): apps.stateful_set,
    ("apps", "DaemonSet"): apps.daemon_set,
    ("batch", "Job"): batch.job,
    ("batch", "CronJob"): batch.cron_job,
    (_RBAC, "RoleBinding"): other.role_binding,
    (_RBAC, "ClusterRoleBinding"): other.role_binding,
    ("storage.k8s.io", "StorageClass"): other.storage_class,
    ("scheduling.k8s.io", "PriorityClass"): other.priority_class,
    ("node.k8s.io", "RuntimeClass"): other.runtime_class,
    ("discovery.k8s.io", "EndpointSlice"): other.endpoint_slice,
}


# Kinds whose defaulters leave status alone: a status write keeps the stored spec and metadata, defaulted
# when written, so it has nothing to default (pods/status is most of a busy cluster's writes).
_STATUS_UNTOUCHED = {("", "Pod")}


def apply_defaults(info: ResourceInfo, obj: dict[str, Any], subresource: str = "") -> None:
    """Fill the defaults Kubernetes fills (restartPolicy, protocol TCP, …) into `obj`, in place."""
    if subresource == "status" and (info.group, info.kind) in _STATUS_UNTOUCHED:
        return
    defaulter = DEFAULTERS.get((info.group, info.kind))
    if defaulter is not None and isinstance(obj, dict):
        defaulter(obj)
