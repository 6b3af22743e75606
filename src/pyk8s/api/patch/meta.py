"""Patch metadata of the built-in kinds: which lists merge, and by which key.

This is the table Kubernetes keeps in its Go struct tags (`patchStrategy:"merge" patchMergeKey:"name"`)
and publishes as `x-kubernetes-patch-strategy` / `x-kubernetes-patch-merge-key` in OpenAPI. The strategic
merge patcher and server-side apply walk it from a kind's top-level definition down; the OpenAPI
generator imports it to emit those extensions.

Only fields that carry patch metadata, or lead to fields that do, are listed. A field that is absent is
atomic for lists (a patch replaces it) and merged key by key for maps — Kubernetes' default.
"""

from __future__ import annotations

from dataclasses import dataclass

CORE = "io.k8s.api.core.v1."
APPS = "io.k8s.api.apps.v1."
BATCH = "io.k8s.api.batch.v1."
META = "io.k8s.apimachinery.pkg.apis.meta.v1."
AUTOSCALING_V2 = "io.k8s.api.autoscaling.v2."
POLICY = "io.k8s.api.policy.v1."
ADMISSION = "io.k8s.api.admissionregistration.v1."


@dataclass(frozen=True, slots=True)
class FieldPatch:
    """Patch metadata of one field.

    strategy: "" (none), "merge", "retainKeys", "merge,retainKeys" or "replace" (Kubernetes' spelling).
    merge_key: the key that identifies list elements (None for primitive lists and non-lists).
    items: the definition of the elements of a list (or the values of a map), when it has metadata.
    type: the definition of the value itself when it is an object with metadata below it.
    """

    strategy: str = ""
    merge_key: str | None = None
    items: str | None = None
    type: str | None = None

    @property
    def merges(self) -> bool:
        return "merge" in self.strategy.split(",")


def _merge(key: str | None = None, items: str | None = None, strategy: str = "merge") -> FieldPatch:
    return FieldPatch(strategy, key, items, None)


def _obj(definition: str) -> FieldPatch:
    return FieldPatch(type=definition)


_OBJECT_META = META + "ObjectMeta"
_CONDITIONS = _merge("type")  # status conditions: one entry per condition type

_CONTAINER_FIELDS = {
    "ports": _merge("containerPort"),
    "env": _merge("name"),
    "volumeMounts": _merge("mountPath"),
    "volumeDevices": _merge("devicePath"),
}

