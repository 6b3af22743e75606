"""NodeRestriction: what a node may write — its own Node (never its taints or node-restriction labels),
only mirror pods bound to it, only the status of its pods, its own Lease; the hollow agent's identity
for hollow nodes only."""

from __future__ import annotations

from typing import Any

import pytest

from pyk8s.api import catalog
from pyk8s.api.errors import StatusError
from pyk8s.api.resource import ResourceInfo
from pyk8s.apiserver.admission_noderestriction import NodeRestriction
from pyk8s.apiserver.interfaces import AdmissionRequest, UserInfo

Obj = dict[str, Any]
PODS = catalog.lookup("", "v1", "pods")
NODES = catalog.lookup("", "v1", "nodes")
LEASES = catalog.lookup("coordination.k8s.io", "v1", "leases")
assert PODS is not None and NODES is not None and LEASES is not None

STORE: dict[tuple[str, str, str], Obj] = {
    ("pods", "default", "mine"): {"metadata": {"name": "mine", "namespace": "default"},
                                  "spec": {"nodeName": "n1"}},
    ("pods", "default", "theirs"): {"metadata": {"name": "theirs", "namespace": "default"},
                                    "spec": {"nodeName": "n2"}},
}


def _get(info: ResourceInfo, namespace: str, name: str) -> Obj | None:
    return STORE.get((info.plural, namespace, name))


def _node_user(name: str) -> UserInfo:
    return UserInfo(f"system:node:{name}", groups=("system:nodes", "system:authenticated"))


async def _check(op: str, info: ResourceInfo, name: str, obj: Obj | None, old: Obj | None = None, *,
                 user: str = "n1", sub: str = "", ns: str = "") -> None:
    req = AdmissionRequest(op, info, sub, ns, name, obj, old, _node_user(user), False)
    await NodeRestriction(_get).validate(req)


async def _refused(*args: Any, **kwargs: Any) -> str:
    with pytest.raises(StatusError) as e:
        await _check(*args, **kwargs)
    assert e.value.code == 403
    return e.value.message


def _node(name: str, labels: dict[str, str] | None = None, taints: list[Obj] | None = None) -> Obj:
    return {"metadata": {"name": name, "labels": labels or {}}, "spec": {"taints": taints or []}}


async def test_nodes() -> None:
    assert NODES is not None
    await _check("CREATE", NODES, "", _node("n1", {"kubernetes.io/hostname": "n1"}))
    assert "not allowed to modify node \"n2\"" in await _refused("CREATE", NODES, "", _node("n2"))
    assert "not allowed to set the labels" in await _refused(
        "CREATE", NODES, "", _node("n1", {"node-restriction.kubernetes.io/tier": "gold"}))
    old = _node("n1", {"a": "1"}, [{"key": "k", "effect": "NoSchedule"}])
    await _check("UPDATE", NODES, "n1", _node("n1", {"a": "2"}, [{"key": "k", "effect": "NoSchedule"}]), old)
    await _check("UPDATE", NODES, "n1", _node("n1", {"a": "1"}), old, sub="status")  # status keeps spec
    untainted = _node("n1", {"a": "1"})
    assert "not allowed to modify taints" in await _refused("UPDATE", NODES, "n1", untainted, old)
    assert "labels under node-restriction" in await _refused(
        "UPDATE", NODES, "n1", _node("n1", {"a": "1", "node-restriction.kubernetes.io/x": "y"},
                                     [{"key": "k", "effect": "NoSchedule"}]), old)
    assert "not allowed to modify node" in await _refused("DELETE", NODES, "n2", None, _node("n2"))
    # someone who is not a node is none of this plugin's business
    req = AdmissionRequest("DELETE", NODES, "", "", "n2", None, _node("n2"), UserInfo("admin"), False)
    await NodeRestriction(_get).validate(req)


async def test_hollow_nodes_need_the_hollow_label() -> None:
    assert NODES is not None
    await _check("CREATE", NODES, "", _node("hollow-2", {"type": "hollow"}), user="hollow")
    assert "as a hollow node" in await _refused("CREATE", NODES, "", _node("hollow-2"), user="hollow")


async def test_pods() -> None:
    assert PODS is not None
    mine, theirs = STORE[("pods", "default", "mine")], STORE[("pods", "default", "theirs")]
    await _check("UPDATE", PODS, "mine", mine, mine, sub="status", ns="default")
    assert "status of pods bound to itself" in await _refused(
        "UPDATE", PODS, "theirs", theirs, theirs, sub="status", ns="default")
    assert "can only update pod status" in await _refused("UPDATE", PODS, "mine", mine, mine, ns="default")
    await _check("DELETE", PODS, "mine", None, mine, ns="default")
    refused = await _refused("DELETE", PODS, "theirs", None, theirs, ns="default")
    assert "delete pods bound to itself" in refused
    await _check("CREATE", PODS, "mine", {"kind": "Eviction"}, sub="eviction", ns="default")
    assert "evict" in await _refused("CREATE", PODS, "theirs", {"kind": "Eviction"}, sub="eviction",
                                     ns="default")


async def test_only_plain_mirror_pods_bound_to_itself() -> None:
    assert PODS is not None
    mirror = {"kubernetes.io/config.mirror": "hash"}
    ok = {"metadata": {"name": "static", "annotations": mirror}, "spec": {"nodeName": "n1", "containers": []}}
    await _check("CREATE", PODS, "", ok, ns="default")
    assert "only create mirror pods" in await _refused(
        "CREATE", PODS, "", {"metadata": {"name": "x"}, "spec": {"nodeName": "n1"}}, ns="default")
    assert "bound to itself" in await _refused(
        "CREATE", PODS, "", {"metadata": {"name": "x", "annotations": mirror}, "spec": {"nodeName": "n2"}},
        ns="default")
    with_secret = {"metadata": {"name": "x", "annotations": mirror},
                   "spec": {"nodeName": "n1", "volumes": [{"name": "s", "secret": {"secretName": "s"}}]}}
    assert "reference secrets" in await _refused("CREATE", PODS, "", with_secret, ns="default")


async def test_leases() -> None:
    assert LEASES is not None
    lease = {"metadata": {"name": "n1", "namespace": "kube-node-lease"}}
    await _check("CREATE", LEASES, "", lease, ns="kube-node-lease")
    await _check("UPDATE", LEASES, "n1", lease, lease, ns="kube-node-lease")
    assert "own lease" in await _refused("UPDATE", LEASES, "n2", lease, lease, ns="kube-node-lease")
    assert "own lease" in await _refused("CREATE", LEASES, "", lease, ns="default")
