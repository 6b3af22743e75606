"""The default RBAC policy, after Kubernetes' plugin/pkg/auth/authorizer/rbac/bootstrappolicy: the
user-facing roles (cluster-admin, admin, edit, view — the last three aggregated from the
`system:aggregate-to-*` roles), the roles components need, and their ClusterRoleBindings. The API server
creates these at startup when missing (`autoupdate: "true"` marks them as reconciled defaults)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

Obj = dict[str, Any]
RBAC = "rbac.authorization.k8s.io/v1"
LABELS = {"kubernetes.io/bootstrapping": "rbac-defaults"}
ANNOTATIONS = {"rbac.authorization.kubernetes.io/autoupdate": "true"}
AGGREGATE_TO = "rbac.authorization.k8s.io/aggregate-to-"

READ = ("get", "list", "watch")
READ_WRITE = ("get", "list", "watch", "create", "update", "patch", "delete", "deletecollection")
WRITE = ("create", "update", "patch", "delete", "deletecollection")
EVENTS_WRITE = ("create", "update", "patch")

CORE, APPS, AUTOSCALING, BATCH, POLICY = "", "apps", "autoscaling", "batch", "policy"
NETWORKING, EXTENSIONS, COORDINATION = "networking.k8s.io", "extensions", "coordination.k8s.io"
DISCOVERY, STORAGE, EVENTS = "discovery.k8s.io", "storage.k8s.io", "events.k8s.io"
AUTHN, AUTHZ, RBAC_GROUP = "authentication.k8s.io", "authorization.k8s.io", "rbac.authorization.k8s.io"
CERTIFICATES, NODE = "certificates.k8s.io", "node.k8s.io"


def rule(verbs: Iterable[str], groups: Iterable[str], res: Iterable[str], names: Iterable[str] = ()) -> Obj:
    out: Obj = {"verbs": list(verbs), "apiGroups": list(groups), "resources": list(res)}
    if names := list(names):
        out["resourceNames"] = names
    return out


def urls(verbs: Iterable[str], *paths: str) -> Obj:
    return {"verbs": list(verbs), "nonResourceURLs": list(paths)}


def _meta(name: str, labels: dict[str, str] | None = None) -> Obj:
    return {"name": name, "labels": {**LABELS, **(labels or {})}, "annotations": dict(ANNOTATIONS)}


def cluster_role(
    name: str, rules: list[Obj], *, labels: dict[str, str] | None = None, aggregate_from: str = ""
) -> Obj:
    role: Obj = {"apiVersion": RBAC, "kind": "ClusterRole", "metadata": _meta(name, labels), "rules": rules}
    if aggregate_from:
        role["aggregationRule"] = {
            "clusterRoleSelectors": [{"matchLabels": {AGGREGATE_TO + aggregate_from: "true"}}]
        }
    return role


def cluster_role_binding(name: str, *subjects: tuple[str, str], role: str = "") -> Obj:
    """Subjects as (kind, name); a ServiceAccount's name is `namespace/name`."""
    out: list[Obj] = []
    for kind, subject in subjects:
        if kind == "ServiceAccount":
            ns, _, sa = subject.partition("/")
            out.append({"kind": kind, "name": sa, "namespace": ns})
        else:
            out.append({"apiGroup": RBAC_GROUP, "kind": kind, "name": subject})
    return {
        "apiVersion": RBAC,
        "kind": "ClusterRoleBinding",
        "metadata": _meta(name),
        "roleRef": {"apiGroup": RBAC_GROUP, "kind": "ClusterRole", "name": role or name},
        "subjects": out,
    }


def _events_rules() -> list[Obj]:
    return [rule(EVENTS_WRITE, (CORE, EVENTS), ("events",))]


