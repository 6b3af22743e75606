"""RBAC decisions against the examples of Kubernetes' "Using RBAC Authorization" page, and the default
policy."""

from __future__ import annotations

from typing import Any

import pytest

from pyk8s.api.resource import ResourceInfo
from pyk8s.apiserver.auth.policy import bootstrap_policy
from pyk8s.apiserver.auth.rbac import RBACAuthorizer, forbidden_error
from pyk8s.apiserver.interfaces import Attributes, UserInfo

Obj = dict[str, Any]
RBAC = "rbac.authorization.k8s.io"

JANE = UserInfo("jane", groups=("system:authenticated",))
DAVE = UserInfo("dave", groups=("manager", "system:authenticated"))
MASTER = UserInfo("system:admin", groups=("system:masters", "system:authenticated"))
SA = UserInfo(
    "system:serviceaccount:ns1:builder",
    groups=("system:serviceaccounts", "system:serviceaccounts:ns1", "system:authenticated"),
)


class Cluster:
    """RBAC objects by plural, read through the ObjectLister interface as the watch cache serves them."""

    def __init__(self, objects: list[Obj] = ()) -> None:  # type: ignore[assignment]
        self.objects: dict[str, list[Obj]] = {}
        self.rv = 0
        for o in objects:
            self.add(o)

    def add(self, obj: Obj) -> None:
        self.rv += 1
        obj = {**obj, "metadata": {**obj["metadata"], "resourceVersion": str(self.rv)}}
        plural = obj["kind"].lower() + "s"
        self.objects.setdefault(plural, []).append(obj)

    def lister(self, info: ResourceInfo) -> list[Obj]:
        return list(self.objects.get(info.plural, []))


def role(name: str, ns: str, *rules: Obj) -> Obj:
    return {"kind": "Role", "metadata": {"name": name, "namespace": ns}, "rules": list(rules)}


def cluster_role(name: str, *rules: Obj, labels: dict[str, str] | None = None, agg: str = "") -> Obj:
    out: Obj = {
        "kind": "ClusterRole",
        "metadata": {"name": name, "labels": labels or {}},
        "rules": list(rules),
    }
    if agg:
        out["aggregationRule"] = {"clusterRoleSelectors": [{"matchLabels": {agg: "true"}}]}
    return out


def binding(kind: str, name: str, ns: str, role_kind: str, role_name: str, *subjects: Obj) -> Obj:
    meta = {"name": name, "namespace": ns} if ns else {"name": name}
    return {
        "kind": kind,
        "metadata": meta,
        "roleRef": {"apiGroup": RBAC, "kind": role_kind, "name": role_name},
        "subjects": list(subjects),
    }


def user(name: str) -> Obj:
    return {"kind": "User", "name": name, "apiGroup": RBAC}


def group(name: str) -> Obj:
    return {"kind": "Group", "name": name, "apiGroup": RBAC}


def res(
    who: UserInfo, verb: str, resource: str, ns: str = "", name: str = "", group_: str = "", sub: str = ""
) -> Attributes:
    return Attributes(
        who,
        verb,
        True,
        api_group=group_,
        api_version="v1",
        namespace=ns,
        resource=resource,
        subresource=sub,
        name=name,
    )


def path(who: UserInfo, verb: str, p: str) -> Attributes:
    return Attributes(who, verb, False, path=p)


def allowed(authz: RBACAuthorizer, a: Attributes) -> bool:
    return authz.decide(a).allowed


POD_READER = {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "watch", "list"]}


def test_role_and_rolebinding_to_user() -> None:
    c = Cluster(
        [
            role("pod-reader", "ns1", POD_READER),
            binding("RoleBinding", "read-pods", "ns1", "Role", "pod-reader", user("jane")),
        ]
    )
    authz = RBACAuthorizer(c.lister)
    assert allowed(authz, res(JANE, "get", "pods", "ns1", "web"))
    assert allowed(authz, res(JANE, "list", "pods", "ns1"))
    assert not allowed(authz, res(JANE, "get", "pods", "ns2", "web"))  # another namespace
    assert not allowed(authz, res(JANE, "delete", "pods", "ns1", "web"))  # another verb
    assert not allowed(authz, res(JANE, "get", "pods", "ns1", "web", group_="apps"))  # another group
    assert not allowed(authz, res(JANE, "list", "pods"))  # cluster scope
    assert not allowed(authz, res(DAVE, "get", "pods", "ns1", "web"))  # another user
    assert authz.decide(res(JANE, "get", "pods", "ns1")).reason == (
        'RBAC: allowed by RoleBinding "read-pods/ns1" of Role "pod-reader" to User "jane"'
    )


