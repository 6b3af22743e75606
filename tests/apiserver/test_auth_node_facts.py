"""NodeFacts: the node checks read a pod's node and a node's hollow label from the watch cache's encoded
objects, once per version, shared by the Node authorizer and NodeRestriction — and decide exactly as when
they decoded the object on every question: a node that loses its hollow label, or a pod re-created on
another node, is seen at once; an object the cache does not hold is read with get_object."""

from __future__ import annotations

import re
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pyk8s.api.errors import StatusError
from pyk8s.api.patch import MERGE_PATCH
from pyk8s.api.resource import ResourceInfo
from pyk8s.apiserver.admission_noderestriction import NodeRestriction
from pyk8s.apiserver.auth.node import NodeAuthorizer, NodeFacts, NodeScope
from pyk8s.apiserver.auth.rbac import RBACAuthorizer
from pyk8s.apiserver.auth.stack import (
    build_auth_stack,
    watch_cache_object,
    watch_cache_pod_changes,
    watch_cache_pods,
)
from pyk8s.apiserver.interfaces import AdmissionRequest, Attributes, UserInfo
from pyk8s.apiserver.registry import DeleteOptions, RequestContext
from pyk8s.server.pki import ensure_pki
from tests.apiserver.test_auth_node import World, _node, _pod, world  # noqa: F401 (the fixture)
from tests.support.apiserver import PODS, api_server, info
from tests.support.poll import eventually

Obj = dict[str, Any]
NODES = info("", "nodes")
HOLLOW = _node("hollow")


class Cache:
    """The world as a watch cache holds it: storage key → encoded JSON; counts reads that missed it."""

    def __init__(self, w: World) -> None:
        self.world = w
        self.raw: dict[str, bytes] = {}
        self.fetched: list[str] = []
        for plural in ("pods", "nodes"):
            for obj in w.objects[plural]:
                self.put(plural, obj)

    def key(self, plural: str, namespace: str, name: str) -> str:
        return f"/registry/core/{plural}/{namespace + '/' if namespace else ''}{name}"

    def put(self, plural: str, obj: Obj) -> None:
        meta = obj["metadata"]
        self.raw[self.key(plural, meta.get("namespace", ""), meta["name"])] = orjson.dumps(obj)

    def raw_object(self, prefix: str, key: str) -> bytes | None:
        assert key.startswith(prefix)
        return self.raw.get(key)

    def get_object(self, info: ResourceInfo, namespace: str, name: str) -> Obj | None:
        self.fetched.append(name)
        return self.world.get_object(info, namespace, name)

    def raw_pods(self) -> dict[str, bytes]:
        return {k: v for k, v in self.raw.items() if k.startswith("/registry/core/pods/")}


def _stack(cache: Cache) -> tuple[NodeAuthorizer, NodeRestriction, NodeFacts]:
    facts = NodeFacts(cache.get_object, cache.raw_object)
    authz = NodeAuthorizer(RBACAuthorizer(cache.world.lister), cache.get_object, cache.world.lister,
                           cache.raw_pods, facts)
    return authz, NodeRestriction(cache.get_object, facts), facts


async def _allowed(a: NodeAuthorizer, user: UserInfo, verb: str, resource: str, name: str = "",
                   ns: str = "", sub: str = "") -> bool:
    return (await a.authorize(Attributes(user, verb, True, namespace=ns, resource=resource,
                                         subresource=sub, name=name))).allowed


async def _node_denies(a: NodeAuthorizer, user: UserInfo, verb: str, resource: str, name: str,
                       sub: str = "") -> bool:
    """Whether the Node authorizer itself refuses (this server has no RBAC policy to allow anything)."""
    d = await a.authorize(Attributes(user, verb, True, resource=resource, subresource=sub, name=name))
    assert not d.allowed
    return d.denied