def cluster_roles() -> list[Obj]:
    return [
        cluster_role("cluster-admin", [rule(["*"], ["*"], ["*"]), urls(["*"], "*")]),
        cluster_role(
            "system:discovery",
            [
                urls(
                    ["get"],
                    "/api",
                    "/api/*",
                    "/apis",
                    "/apis/*",
                    "/healthz",
                    "/livez",
                    "/openapi",
                    "/openapi/*",
                    "/readyz",
                    "/version",
                    "/version/",
                )
            ],
        ),
        cluster_role(
            "system:monitoring",
            [
                urls(
                    ["get"],
                    "/metrics",
                    "/metrics/slis",
                    "/livez",
                    "/readyz",
                    "/healthz",
                    "/livez/*",
                    "/readyz/*",
                    "/healthz/*",
                )
            ],
        ),
        cluster_role(
            "system:basic-user",
            [
                rule(["create"], [AUTHZ], ["selfsubjectaccessreviews", "selfsubjectrulesreviews"]),
                rule(["create"], [AUTHN], ["selfsubjectreviews"]),
            ],
        ),
        cluster_role(
            "system:public-info-viewer",
            [urls(["get"], "/livez", "/readyz", "/healthz", "/version", "/version/")],
        ),
        cluster_role("admin", [], aggregate_from="admin"),
        cluster_role("edit", [], aggregate_from="edit", labels={AGGREGATE_TO + "admin": "true"}),
        cluster_role("view", [], aggregate_from="view", labels={AGGREGATE_TO + "edit": "true"}),
        cluster_role(
            "system:aggregate-to-admin",
            [
                rule(["create"], [AUTHZ], ["localsubjectaccessreviews"]),
                rule(READ_WRITE, [RBAC_GROUP], ["rolebindings", "roles"]),
            ],
            labels={AGGREGATE_TO + "admin": "true"},
        ),
        cluster_role(
            "system:aggregate-to-edit",
            [
                # Read on escalating resources (secrets, exec, proxy) comes with edit, not view.
                rule(
                    READ,
                    [CORE],
                    [
                        "pods/attach",
                        "pods/proxy",
                        "pods/exec",
                        "pods/portforward",
                        "secrets",
                        "services/proxy",
                    ],
                ),
                rule(["impersonate"], [CORE], ["serviceaccounts"]),
                rule(WRITE, [CORE], ["pods", "pods/attach", "pods/proxy", "pods/exec", "pods/portforward"]),
                rule(["create"], [CORE], ["pods/eviction"]),
                rule(
                    WRITE,
                    [CORE],
                    [
                        "replicationcontrollers",
                        "replicationcontrollers/scale",
                        "serviceaccounts",
                        "services",
                        "services/proxy",
                        "persistentvolumeclaims",
                        "configmaps",
                        "secrets",
                        "events",
                    ],
                ),
                rule(["create"], [CORE], ["serviceaccounts/token"]),
                rule(
                    WRITE,
                    [APPS],
                    [
                        "statefulsets",
                        "statefulsets/scale",
                        "daemonsets",
                        "deployments",
                        "deployments/scale",
                        "deployments/rollback",
                        "replicasets",
                        "replicasets/scale",
                    ],
                ),
                rule(WRITE, [AUTOSCALING], ["horizontalpodautoscalers"]),
                rule(WRITE, [BATCH], ["jobs", "cronjobs"]),
                rule(
                    WRITE,
                    [EXTENSIONS],
                    [
                        "daemonsets",
                        "deployments",
                        "deployments/scale",
                        "deployments/rollback",
                        "ingresses",
                        "replicasets",
                        "replicasets/scale",
                        "replicationcontrollers/scale",
                        "networkpolicies",
                    ],
                ),
                rule(WRITE, [POLICY], ["poddisruptionbudgets"]),
                rule(WRITE, [NETWORKING], ["ingresses", "networkpolicies"]),
                rule(WRITE, [COORDINATION], ["leases"]),
            ],
            labels={AGGREGATE_TO + "edit": "true"},
        ),
        cluster_role(
            "system:aggregate-to-view",
            [
                rule(
                    READ,
                    [CORE],
                    [
                        "pods",
                        "replicationcontrollers",
                        "replicationcontrollers/scale",
                        "serviceaccounts",
                        "services",
                        "services/status",
                        "endpoints",
                        "persistentvolumeclaims",
                        "persistentvolumeclaims/status",
                        "configmaps",
                    ],
                ),
                rule(
                    READ,
                    [CORE],
                    [
                        "limitranges",
                        "resourcequotas",
                        "bindings",
                        "events",
                        "pods/status",
                        "resourcequotas/status",
                        "namespaces/status",
                        "replicationcontrollers/status",
                        "pods/log",
                    ],
                ),
                rule(READ, [CORE], ["namespaces"]),
                rule(READ, [DISCOVERY], ["endpointslices"]),
                rule(
                    READ,
                    [APPS],
                    [
                        "controllerrevisions",
                        "statefulsets",
                        "statefulsets/status",
                        "statefulsets/scale",
                        "daemonsets",
                        "daemonsets/status",
                        "deployments",
                        "deployments/status",
                        "deployments/scale",
                        "replicasets",
                        "replicasets/status",
                        "replicasets/scale",
                    ],
                ),
                rule(READ, [AUTOSCALING], ["horizontalpodautoscalers", "horizontalpodautoscalers/status"]),
                rule(READ, [BATCH], ["jobs", "jobs/status", "cronjobs", "cronjobs/status"]),
                rule(
                    READ,
                    [EXTENSIONS],
                    [
                        "daemonsets",
                        "daemonsets/status",
                        "deployments",
                        "deployments/scale",
                        "deployments/status",
                        "ingresses",
                        "ingresses/status",
                        "replicasets",
                        "replicasets/scale",
                        "replicasets/status",
                        "replicationcontrollers/scale",
                        "networkpolicies",
                    ],
                ),
                rule(READ, [POLICY], ["poddisruptionbudgets", "poddisruptionbudgets/status"]),
                rule(READ, [NETWORKING], ["ingresses", "ingresses/status", "networkpolicies"]),
                rule(READ, [COORDINATION], ["leases"]),
            ],
            labels={AGGREGATE_TO + "view": "true"},
        ),
        cluster_role(
            "system:auth-delegator",
            [
                rule(["create"], [AUTHN], ["tokenreviews"]),
                rule(["create"], [AUTHZ], ["subjectaccessreviews"]),
            ],
        ),
        cluster_role(
            "system:service-account-issuer-discovery",
            [
                urls(
                    ["get"],
                    "/.well-known/openid-configuration",
                    "/.well-known/openid-configuration/",
                    "/openid/v1/jwks",
                    "/openid/v1/jwks/",
                ),
            ],
        ),
        cluster_role(
            "system:node-bootstrapper",
            [
                rule(["create", "get", "list", "watch"], [CERTIFICATES], ["certificatesigningrequests"]),
            ],
        ),
        cluster_role(
            "system:node",
            [
                rule(["create"], [AUTHN], ["tokenreviews"]),
                rule(["create"], [AUTHZ], ["subjectaccessreviews", "localsubjectaccessreviews"]),
                rule(READ, [CORE], ["services"]),
                rule(["create", "get", "list", "watch"], [CORE], ["nodes"]),
                rule(["update", "patch"], [CORE], ["nodes/status"]),
                rule(["update", "patch"], [CORE], ["nodes"]),
                *_events_rules(),
                rule(READ, [CORE], ["pods"]),
                rule(["create", "delete"], [CORE], ["pods"]),
                rule(["update", "patch"], [CORE], ["pods/status"]),
                rule(["create"], [CORE], ["pods/eviction"]),
                rule(["get", "list", "watch"], [CORE], ["secrets", "configmaps"]),
                rule(["get"], [CORE], ["persistentvolumeclaims", "persistentvolumes"]),
                rule(["get"], [CORE], ["endpoints"]),
                rule(["create", "get", "list", "watch"], [CERTIFICATES], ["certificatesigningrequests"]),
                rule(["get", "create", "update", "patch", "delete"], [COORDINATION], ["leases"]),
                rule(["create"], [CORE], ["serviceaccounts/token"]),
                rule(READ, [NODE], ["runtimeclasses"]),
                rule(READ, [STORAGE], ["csidrivers", "csinodes", "volumeattachments"]),
            ],
        ),
        cluster_role(
            "system:node-proxier",
            [
                rule(["list", "watch"], [CORE], ["services", "endpoints"]),
                rule(["get", "list", "watch"], [CORE], ["nodes"]),
                rule(["list", "watch"], [DISCOVERY], ["endpointslices"]),
                *_events_rules(),
            ],
        ),
        cluster_role(
            "system:kube-dns",
            [
                rule(["list", "watch"], [CORE], ["endpoints", "services"]),
                rule(["list", "watch"], [DISCOVERY], ["endpointslices"]),
            ],
        ),
        cluster_role(
            "system:kube-scheduler",
            [
                *_events_rules(),
                rule(["create"], [COORDINATION], ["leases"]),
                rule(["get", "update"], [COORDINATION], ["leases"], ["kube-scheduler"]),
                rule(READ, [CORE], ["nodes"]),
                rule(READ, [CORE], ["pods"]),
                rule(["delete"], [CORE], ["pods"]),
                rule(["create"], [CORE], ["pods/binding", "bindings"]),
                rule(["patch", "update"], [CORE], ["pods/status"]),
                rule(
                    READ,
                    [CORE],
                    [
                        "replicationcontrollers",
                        "services",
                        "namespaces",
                        "persistentvolumeclaims",
                        "persistentvolumes",
                    ],
                ),
                rule(READ, [APPS, EXTENSIONS], ["replicasets"]),
                rule(READ, [APPS], ["statefulsets"]),
                rule(READ, [POLICY], ["poddisruptionbudgets"]),
                rule(["create"], [AUTHN], ["tokenreviews"]),
                rule(["create"], [AUTHZ], ["subjectaccessreviews"]),
                rule(READ, [STORAGE], ["csinodes", "csidrivers", "csistoragecapacities", "storageclasses"]),
            ],
        ),
        cluster_role(
            "system:kube-controller-manager",
            [
                *_events_rules(),
                rule(["create"], [COORDINATION], ["leases"]),
                rule(["get", "update"], [COORDINATION], ["leases"], ["kube-controller-manager"]),
                rule(["create"], [CORE], ["secrets", "serviceaccounts"]),
                rule(["delete"], [CORE], ["secrets"]),
                rule(["get"], [CORE], ["configmaps", "namespaces", "secrets", "serviceaccounts"]),
                rule(["update"], [CORE], ["secrets", "serviceaccounts"]),
                rule(["create"], [AUTHN], ["tokenreviews"]),
                rule(["create"], [AUTHZ], ["subjectaccessreviews"]),
                rule(["list", "watch"], ["*"], ["*"]),
                rule(["create"], [CORE], ["serviceaccounts/token"]),
            ],
        ),
    ]


