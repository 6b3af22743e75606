"""The built-in resources pyk8s serves, with the names, scope, verbs, subresources and field selectors that
Kubernetes 1.32 advertises for them (`kubectl api-resources -o wide` against a real cluster).

A create-only resource (bindings, TokenReview, the access reviews) has `verbs == ("create",)`: its result
is computed or it acts on another object, nothing is stored under its own name.
"""

from __future__ import annotations

from pyk8s.api.resource import ALL_VERBS, ResourceInfo

CREATE_ONLY = ("create",)
# Namespaces cannot be deleted as a collection.
_NS_VERBS = ("create", "delete", "get", "list", "patch", "update", "watch")
_ALL = ("all",)

# Subresource kinds that are not the parent's own kind; each lives in its own group-version.
SUBRESOURCE_GROUP_VERSION: dict[str, tuple[str, str]] = {
    "Scale": ("autoscaling", "v1"),
    "Eviction": ("policy", "v1"),
    "TokenRequest": ("authentication.k8s.io", "v1"),
}

# Verbs a subresource answers, by subresource name (as Kubernetes' discovery lists them).
SUBRESOURCE_VERBS: dict[str, tuple[str, ...]] = {
    "status": ("get", "patch", "update"),
    "scale": ("get", "patch", "update"),
    "binding": ("create",),
    "eviction": ("create",),
    "token": ("create",),
    "finalize": ("update",),
    "log": ("get",),
    "exec": ("create", "get"),
    "attach": ("create", "get"),
    "portforward": ("create", "get"),
    "proxy": ("create", "delete", "get", "patch", "update"),
    "approval": ("get", "patch", "update"),
}


def _r(group: str, kind: str, plural: str, namespaced: bool, short: tuple[str, ...] = (),
       categories: tuple[str, ...] = (), verbs: tuple[str, ...] = ALL_VERBS,
       sub: dict[str, str] | None = None, fields: tuple[str, ...] = ()) -> ResourceInfo:
    return ResourceInfo(group, "v1", kind, plural, kind.lower(), namespaced, short, categories, verbs,
                        dict(sub or {}), fields)


def _status(kind: str, **more: str) -> dict[str, str]:
    return {"status": kind, **more}


_CORE_EVENT_FIELDS = (
    "involvedObject.kind", "involvedObject.namespace", "involvedObject.name", "involvedObject.uid",
    "involvedObject.apiVersion", "involvedObject.resourceVersion", "involvedObject.fieldPath",
    "reason", "reportingComponent", "source", "type",
)