PATCH_META: dict[str, dict[str, FieldPatch]] = {
    _OBJECT_META: {
        "finalizers": _merge(),
        "ownerReferences": _merge("uid"),
    },
    # --- core/v1 -------------------------------------------------------------------------------------------
    CORE + "Pod": {"metadata": _obj(_OBJECT_META), "spec": _obj(CORE + "PodSpec"),
                   "status": _obj(CORE + "PodStatus")},
    CORE + "PodSpec": {
        "volumes": _merge("name", CORE + "Volume", "merge,retainKeys"),
        "initContainers": _merge("name", CORE + "Container"),
        "containers": _merge("name", CORE + "Container"),
        "ephemeralContainers": _merge("name", CORE + "EphemeralContainer"),
        "imagePullSecrets": _merge("name"),
        "hostAliases": _merge("ip"),
        "topologySpreadConstraints": _merge("topologyKey"),
        "schedulingGates": _merge("name"),
        "resourceClaims": _merge("name", strategy="merge,retainKeys"),
    },
    CORE + "Container": dict(_CONTAINER_FIELDS),
    CORE + "EphemeralContainer": dict(_CONTAINER_FIELDS),
    CORE + "PodStatus": {
        "conditions": _CONDITIONS,
        "podIPs": _merge("ip"),
        "hostIPs": _merge("ip"),
        "resourceClaimStatuses": _merge("name", strategy="merge,retainKeys"),
    },
    CORE + "PodTemplateSpec": {"metadata": _obj(_OBJECT_META), "spec": _obj(CORE + "PodSpec")},
    CORE + "PodTemplate": {"metadata": _obj(_OBJECT_META), "template": _obj(CORE + "PodTemplateSpec")},
    CORE + "ReplicationController": {"metadata": _obj(_OBJECT_META),
                                     "spec": _obj(CORE + "ReplicationControllerSpec"),
                                     "status": _obj(CORE + "ReplicationControllerStatus")},
    CORE + "ReplicationControllerSpec": {"template": _obj(CORE + "PodTemplateSpec")},
    CORE + "ReplicationControllerStatus": {"conditions": _CONDITIONS},
    CORE + "Service": {"metadata": _obj(_OBJECT_META), "spec": _obj(CORE + "ServiceSpec"),
                       "status": _obj(CORE + "ServiceStatus")},
    CORE + "ServiceSpec": {"ports": _merge("port")},
    CORE + "ServiceStatus": {"conditions": _CONDITIONS},
    CORE + "Node": {"metadata": _obj(_OBJECT_META), "spec": _obj(CORE + "NodeSpec"),
                    "status": _obj(CORE + "NodeStatus")},
    CORE + "NodeSpec": {"podCIDRs": _merge()},  # taints are atomic in Kubernetes
    CORE + "NodeStatus": {"conditions": _CONDITIONS, "addresses": _merge("type")},
    CORE + "Namespace": {"metadata": _obj(_OBJECT_META), "status": _obj(CORE + "NamespaceStatus")},
    CORE + "NamespaceStatus": {"conditions": _CONDITIONS},
    CORE + "PersistentVolumeClaim": {"metadata": _obj(_OBJECT_META),
                                     "status": _obj(CORE + "PersistentVolumeClaimStatus")},
    CORE + "PersistentVolumeClaimStatus": {"conditions": _CONDITIONS},
    CORE + "ServiceAccount": {"metadata": _obj(_OBJECT_META), "secrets": _merge("name")},
    # --- apps/v1 -------------------------------------------------------------------------------------------
    APPS + "Deployment": {"metadata": _obj(_OBJECT_META), "spec": _obj(APPS + "DeploymentSpec"),
                          "status": _obj(APPS + "DeploymentStatus")},
    APPS + "DeploymentSpec": {"template": _obj(CORE + "PodTemplateSpec"),
                              "strategy": FieldPatch("retainKeys")},
    APPS + "DeploymentStatus": {"conditions": _CONDITIONS},
    APPS + "ReplicaSet": {"metadata": _obj(_OBJECT_META), "spec": _obj(APPS + "ReplicaSetSpec"),
                          "status": _obj(APPS + "ReplicaSetStatus")},
    APPS + "ReplicaSetSpec": {"template": _obj(CORE + "PodTemplateSpec")},
    APPS + "ReplicaSetStatus": {"conditions": _CONDITIONS},
    APPS + "StatefulSet": {"metadata": _obj(_OBJECT_META), "spec": _obj(APPS + "StatefulSetSpec"),
                           "status": _obj(APPS + "StatefulSetStatus")},
    APPS + "StatefulSetSpec": {"template": _obj(CORE + "PodTemplateSpec")},
    APPS + "StatefulSetStatus": {"conditions": _CONDITIONS},
    APPS + "DaemonSet": {"metadata": _obj(_OBJECT_META), "spec": _obj(APPS + "DaemonSetSpec"),
                         "status": _obj(APPS + "DaemonSetStatus")},
    APPS + "DaemonSetSpec": {"template": _obj(CORE + "PodTemplateSpec")},
    APPS + "DaemonSetStatus": {"conditions": _CONDITIONS},
    # --- batch/v1 ------------------------------------------------------------------------------------------
    BATCH + "Job": {"metadata": _obj(_OBJECT_META), "spec": _obj(BATCH + "JobSpec"),
                    "status": _obj(BATCH + "JobStatus")},
    BATCH + "JobSpec": {"template": _obj(CORE + "PodTemplateSpec")},
    BATCH + "JobStatus": {"conditions": _CONDITIONS},
    BATCH + "JobTemplateSpec": {"metadata": _obj(_OBJECT_META), "spec": _obj(BATCH + "JobSpec")},
    BATCH + "CronJob": {"metadata": _obj(_OBJECT_META), "spec": _obj(BATCH + "CronJobSpec")},
    BATCH + "CronJobSpec": {"jobTemplate": _obj(BATCH + "JobTemplateSpec")},
    # --- others with conditions or merge lists ------------------------------------------------------------
    AUTOSCALING_V2 + "HorizontalPodAutoscaler": {
        "metadata": _obj(_OBJECT_META), "status": _obj(AUTOSCALING_V2 + "HorizontalPodAutoscalerStatus")},
    AUTOSCALING_V2 + "HorizontalPodAutoscalerStatus": {"conditions": _CONDITIONS},
    POLICY + "PodDisruptionBudget": {"metadata": _obj(_OBJECT_META),
                                     "status": _obj(POLICY + "PodDisruptionBudgetStatus")},
    POLICY + "PodDisruptionBudgetStatus": {"conditions": _CONDITIONS},
    ADMISSION + "MutatingWebhookConfiguration": {"metadata": _obj(_OBJECT_META),
                                                 "webhooks": _merge("name")},
    ADMISSION + "ValidatingWebhookConfiguration": {"metadata": _obj(_OBJECT_META),
                                                   "webhooks": _merge("name")},
}