def cluster_role_bindings() -> list[Obj]:
    return [
        cluster_role_binding("cluster-admin", ("Group", "system:masters")),
        cluster_role_binding("system:monitoring", ("Group", "system:monitoring")),
        cluster_role_binding("system:discovery", ("Group", "system:authenticated")),
        cluster_role_binding("system:basic-user", ("Group", "system:authenticated")),
        cluster_role_binding(
            "system:public-info-viewer",
            ("Group", "system:authenticated"),
            ("Group", "system:unauthenticated"),
        ),
        cluster_role_binding("system:service-account-issuer-discovery", ("Group", "system:serviceaccounts")),
        # Kubernetes leaves system:node unbound and lets the Node authorizer speak for nodes; until pyk8s
        # has that authorizer, nodes get the role through their group, as Kubernetes before 1.8 did.
        cluster_role_binding("system:node", ("Group", "system:nodes")),
        # kubeadm's `kubeadm:kubelet-bootstrap`: a joining node may ask for its certificate.
        cluster_role_binding("system:node-bootstrapper", ("Group", "system:bootstrappers")),
        cluster_role_binding("system:node-proxier", ("User", "system:kube-proxy")),
        cluster_role_binding("system:kube-dns", ("ServiceAccount", "kube-system/kube-dns")),
        cluster_role_binding("system:kube-scheduler", ("User", "system:kube-scheduler")),
        cluster_role_binding("system:kube-controller-manager", ("User", "system:kube-controller-manager")),
    ]


def bootstrap_policy() -> list[Obj]:
    """Every default ClusterRole, then every default ClusterRoleBinding (create in this order)."""
    return [*cluster_roles(), *cluster_role_bindings()]