CATALOG: tuple[ResourceInfo, ...] = (
    # core/v1
    _r("", "Binding", "bindings", True, verbs=CREATE_ONLY),
    _r("", "ConfigMap", "configmaps", True, ("cm",)),
    _r("", "Endpoints", "endpoints", True, ("ep",)),
    _r("", "Event", "events", True, ("ev",), fields=_CORE_EVENT_FIELDS),
    _r("", "LimitRange", "limitranges", True, ("limits",)),
    _r("", "Namespace", "namespaces", False, ("ns",), verbs=_NS_VERBS,
       sub=_status("Namespace", finalize="Namespace"), fields=("status.phase",)),
    _r("", "Node", "nodes", False, ("no",), sub=_status("Node", proxy="NodeProxyOptions"),
       fields=("spec.unschedulable",)),
    _r("", "PersistentVolumeClaim", "persistentvolumeclaims", True, ("pvc",),
       sub=_status("PersistentVolumeClaim")),
    _r("", "PersistentVolume", "persistentvolumes", False, ("pv",), sub=_status("PersistentVolume")),
    _r("", "Pod", "pods", True, ("po",), _ALL,
       sub=_status("Pod", binding="Binding", eviction="Eviction", log="Pod", exec="PodExecOptions",
                   attach="PodAttachOptions", portforward="PodPortForwardOptions", proxy="PodProxyOptions"),
       fields=("spec.nodeName", "spec.restartPolicy", "spec.schedulerName", "spec.serviceAccountName",
               "spec.hostNetwork", "status.phase", "status.podIP", "status.nominatedNodeName")),
    _r("", "PodTemplate", "podtemplates", True),
    _r("", "ReplicationController", "replicationcontrollers", True, ("rc",), _ALL,
       sub=_status("ReplicationController", scale="Scale"), fields=("status.replicas",)),
    _r("", "ResourceQuota", "resourcequotas", True, ("quota",), sub=_status("ResourceQuota")),
    _r("", "Secret", "secrets", True, fields=("type",)),
    _r("", "ServiceAccount", "serviceaccounts", True, ("sa",), sub={"token": "TokenRequest"}),
    _r("", "Service", "services", True, ("svc",), _ALL, sub=_status("Service", proxy="ServiceProxyOptions"),
       fields=("spec.clusterIP", "spec.type")),
    # apps/v1
    _r("apps", "ControllerRevision", "controllerrevisions", True),
    _r("apps", "DaemonSet", "daemonsets", True, ("ds",), _ALL, sub=_status("DaemonSet")),
    _r("apps", "Deployment", "deployments", True, ("deploy",), _ALL,
       sub=_status("Deployment", scale="Scale")),
    _r("apps", "ReplicaSet", "replicasets", True, ("rs",), _ALL, sub=_status("ReplicaSet", scale="Scale"),
       fields=("status.replicas",)),
    _r("apps", "StatefulSet", "statefulsets", True, ("sts",), _ALL,
       sub=_status("StatefulSet", scale="Scale")),
    # batch/v1
    _r("batch", "CronJob", "cronjobs", True, ("cj",), _ALL, sub=_status("CronJob")),
    _r("batch", "Job", "jobs", True, (), _ALL, sub=_status("Job"), fields=("status.successful",)),
    # the smaller groups
    _r("certificates.k8s.io", "CertificateSigningRequest", "certificatesigningrequests", False, ("csr",),
       sub=_status("CertificateSigningRequest", approval="CertificateSigningRequest"),
       fields=("spec.signerName",)),
    _r("coordination.k8s.io", "Lease", "leases", True),
    _r("discovery.k8s.io", "EndpointSlice", "endpointslices", True),
    _r("events.k8s.io", "Event", "events", True, ("ev",)),
    _r("rbac.authorization.k8s.io", "ClusterRoleBinding", "clusterrolebindings", False),
    _r("rbac.authorization.k8s.io", "ClusterRole", "clusterroles", False),
    _r("rbac.authorization.k8s.io", "RoleBinding", "rolebindings", True),
    _r("rbac.authorization.k8s.io", "Role", "roles", True),
    _r("node.k8s.io", "RuntimeClass", "runtimeclasses", False),
    _r("storage.k8s.io", "StorageClass", "storageclasses", False, ("sc",)),
    _r("scheduling.k8s.io", "PriorityClass", "priorityclasses", False, ("pc",)),
    _r("policy", "PodDisruptionBudget", "poddisruptionbudgets", True, ("pdb",),
       sub=_status("PodDisruptionBudget")),
    _r("authorization.k8s.io", "LocalSubjectAccessReview", "localsubjectaccessreviews", True,
       verbs=CREATE_ONLY),
    _r("authorization.k8s.io", "SelfSubjectAccessReview", "selfsubjectaccessreviews", False,
       verbs=CREATE_ONLY),
    _r("authorization.k8s.io", "SelfSubjectRulesReview", "selfsubjectrulesreviews", False,
       verbs=CREATE_ONLY),
    _r("authorization.k8s.io", "SubjectAccessReview", "subjectaccessreviews", False, verbs=CREATE_ONLY),
    _r("authentication.k8s.io", "SelfSubjectReview", "selfsubjectreviews", False, verbs=CREATE_ONLY),
    _r("authentication.k8s.io", "TokenReview", "tokenreviews", False, verbs=CREATE_ONLY),
)

# Groups in the order Kubernetes lists them in /apis (core first, then by priority).
GROUP_ORDER: tuple[str, ...] = (
    "", "apps", "events.k8s.io", "authentication.k8s.io", "authorization.k8s.io", "batch",
    "certificates.k8s.io", "policy", "rbac.authorization.k8s.io", "storage.k8s.io", "scheduling.k8s.io",
    "coordination.k8s.io", "node.k8s.io", "discovery.k8s.io",
)

_BY_PLURAL = {(r.group, r.version, r.plural): r for r in CATALOG}
# The core Event wins `by_kind("", "Event")`; events.k8s.io has its own key.
_BY_KIND = {(r.group, r.kind): r for r in CATALOG}


def lookup(group: str, version: str, plural: str) -> ResourceInfo | None:
    return _BY_PLURAL.get((group, version, plural))


def by_kind(group: str, kind: str) -> ResourceInfo | None:
    return _BY_KIND.get((group, kind))


def require(group: str, kind: str) -> ResourceInfo:
    """`by_kind` for the kinds a component is built on: a missing one is a programming error."""
    found = _BY_KIND.get((group, kind))
    if found is None:
        raise LookupError(f"{group or 'core'}/{kind} is missing from the catalog")
    return found


def is_create_only(info: ResourceInfo) -> bool:
    return info.verbs == CREATE_ONLY


def subresource_group_version(info: ResourceInfo, subresource: str) -> tuple[str, str]:
    """The group and version of the kind served at `subresource` (autoscaling/v1 for scale, …)."""
    kind = info.subresources[subresource]
    return SUBRESOURCE_GROUP_VERSION.get(kind, (info.group, info.version))
