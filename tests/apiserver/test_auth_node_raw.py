"""The Node authorizer reading the watch cache's encoded pods (`raw_pods`): the same decisions as through
the lister, and each pod decoded once per change."""

from __future__ import annotations

from typing import Any

import orjson

from pyk8s.apiserver.auth.node import NodeAuthorizer
from pyk8s.apiserver.auth.rbac import RBACAuthorizer
from pyk8s.apiserver.interfaces import Attributes, UserInfo
from tests.apiserver.test_auth_node import World, _node, _pod, world  # noqa: F401 (the fixture)

Obj = dict[str, Any]


class RawWorld:
    """The world's pods as a watch cache holds them: key → encoded JSON."""

    def __init__(self, w: World) -> None:
        self.raw = {f"/registry/pods/{p['metadata']['namespace']}/{p['metadata']['name']}": orjson.dumps(p)
                    for p in w.objects["pods"]}


def _authz(w: World, raw: RawWorld) -> NodeAuthorizer:
    def no_listing(info: Any) -> list[Obj]:
        assert info.plural != "pods", "pods come from raw_pods"
        return w.lister(info)
    return NodeAuthorizer(RBACAuthorizer(w.lister), w.get_object, no_listing, raw_pods=lambda: raw.raw)


async def _allowed(a: NodeAuthorizer, user: UserInfo, verb: str, resource: str, name: str = "",
                   ns: str = "", sub: str = "") -> bool:
    return (await a.authorize(Attributes(user, verb, True, namespace=ns, resource=resource,
                                         subresource=sub, name=name))).allowed


async def test_same_decisions_as_through_the_lister(world: World) -> None:  # noqa: F811
    a = _authz(world, RawWorld(world))
    for resource, name, ok in [("secrets", "web-tls", True), ("configmaps", "proj", True),
                               ("configmaps", "env-cm", True), ("secrets", "pull", True),
                               ("secrets", "n2-secret", False), ("configmaps", "hollow-cm", False)]:
        assert await _allowed(a, _node("n1"), "get", resource, name, "default") is ok, (resource, name)
    assert await _allowed(a, _node("n1"), "get", "persistentvolumes", "pv-1")
    assert not await _allowed(a, _node("n2"), "get", "persistentvolumes", "pv-1")
    assert await _allowed(a, _node("n1"), "create", "serviceaccounts", "web-sa", "default", "token")
    assert await _allowed(a, _node("n2"), "create", "serviceaccounts", "default", "default", "token")
    assert not await _allowed(a, _node("n1"), "create", "serviceaccounts", "default", "default", "token")
    assert await _allowed(_authz(world, RawWorld(world)), _node("hollow"), "get", "configmaps", "hollow-cm",
                          "default")


async def test_changed_and_deleted_pods_are_seen_unchanged_ones_kept(world: World) -> None:  # noqa: F811
    raw = RawWorld(world)
    a = _authz(world, raw)
    assert not await _allowed(a, _node("n2"), "get", "secrets", "new", "default")
    kept = dict(a._summaries)
    # A new pod of n2 using secret "new", and pod "other" deleted.
    raw.raw["/registry/pods/default/late"] = orjson.dumps(
        _pod("late", "n2", volumes=[{"name": "s", "secret": {"secretName": "new"}}]))
    del raw.raw["/registry/pods/default/other"]
    assert await _allowed(a, _node("n2"), "get", "secrets", "new", "default")
    assert not await _allowed(a, _node("n2"), "get", "secrets", "n2-secret", "default")
    web = "/registry/pods/default/web"
    assert a._summaries[web][1] is kept[web][1]  # not decoded again
    # web changes: it no longer uses web-tls
    raw.raw[web] = orjson.dumps(_pod("web", "n1"))
    assert not await _allowed(a, _node("n1"), "get", "secrets", "web-tls", "default")
