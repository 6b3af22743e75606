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

def _top(spec: str | None = None, status: str | None = None, **fields: FieldPatch) -> dict[str, FieldPatch]:
    """A top-level object: its ObjectMeta, its spec and status definitions, then any other fields."""
    top = {"metadata": _obj(_OBJECT_META)}
    if spec is not None:
        top["spec"] = _obj(spec)
    if status is not None:
        top["status"] = _obj(status)
    return top | fields


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
    CORE + "Pod": _top(CORE + "PodSpec", CORE + "PodStatus"),
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
    CORE + "PodTemplateSpec": _top(CORE + "PodSpec"),
    CORE + "PodTemplate": _top(template=_obj(CORE + "PodTemplateSpec")),
    CORE + "ReplicationController": _top(CORE + "ReplicationControllerSpec",
                                         CORE + "ReplicationControllerStatus"),
    CORE + "ReplicationControllerSpec": {"template": _obj(CORE + "PodTemplateSpec")},
    CORE + "ReplicationControllerStatus": {"conditions": _CONDITIONS},
    CORE + "Service": _top(CORE + "ServiceSpec", CORE + "ServiceStatus"),
    CORE + "ServiceSpec": {"ports": _merge("port")},
    CORE + "ServiceStatus": {"conditions": _CONDITIONS},
    CORE + "Node": _top(CORE + "NodeSpec", CORE + "NodeStatus"),
    CORE + "NodeSpec": {"podCIDRs": _merge()},  # taints are atomic in Kubernetes
    CORE + "NodeStatus": {"conditions": _CONDITIONS, "addresses": _merge("type")},
    CORE + "Namespace": _top(status=CORE + "NamespaceStatus"),
    CORE + "NamespaceStatus": {"conditions": _CONDITIONS},
    CORE + "PersistentVolumeClaim": _top(status=CORE + "PersistentVolumeClaimStatus"),
    CORE + "PersistentVolumeClaimStatus": {"conditions": _CONDITIONS},
    CORE + "ServiceAccount": _top(secrets=_merge("name")),
    # --- apps/v1 -------------------------------------------------------------------------------------------
    APPS + "Deployment": _top(APPS + "DeploymentSpec", APPS + "DeploymentStatus"),
    APPS + "DeploymentSpec": {"template": _obj(CORE + "PodTemplateSpec"),
                              "strategy": FieldPatch("retainKeys")},
    APPS + "DeploymentStatus": {"conditions": _CONDITIONS},
    APPS + "ReplicaSet": _top(APPS + "ReplicaSetSpec", APPS + "ReplicaSetStatus"),
    APPS + "ReplicaSetSpec": {"template": _obj(CORE + "PodTemplateSpec")},
    APPS + "ReplicaSetStatus": {"conditions": _CONDITIONS},
    APPS + "StatefulSet": _top(APPS + "StatefulSetSpec", APPS + "StatefulSetStatus"),
    APPS + "StatefulSetSpec": {"template": _obj(CORE + "PodTemplateSpec")},
    APPS + "StatefulSetStatus": {"conditions": _CONDITIONS},
    APPS + "DaemonSet": _top(APPS + "DaemonSetSpec", APPS + "DaemonSetStatus"),
    APPS + "DaemonSetSpec": {"template": _obj(CORE + "PodTemplateSpec")},
    APPS + "DaemonSetStatus": {"conditions": _CONDITIONS},
    # --- batch/v1 ------------------------------------------------------------------------------------------
    BATCH + "Job": _top(BATCH + "JobSpec", BATCH + "JobStatus"),
    BATCH + "JobSpec": {"template": _obj(CORE + "PodTemplateSpec")},
    BATCH + "JobStatus": {"conditions": _CONDITIONS},
    BATCH + "JobTemplateSpec": _top(BATCH + "JobSpec"),
    BATCH + "CronJob": _top(BATCH + "CronJobSpec"),
    BATCH + "CronJobSpec": {"jobTemplate": _obj(BATCH + "JobTemplateSpec")},
    # --- others with conditions or merge lists ------------------------------------------------------------
    AUTOSCALING_V2 + "HorizontalPodAutoscaler": _top(status=AUTOSCALING_V2 + "HorizontalPodAutoscalerStatus"),
    AUTOSCALING_V2 + "HorizontalPodAutoscalerStatus": {"conditions": _CONDITIONS},
    POLICY + "PodDisruptionBudget": _top(status=POLICY + "PodDisruptionBudgetStatus"),
    POLICY + "PodDisruptionBudgetStatus": {"conditions": _CONDITIONS},
    ADMISSION + "MutatingWebhookConfiguration": _top(webhooks=_merge("name")),
    ADMISSION + "ValidatingWebhookConfiguration": _top(webhooks=_merge("name")),
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
    PATCH_META.setdefault(_definition, _top())

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