async def _admitted(nr: NodeRestriction, user: UserInfo, op: str, res: ResourceInfo, name: str,
                    obj: Obj | None, old: Obj | None = None, sub: str = "", ns: str = "") -> bool:
    try:
        await nr.validate(AdmissionRequest(op, res, sub, ns, name, obj, old, user, False))
    except StatusError as e:
        assert e.code == 403
        return False
    return True


async def test_a_node_that_loses_its_hollow_label_is_no_longer_spoken_for(world: World) -> None:  # noqa: F811
    cache = Cache(world)
    authz, nr, facts = _stack(cache)
    node = {"metadata": {"name": "hollow-3", "labels": {"type": "hollow"}}}
    assert await _allowed(authz, HOLLOW, "update", "nodes", "hollow-3", sub="status")
    assert await _allowed(authz, HOLLOW, "patch", "pods", "h", "default", "status")
    assert await _admitted(nr, HOLLOW, "UPDATE", NODES, "hollow-3", node, node, sub="status")
    assert cache.fetched == []  # every answer came from the cached bytes
    key = cache.key("nodes", "", "hollow-3")
    seen = facts._nodes.entries[key]
    assert seen[0] is cache.raw[key] and seen[1] is True  # one derivation for the three questions

    cache.put("nodes", {"metadata": {"name": "hollow-3", "labels": {"type": "real"}}})
    assert not await _allowed(authz, HOLLOW, "update", "nodes", "hollow-3", sub="status")
    assert not await _allowed(authz, HOLLOW, "patch", "pods", "h", "default", "status")
    assert not await _admitted(nr, HOLLOW, "UPDATE", NODES, "hollow-3", node, node, sub="status")
    assert not await _allowed(authz, HOLLOW, "get", "configmaps", "hollow-cm", "default")  # its pod's
    cache.put("nodes", {"metadata": {"name": "hollow-3", "labels": {"type": "hollow"}}})  # labelled again
    assert await _allowed(authz, HOLLOW, "get", "configmaps", "hollow-cm", "default")
    assert await _allowed(authz, HOLLOW, "update", "nodes", "hollow-3", sub="status")


async def test_a_pod_recreated_on_another_node_belongs_to_that_node(world: World) -> None:  # noqa: F811
    cache = Cache(world)
    authz, nr, _ = _stack(cache)
    assert await _allowed(authz, _node("n2"), "patch", "pods", "other", "default", "status")
    assert await _allowed(authz, _node("n2"), "get", "secrets", "n2-secret", "default")
    assert not await _allowed(authz, _node("n1"), "delete", "pods", "other", "default")
    assert not await _admitted(nr, _node("n1"), "CREATE", PODS, "other", {"kind": "Eviction"}, sub="eviction",
                               ns="default")

    # "other" deleted and created again under the same name, bound to n1 this time
    cache.put("pods", _pod("other", "n1", volumes=[{"name": "s", "secret": {"secretName": "n2-secret"}}]))
    assert not await _allowed(authz, _node("n2"), "patch", "pods", "other", "default", "status")
    assert not await _allowed(authz, _node("n2"), "get", "secrets", "n2-secret", "default")
    assert await _allowed(authz, _node("n1"), "delete", "pods", "other", "default")
    assert await _allowed(authz, _node("n1"), "get", "secrets", "n2-secret", "default")
    assert await _admitted(nr, _node("n1"), "CREATE", PODS, "other", {"kind": "Eviction"}, sub="eviction",
                           ns="default")
    assert cache.fetched == []

    del cache.raw[cache.key("pods", "default", "other")]  # gone from the cache: gone from the node's pods
    assert not await _allowed(authz, _node("n1"), "get", "secrets", "n2-secret", "default")
    assert authz._by_node.keys() == {"n1", "hollow-3"}