def test_rolebinding_to_group_and_service_account() -> None:
    c = Cluster(
        [
            role("pod-reader", "ns1", POD_READER),
            binding("RoleBinding", "managers", "ns1", "Role", "pod-reader", group("manager")),
            binding(
                "RoleBinding",
                "sa",
                "ns1",
                "Role",
                "pod-reader",
                {"kind": "ServiceAccount", "name": "builder", "namespace": "ns1"},
            ),
        ]
    )
    authz = RBACAuthorizer(c.lister)
    assert allowed(authz, res(DAVE, "get", "pods", "ns1"))
    assert allowed(authz, res(SA, "get", "pods", "ns1"))
    assert not allowed(authz, res(JANE, "get", "pods", "ns1"))
    other_sa = UserInfo("system:serviceaccount:ns2:builder", groups=("system:serviceaccounts",))
    assert not allowed(authz, res(other_sa, "get", "pods", "ns1"))


def test_service_account_group_binding() -> None:
    c = Cluster(
        [
            role("pod-reader", "ns1", POD_READER),
            binding(
                "RoleBinding", "all-sa", "ns1", "Role", "pod-reader", group("system:serviceaccounts:ns1")
            ),
        ]
    )
    authz = RBACAuthorizer(c.lister)
    assert allowed(authz, res(SA, "list", "pods", "ns1"))
    assert not allowed(authz, res(JANE, "list", "pods", "ns1"))


def test_clusterrole_bound_by_rolebinding_is_namespaced() -> None:
    secret_reader = cluster_role(
        "secret-reader", {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "watch", "list"]}
    )
    c = Cluster(
        [
            secret_reader,
            binding(
                "RoleBinding", "read-secrets", "development", "ClusterRole", "secret-reader", user("dave")
            ),
        ]
    )
    authz = RBACAuthorizer(c.lister)
    assert allowed(authz, res(DAVE, "get", "secrets", "development", "s"))
    assert not allowed(authz, res(DAVE, "get", "secrets", "production", "s"))
    assert not allowed(authz, res(DAVE, "list", "secrets"))

    c.add(
        binding(
            "ClusterRoleBinding", "read-secrets-global", "", "ClusterRole", "secret-reader", group("manager")
        )
    )
    assert allowed(authz, res(DAVE, "get", "secrets", "production", "s"))
    assert allowed(authz, res(DAVE, "list", "secrets"))  # across all namespaces


def test_resource_names() -> None:
    c = Cluster(
        [
            role(
                "configmap-updater",
                "ns1",
                {
                    "apiGroups": [""],
                    "resources": ["configmaps"],
                    "resourceNames": ["my-configmap"],
                    "verbs": ["update", "get"],
                },
            ),
            binding("RoleBinding", "b", "ns1", "Role", "configmap-updater", user("jane")),
        ]
    )
    authz = RBACAuthorizer(c.lister)
    assert allowed(authz, res(JANE, "get", "configmaps", "ns1", "my-configmap"))
    assert allowed(authz, res(JANE, "update", "configmaps", "ns1", "my-configmap"))
    assert not allowed(authz, res(JANE, "get", "configmaps", "ns1", "other"))
    assert not allowed(authz, res(JANE, "list", "configmaps", "ns1"))  # no name: resourceNames cannot match


def test_subresources() -> None:
    c = Cluster(
        [
            role(
                "pod-and-pod-logs-reader",
                "ns1",
                {"apiGroups": [""], "resources": ["pods/log"], "verbs": ["get"]},
            ),
            role("scaler", "ns1", {"apiGroups": ["*"], "resources": ["*/scale"], "verbs": ["update"]}),
            binding("RoleBinding", "a", "ns1", "Role", "pod-and-pod-logs-reader", user("jane")),
            binding("RoleBinding", "b", "ns1", "Role", "scaler", user("jane")),
        ]
    )
    authz = RBACAuthorizer(c.lister)
    assert allowed(authz, res(JANE, "get", "pods", "ns1", "web", sub="log"))
    assert not allowed(authz, res(JANE, "get", "pods", "ns1", "web"))  # the pod itself
    assert not allowed(authz, res(JANE, "get", "pods", "ns1", "web", sub="exec"))
    assert allowed(authz, res(JANE, "update", "deployments", "ns1", "d", group_="apps", sub="scale"))
    assert not allowed(authz, res(JANE, "update", "deployments", "ns1", "d", group_="apps"))


