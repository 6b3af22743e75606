"""The Node authorizer in front of the real RBAC authorizer with the default policy: a node reaches its own
Node and Lease, the secrets, configmaps, claims, volumes and service accounts its pods use, and changes
only its own pods; other nodes' things are denied outright (RBAC's group binding cannot grant them back)."""

from __future__ import annotations

from typing import Any

import pytest

from pyk8s.api.resource import ResourceInfo
from pyk8s.apiserver.auth.node import NodeAuthorizer, node_identity
from pyk8s.apiserver.auth.policy import bootstrap_policy
from pyk8s.apiserver.auth.rbac import RBACAuthorizer
from pyk8s.apiserver.interfaces import Attributes, UserInfo

Obj = dict[str, Any]


ENV_CM = {"name": "X", "valueFrom": {"configMapKeyRef": {"name": "env-cm", "key": "k"}}}


def _pod(name: str, node: str, ns: str = "default", **spec: Any) -> Obj:
    return {"metadata": {"name": name, "namespace": ns}, "spec": {"nodeName": node, **spec}}


class World:
    def __init__(self) -> None:
        self.objects: dict[str, list[Obj]] = {"pods": [], "nodes": [], "persistentvolumeclaims": []}
        for obj in bootstrap_policy():
            plural = {"ClusterRole": "clusterroles", "ClusterRoleBinding": "clusterrolebindings"}[obj["kind"]]
            self.objects.setdefault(plural, []).append(obj)

    def lister(self, info: ResourceInfo) -> list[Obj]:
        return self.objects.get(info.plural, [])

    def get_object(self, info: ResourceInfo, namespace: str, name: str) -> Obj | None:
        return next((o for o in self.objects.get(info.plural, []) if o["metadata"]["name"] == name
                     and o["metadata"].get("namespace", "") == namespace), None)


@pytest.fixture
def world() -> World:
    w = World()
    w.objects["pods"] += [
        _pod("web", "n1", volumes=[{"name": "s", "secret": {"secretName": "web-tls"}},
                                   {"name": "p", "projected": {"sources": [{"configMap": {"name": "proj"}}]}},
                                   {"name": "d", "persistentVolumeClaim": {"claimName": "data"}}],
             containers=[{"name": "c",
                          "env": [ENV_CM],
                          "envFrom": [{"secretRef": {"name": "env-secret"}}]}],
             imagePullSecrets=[{"name": "pull"}], serviceAccountName="web-sa"),
        _pod("other", "n2", volumes=[{"name": "s", "secret": {"secretName": "n2-secret"}}]),
        _pod("h", "hollow-3", volumes=[{"name": "s", "configMap": {"name": "hollow-cm"}}]),
    ]
    w.objects["persistentvolumeclaims"].append(
        {"metadata": {"name": "data", "namespace": "default"}, "spec": {"volumeName": "pv-1"}})
    w.objects["nodes"] += [{"metadata": {"name": "hollow-3", "labels": {"type": "hollow"}}},
                           {"metadata": {"name": "hollow-9"}}]  # a real node that happens to match the prefix
    return w


def _authz(world: World) -> NodeAuthorizer:
    return NodeAuthorizer(RBACAuthorizer(world.lister), world.get_object, world.lister)


def _node(name: str) -> UserInfo:
    return UserInfo(f"system:node:{name}", groups=("system:nodes", "system:authenticated"))


async def _allowed(world: World, user: UserInfo, verb: str, resource: str, name: str = "", ns: str = "",
                   sub: str = "", group: str = "") -> bool:
    d = await _authz(world).authorize(Attributes(user, verb, True, api_group=group, namespace=ns,
                                                 resource=resource, subresource=sub, name=name))
    return d.allowed


def test_node_identity() -> None:
    assert node_identity(_node("n1")) == "n1"
    assert node_identity(UserInfo("system:node:n1")) is None  # not in system:nodes
    assert node_identity(UserInfo("alice", groups=("system:nodes",))) is None