# (group, kind) → the definition of its top-level object. Kinds with no patch metadata below metadata
# (ConfigMap, Secret, RBAC …) map to a generic entry so their metadata still merges as Kubernetes.
_KINDS_WITH_META = {
    ("", "Pod"): CORE + "Pod",
    ("", "PodTemplate"): CORE + "PodTemplate",
    ("", "ReplicationController"): CORE + "ReplicationController",
    ("", "Service"): CORE + "Service",
    ("", "Node"): CORE + "Node",
    ("", "Namespace"): CORE + "Namespace",
    ("", "PersistentVolumeClaim"): CORE + "PersistentVolumeClaim",
    ("", "ServiceAccount"): CORE + "ServiceAccount",
    ("apps", "Deployment"): APPS + "Deployment",
    ("apps", "ReplicaSet"): APPS + "ReplicaSet",
    ("apps", "StatefulSet"): APPS + "StatefulSet",
    ("apps", "DaemonSet"): APPS + "DaemonSet",
    ("batch", "Job"): BATCH + "Job",
    ("batch", "CronJob"): BATCH + "CronJob",
    ("autoscaling", "HorizontalPodAutoscaler"): AUTOSCALING_V2 + "HorizontalPodAutoscaler",
    ("policy", "PodDisruptionBudget"): POLICY + "PodDisruptionBudget",
    ("admissionregistration.k8s.io", "MutatingWebhookConfiguration"):
        ADMISSION + "MutatingWebhookConfiguration",
    ("admissionregistration.k8s.io", "ValidatingWebhookConfiguration"):
        ADMISSION + "ValidatingWebhookConfiguration",
}

# Built-in kinds whose only patch metadata is ObjectMeta's.
_PLAIN_KINDS = {
    ("", "ConfigMap"): CORE + "ConfigMap",
    ("", "Secret"): CORE + "Secret",
    ("", "Endpoints"): CORE + "Endpoints",
    ("", "Event"): CORE + "Event",
    ("", "LimitRange"): CORE + "LimitRange",
    ("", "ResourceQuota"): CORE + "ResourceQuota",
    ("", "PersistentVolume"): CORE + "PersistentVolume",
    ("apps", "ControllerRevision"): APPS + "ControllerRevision",
    ("coordination.k8s.io", "Lease"): "io.k8s.api.coordination.v1.Lease",
    ("discovery.k8s.io", "EndpointSlice"): "io.k8s.api.discovery.v1.EndpointSlice",
    ("networking.k8s.io", "Ingress"): "io.k8s.api.networking.v1.Ingress",
    ("networking.k8s.io", "IngressClass"): "io.k8s.api.networking.v1.IngressClass",
    ("networking.k8s.io", "NetworkPolicy"): "io.k8s.api.networking.v1.NetworkPolicy",
    ("rbac.authorization.k8s.io", "Role"): "io.k8s.api.rbac.v1.Role",
    ("rbac.authorization.k8s.io", "ClusterRole"): "io.k8s.api.rbac.v1.ClusterRole",
    ("rbac.authorization.k8s.io", "RoleBinding"): "io.k8s.api.rbac.v1.RoleBinding",
    ("rbac.authorization.k8s.io", "ClusterRoleBinding"): "io.k8s.api.rbac.v1.ClusterRoleBinding",
    ("storage.k8s.io", "StorageClass"): "io.k8s.api.storage.v1.StorageClass",
    ("scheduling.k8s.io", "PriorityClass"): "io.k8s.api.scheduling.v1.PriorityClass",
    ("node.k8s.io", "RuntimeClass"): "io.k8s.api.node.v1.RuntimeClass",
    ("certificates.k8s.io", "CertificateSigningRequest"):
        "io.k8s.api.certificates.v1.CertificateSigningRequest",
    ("apiextensions.k8s.io", "CustomResourceDefinition"):
        "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.CustomResourceDefinition",
}
for _definition in _PLAIN_KINDS.values():
    PATCH_META.setdefault(_definition, {"metadata": _obj(_OBJECT_META)})

KIND_DEFINITIONS: dict[tuple[str, str], str] = {**_KINDS_WITH_META, **_PLAIN_KINDS}


def definition_for(group: str, kind: str) -> str | None:
    """The definition a kind's objects start at, or None for kinds without patch metadata (CRDs)."""
    return KIND_DEFINITIONS.get((group, kind))


def field_patch(definition: str | None, field: str) -> FieldPatch:
    """The metadata of `field` in `definition`; the default (atomic list, merged map) when unknown."""
    if definition is None:
        return _NONE
    return PATCH_META.get(definition, {}).get(field, _NONE)


_NONE = FieldPatch()