def test_wildcards() -> None:
    c = Cluster(
        [
            cluster_role("everything", {"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}),
            binding("ClusterRoleBinding", "b", "", "ClusterRole", "everything", user("jane")),
        ]
    )
    authz = RBACAuthorizer(c.lister)
    assert allowed(authz, res(JANE, "deletecollection", "widgets", "x", group_="example.com"))
    assert allowed(authz, res(JANE, "get", "pods", "x", "p", sub="log"))
    assert not allowed(authz, path(JANE, "get", "/healthz"))  # resource rules never grant paths


def test_non_resource_urls() -> None:
    c = Cluster(
        [
            cluster_role("health", {"nonResourceURLs": ["/healthz", "/healthz/*"], "verbs": ["get", "post"]}),
            binding("ClusterRoleBinding", "b", "", "ClusterRole", "health", group("manager")),
        ]
    )
    authz = RBACAuthorizer(c.lister)
    assert allowed(authz, path(DAVE, "get", "/healthz"))
    assert allowed(authz, path(DAVE, "post", "/healthz/etcd"))
    assert not allowed(authz, path(DAVE, "put", "/healthz"))
    assert not allowed(authz, path(DAVE, "get", "/healthzz"))
    assert not allowed(authz, path(DAVE, "get", "/metrics"))
    # A RoleBinding never grants non-resource URLs.
    c2 = Cluster(
        [
            c.objects["clusterroles"][0],
            binding("RoleBinding", "b", "ns1", "ClusterRole", "health", user("jane")),
        ]
    )
    assert not allowed(RBACAuthorizer(c2.lister), path(JANE, "get", "/healthz"))


def test_aggregation_follows_labels() -> None:
    c = Cluster(
        [
            cluster_role("monitoring", agg="rbac.example.com/aggregate-to-monitoring"),
            binding("ClusterRoleBinding", "m", "", "ClusterRole", "monitoring", user("jane")),
        ]
    )
    authz = RBACAuthorizer(c.lister)
    assert not allowed(authz, res(JANE, "get", "services", "ns1"))
    c.add(
        cluster_role(
            "monitoring-endpoints",
            {
                "apiGroups": [""],
                "resources": ["services", "endpointslices", "pods"],
                "verbs": ["get", "list", "watch"],
            },
            labels={"rbac.example.com/aggregate-to-monitoring": "true"},
        )
    )
    assert allowed(authz, res(JANE, "get", "services", "ns1"))
    assert not allowed(authz, res(JANE, "delete", "services", "ns1"))


def test_privileged_group() -> None:
    authz = RBACAuthorizer(Cluster().lister)
    assert allowed(authz, res(MASTER, "delete", "nodes", name="n1"))
    assert allowed(authz, path(MASTER, "get", "/anything"))
    assert not allowed(authz, res(JANE, "get", "nodes", name="n1"))


def test_revision_callable_controls_reindexing() -> None:
    c = Cluster([role("pod-reader", "ns1", POD_READER)])
    revision = [1]
    authz = RBACAuthorizer(c.lister, revision=lambda: revision[0])
    assert not allowed(authz, res(JANE, "get", "pods", "ns1"))
    c.add(binding("RoleBinding", "b", "ns1", "Role", "pod-reader", user("jane")))
    assert not allowed(authz, res(JANE, "get", "pods", "ns1"))  # same revision: the index is reused
    revision[0] = 2
    assert allowed(authz, res(JANE, "get", "pods", "ns1"))


@pytest.fixture(scope="module")
def defaults() -> Cluster:
    return Cluster(bootstrap_policy())


def test_default_policy_shape() -> None:
    objs = bootstrap_policy()
    names = {o["metadata"]["name"] for o in objs if o["kind"] == "ClusterRole"}
    assert {
        "cluster-admin",
        "admin",
        "edit",
        "view",
        "system:basic-user",
        "system:discovery",
        "system:public-info-viewer",
        "system:kube-scheduler",
        "system:kube-controller-manager",
        "system:node",
        "system:node-proxier",
        "system:monitoring",
        "system:aggregate-to-view",
    } <= names
    for o in objs:
        assert o["apiVersion"] == "rbac.authorization.k8s.io/v1"
        assert o["metadata"]["labels"]["kubernetes.io/bootstrapping"] == "rbac-defaults"
        assert o["metadata"]["annotations"]["rbac.authorization.kubernetes.io/autoupdate"] == "true"
    crb = {o["metadata"]["name"]: o for o in objs if o["kind"] == "ClusterRoleBinding"}
    assert crb["cluster-admin"]["subjects"] == [{"apiGroup": RBAC, "kind": "Group", "name": "system:masters"}]


def test_default_policy_for_authenticated_users(defaults: Cluster) -> None:
    authz = RBACAuthorizer(defaults.lister)
    assert allowed(authz, res(JANE, "create", "selfsubjectaccessreviews", group_="authorization.k8s.io"))
    assert allowed(authz, res(JANE, "create", "selfsubjectreviews", group_="authentication.k8s.io"))
    assert allowed(authz, path(JANE, "get", "/apis/apps/v1"))
    assert allowed(authz, path(JANE, "get", "/version"))
    assert not allowed(authz, res(JANE, "list", "pods", "default"))
    anonymous = UserInfo("system:anonymous", groups=("system:unauthenticated",))
    assert allowed(authz, path(anonymous, "get", "/healthz"))
    assert not allowed(authz, path(anonymous, "get", "/api"))


def test_default_view_edit_admin_aggregate(defaults: Cluster) -> None:
    c = Cluster(
        [
            *bootstrap_policy(),
            binding("RoleBinding", "v", "ns1", "ClusterRole", "view", user("jane")),
            binding("RoleBinding", "e", "ns1", "ClusterRole", "edit", user("dave")),
            binding("RoleBinding", "a", "ns2", "ClusterRole", "admin", user("dave")),
        ]
    )
    authz = RBACAuthorizer(c.lister)
    assert allowed(authz, res(JANE, "get", "pods", "ns1", "p"))
    assert allowed(authz, res(JANE, "get", "pods", "ns1", "p", sub="log"))
    assert allowed(authz, res(JANE, "list", "deployments", "ns1", group_="apps"))
    assert not allowed(authz, res(JANE, "create", "pods", "ns1"))
    assert not allowed(authz, res(JANE, "get", "secrets", "ns1", "s"))  # view does not read secrets
    assert allowed(authz, res(DAVE, "create", "pods", "ns1"))  # edit writes
    assert allowed(authz, res(DAVE, "get", "secrets", "ns1", "s"))
    assert allowed(authz, res(DAVE, "create", "serviceaccounts", "ns1", "sa", sub="token"))
    assert not allowed(authz, res(DAVE, "create", "rolebindings", "ns1", group_=RBAC))  # only admin does
    assert allowed(authz, res(DAVE, "create", "rolebindings", "ns2", group_=RBAC))
    assert allowed(authz, res(DAVE, "create", "pods", "ns2"))  # admin includes edit


def test_default_component_roles(defaults: Cluster) -> None:
    authz = RBACAuthorizer(defaults.lister)
    scheduler = UserInfo("system:kube-scheduler", groups=("system:authenticated",))
    assert allowed(authz, res(scheduler, "create", "pods", "ns1", "p", sub="binding"))
    assert allowed(
        authz,
        res(scheduler, "update", "leases", "kube-system", "kube-scheduler", group_="coordination.k8s.io"),
    )
    assert not allowed(
        authz, res(scheduler, "update", "leases", "kube-system", "other", group_="coordination.k8s.io")
    )
    proxy = UserInfo("system:kube-proxy", groups=("system:authenticated",))
    assert allowed(authz, res(proxy, "watch", "services"))
    assert not allowed(authz, res(proxy, "create", "services", "ns1"))
    node = UserInfo("system:node:n1", groups=("system:nodes", "system:authenticated"))
    assert allowed(authz, res(node, "patch", "nodes", name="n1", sub="status"))


def test_rules_for_lists_what_applies(defaults: Cluster) -> None:
    c = Cluster(
        [
            role("pod-reader", "ns1", POD_READER),
            binding("RoleBinding", "b", "ns1", "Role", "pod-reader", user("jane")),
        ]
    )
    resource_rules, non_resource = RBACAuthorizer(c.lister).rules_for(JANE, "ns1")
    assert [r.to_dict() for r in resource_rules] == [
        {"verbs": ["get", "list", "watch"], "apiGroups": [""], "resources": ["pods"]}
    ]
    assert non_resource == []
    assert RBACAuthorizer(c.lister).rules_for(JANE, "ns2") == ([], [])


def test_forbidden_messages_match_kubernetes() -> None:
    e = forbidden_error(res(JANE, "list", "pods", "ns1"))
    assert (e.code, e.reason) == (403, "Forbidden")
    assert e.message == (
        'pods is forbidden: User "jane" cannot list resource "pods" in API group "" in the namespace "ns1"'
    )
    e = forbidden_error(res(JANE, "get", "deployments", name="d", group_="apps", sub="scale"))
    assert e.message == (
        'deployments.apps "d" is forbidden: User "jane" cannot get resource "deployments/scale" '
        'in API group "apps" at the cluster scope'
    )
    assert e.details == {"kind": "deployments", "name": "d", "group": "apps"}
    assert (
        forbidden_error(path(JANE, "get", "/metrics")).message
        == 'forbidden: User "jane" cannot get path "/metrics"'
    )