async def test_objects_the_cache_does_not_hold_are_read_with_get_object(world: World) -> None:  # noqa: F811
    cache = Cache(world)
    authz, nr, _ = _stack(cache)
    cache.raw.clear()  # a cache that has not caught up: the world (the store) still has everything
    assert await _allowed(authz, _node("n1"), "patch", "pods", "web", "default", "status")
    assert not await _allowed(authz, _node("n2"), "patch", "pods", "web", "default", "status")
    assert not await _allowed(authz, _node("n1"), "patch", "pods", "nosuch", "default", "status")
    assert await _allowed(authz, HOLLOW, "update", "nodes", "hollow-3")
    assert not await _allowed(authz, HOLLOW, "update", "nodes", "hollow-9")  # exists, not hollow
    assert await _allowed(authz, HOLLOW, "update", "nodes", "hollow-4")  # not registered yet
    assert await _admitted(nr, HOLLOW, "CREATE", NODES, "", {"metadata": {"name": "hollow-4",
                                                                         "labels": {"type": "hollow"}}})
    assert cache.fetched == ["web", "web", "nosuch", "hollow-3", "hollow-9", "hollow-4", "hollow-4"]
    world.objects["nodes"][0]["metadata"]["labels"] = {}  # not remembered: the next read sees the change
    assert not await _allowed(authz, HOLLOW, "update", "nodes", "hollow-3")


async def test_the_memo_is_bounded() -> None:
    w = World()
    w.objects["nodes"] += [{"metadata": {"name": f"hollow-{i}", "labels": {"type": "hollow"}}}
                           for i in range(5)]
    cache = Cache(w)
    facts = NodeFacts(cache.get_object, cache.raw_object, node_limit=3)
    for i in range(5):
        assert await facts.node_hollow(f"hollow-{i}") is True
    assert list(facts._nodes.entries) == [cache.key("nodes", "", f"hollow-{i}") for i in (2, 3, 4)]
    assert await facts.node_hollow("hollow-0") is True  # derived again, the oldest (hollow-2) dropped
    assert list(facts._nodes.entries) == [cache.key("nodes", "", f"hollow-{i}") for i in (3, 4, 0)]
    assert cache.fetched == []


async def test_the_real_watch_cache_and_the_stack_share_one_memo(tmp_path: Any) -> None:
    pki = ensure_pki(tmp_path / "data")
    async with api_server() as srv:
        stack = build_auth_stack(
            sa_private_key=pki.sa_key.read_bytes(), sa_public_key=pki.sa_pub.read_bytes(),
            get_object=srv.api.get_object, lister=srv.api.list_objects,
            raw_pods=lambda: watch_cache_pods(srv.api.caches),
            raw_object=lambda prefix, key: watch_cache_object(srv.api.caches, prefix, key))
        facts = stack.authorizer.facts
        assert stack.node_restriction.scope.facts is facts
        await srv.api.create_object(NODES, {"metadata": {"name": "hollow-1", "labels": {"type": "hollow"}}})
        key = NODES.storage_key(None, "hollow-1")

        def cached() -> bytes | None:
            return watch_cache_object(srv.api.caches, NODES.storage_prefix(), key)

        await eventually(cached, what="the node cached")
        assert not await _node_denies(stack.authorizer, HOLLOW, "update", "nodes", "hollow-1", sub="status")
        assert facts._nodes.entries[key][1] is True

        ctx = RequestContext(UserInfo("admin", groups=("system:masters",)))
        before = cached()
        await srv.api.registry.patch(NODES, "", "hollow-1", MERGE_PATCH,
                                     {"metadata": {"labels": {"type": None}}}, ctx)
        await eventually(lambda: cached() is not before,
                         what="the change cached")
        assert await _node_denies(stack.authorizer, HOLLOW, "update", "nodes", "hollow-1", sub="status")
        with pytest.raises(StatusError) as refused:
            await stack.node_restriction.validate(AdmissionRequest(
                "UPDATE", NODES, "status", "", "hollow-1", {"metadata": {"name": "hollow-1"}},
                {"metadata": {"name": "hollow-1"}}, HOLLOW, False))
        assert refused.value.code == 403