@pytest.mark.parametrize(("resource", "name", "ok"), [
    ("secrets", "web-tls", True), ("configmaps", "proj", True), ("configmaps", "env-cm", True),
    ("secrets", "env-secret", True), ("secrets", "pull", True), ("persistentvolumeclaims", "data", True),
    ("secrets", "n2-secret", False), ("configmaps", "hollow-cm", False), ("secrets", "unused", False),
])
async def test_namespaced_objects_only_through_its_pods(world: World, resource: str, name: str,
                                                         ok: bool) -> None:
    assert await _allowed(world, _node("n1"), "get", resource, name, "default") is ok
    if resource != "persistentvolumeclaims":  # the system:node role reads claims by get only
        # list/watch of one object (a metadata.name field selector) is the same question
        assert await _allowed(world, _node("n1"), "watch", resource, name, "default") is ok


async def test_no_listing_secrets_and_no_other_namespace(world: World) -> None:
    assert not await _allowed(world, _node("n1"), "list", "secrets", "", "default")
    assert not await _allowed(world, _node("n1"), "get", "secrets", "web-tls", "kube-system")
    assert not await _allowed(world, _node("n1"), "update", "configmaps", "proj", "default")


async def test_persistent_volumes_and_service_account_tokens(world: World) -> None:
    assert await _allowed(world, _node("n1"), "get", "persistentvolumes", "pv-1")
    assert not await _allowed(world, _node("n2"), "get", "persistentvolumes", "pv-1")
    assert await _allowed(world, _node("n1"), "create", "serviceaccounts", "web-sa", "default", "token")
    assert not await _allowed(world, _node("n1"), "create", "serviceaccounts", "x", "kube-system", "token")
    assert await _allowed(world, _node("n2"), "create", "serviceaccounts", "default", "default", "token")


async def test_own_node_and_lease_only(world: World) -> None:
    n1 = _node("n1")
    assert await _allowed(world, n1, "get", "nodes", "n1")
    assert await _allowed(world, n1, "patch", "nodes", "n1", sub="status")
    assert not await _allowed(world, n1, "patch", "nodes", "n2", sub="status")
    assert not await _allowed(world, n1, "delete", "nodes", "n2")
    assert await _allowed(world, n1, "create", "nodes")  # the name is NodeRestriction's to check
    lease = {"group": "coordination.k8s.io", "ns": "kube-node-lease"}
    assert await _allowed(world, n1, "update", "leases", "n1", **lease)
    assert not await _allowed(world, n1, "update", "leases", "n2", **lease)
    assert not await _allowed(world, n1, "get", "leases", "n1", "default", group="coordination.k8s.io")


async def test_pods_changed_only_when_bound(world: World) -> None:
    n1 = _node("n1")
    assert await _allowed(world, n1, "list", "pods")  # reading stays open (field selectors are not seen)
    assert await _allowed(world, n1, "patch", "pods", "web", "default", "status")
    assert await _allowed(world, n1, "delete", "pods", "web", "default")
    assert not await _allowed(world, n1, "patch", "pods", "other", "default", "status")
    assert not await _allowed(world, n1, "delete", "pods", "other", "default")
    assert not await _allowed(world, n1, "create", "pods", "other", "default", "eviction")


async def test_hollow_identity_speaks_for_its_hollow_nodes_only(world: World) -> None:
    hollow = _node("hollow")
    assert await _allowed(world, hollow, "update", "nodes", "hollow-3", sub="status")
    assert await _allowed(world, hollow, "update", "nodes", "hollow-4")  # not registered yet
    assert not await _allowed(world, hollow, "update", "nodes", "hollow-9")  # exists, not hollow
    assert not await _allowed(world, hollow, "update", "nodes", "hollowed")
    assert await _allowed(world, hollow, "get", "configmaps", "hollow-cm", "default")
    assert await _allowed(world, hollow, "patch", "pods", "h", "default", "status")
    assert not await _allowed(world, _node("hollow-3"), "get", "nodes", "hollow")  # no way back up


async def test_everyone_else_is_rbacs(world: World) -> None:
    admin = UserInfo("root", groups=("system:masters",))
    assert await _allowed(world, admin, "get", "secrets", "n2-secret", "default")
    nobody = UserInfo("alice", groups=("system:authenticated",))
    assert not await _allowed(world, nobody, "get", "nodes", "n1")
    d = await _authz(world).authorize(Attributes(_node("n1"), "get", True, resource="secrets",
                                                 namespace="default", name="n2-secret"))
    assert d.denied and "no relationship with secret default/n2-secret" in d.reason