def _secret_pod(name: str, node: str, secret: str) -> Obj:
    return {"metadata": {"name": name, "namespace": "default"},
            "spec": {"nodeName": node, "containers": [{"name": "c", "image": "busybox"}],
                     "volumes": [{"name": "s", "secret": {"secretName": secret}}]}}


async def test_the_authorizer_follows_pod_changes_of_the_real_watch_cache(tmp_path: Any) -> None:
    pki = ensure_pki(tmp_path / "data")
    scans: list[int] = []
    async with api_server() as srv:
        def raw_pods() -> Any:
            scans.append(1)
            return watch_cache_pods(srv.api.caches)

        stack = build_auth_stack(
            sa_private_key=pki.sa_key.read_bytes(), sa_public_key=pki.sa_pub.read_bytes(),
            get_object=srv.api.get_object, lister=srv.api.list_objects, raw_pods=raw_pods,
            pod_changes=lambda since: watch_cache_pod_changes(srv.api.caches, since),
            raw_object=lambda prefix, key: watch_cache_object(srv.api.caches, prefix, key))
        authz = stack.authorizer

        async def refused(node: str, secret: str) -> bool:
            d = await authz.authorize(Attributes(_node(node), "get", True, namespace="default",
                                                 resource="secrets", name=secret))
            return d.denied

        def cached(name: str) -> bytes | None:
            key = PODS.storage_key("default", name)
            return watch_cache_object(srv.api.caches, PODS.storage_prefix(), key)

        async def create(name: str, node: str, secret: str) -> None:
            await srv.api.create_object(PODS, _secret_pod(name, node, secret))
            await eventually(lambda: cached(name), what=f"pod {name} cached")

        async def delete(name: str) -> None:
            await srv.api.registry.delete(PODS, "default", name, DeleteOptions(grace_period_seconds=0),
                                          RequestContext(UserInfo("admin", groups=("system:masters",))))
            await eventually(lambda: cached(name) is None, what=f"pod {name} gone from the cache")

        await create("a", "n1", "sa")
        assert not await refused("n1", "sa") and await refused("n2", "sa")
        assert scans == [1]  # the first request reads every cached pod once ...
        await create("b", "n2", "sb")
        await create("c", "n1", "sc")
        assert not await refused("n2", "sb") and not await refused("n1", "sc") and await refused("n1", "sb")
        await delete("a")  # ... later ones only what changed
        assert await refused("n1", "sa")
        await delete("b")
        await create("b", "n1", "sb")  # the same name bound to another node
        assert not await refused("n1", "sb") and await refused("n2", "sb")
        assert scans == [1]
        assert set(authz._by_node) == {"n1"} and set(authz._by_node["n1"]) == {
            PODS.storage_key("default", "b"), PODS.storage_key("default", "c")}

        # More changes than the ring keeps: the next request reads every cached pod again.
        cache = srv.api.caches.caches[PODS.storage_prefix()]
        cache.ring_size = 2
        await delete("c")
        for i in range(len(cache.ring)):  # each event drops one: past every event the authorizer saw
            await create(f"f{i}", "n2", "sf")
        await create("d", "n2", "sd")
        await create("e", "n2", "se")
        assert await refused("n1", "sc") and not await refused("n2", "sd") and not await refused("n2", "se")
        assert scans == [1, 1]
        assert not await refused("n1", "sb")
        assert scans == [1, 1]


@given(st.text(max_size=6), st.text(alphabet=st.sampled_from("0123456789-.\n٣x"), max_size=6))
def test_may_be_hollow_is_the_pattern_identity_dash_digits(identity: str, suffix: str) -> None:
    scope = NodeScope(lambda info, ns, name: None)
    for name in (identity + suffix, identity + "-" + suffix, suffix):
        assert scope.may_be_hollow(identity, name) is (
            re.fullmatch(re.escape(identity) + r"-\d+", name) is not None), (identity, name)
