from __future__ import annotations

from pathlib import Path
from typing import Any

from pyk8s.api.errors import StatusError
from pyk8s.api.resource import ResourceInfo
from pyk8s.client.client import Client
from pyk8s.controllers.garbagecollector import GarbageCollector
from tests.controllers._housekeeping import running, until
from tests.support.apiserver import api_server, info
from tests.support.kubectl import kubectl, write_kubeconfig

CM, PODS, RS, DEPLOY = info("", "configmaps"), info("", "pods"), info("apps", "replicasets"), \
    info("apps", "deployments")
NS = "default"
POD_SPEC = {"containers": [{"name": "c", "image": "busybox"}]}
TEMPLATE = {"metadata": {"labels": {"app": "w"}}, "spec": POD_SPEC}


def ref(owner: dict[str, Any], block: bool = False) -> dict[str, Any]:
    r = {"apiVersion": owner["apiVersion"], "kind": owner["kind"], "name": owner["metadata"]["name"],
         "uid": owner["metadata"]["uid"]}
    if block:
        r["blockOwnerDeletion"] = True
    return r


async def cm(client: Client, name: str, *owners: dict[str, Any], finalizers: tuple[str, ...] = (),
             block: bool = False) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if owners:
        meta["ownerReferences"] = [ref(o, block) for o in owners]
    if finalizers:
        meta["finalizers"] = list(finalizers)
    return await client.create(CM, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta}, NS)


async def exists(client: Client, info: ResourceInfo, name: str) -> dict[str, Any] | None:
    try:
        return await client.get(info, name, NS)
    except StatusError as e:
        assert e.code == 404
        return None


async def gone(client: Client, info: ResourceInfo, name: str) -> bool:
    return await exists(client, info, name) is None


async def test_background_dependents_of_a_deleted_owner_go() -> None:
    async with api_server() as srv, running(srv, GarbageCollector) as (client, _):
        owner = await cm(client, "owner")
        await cm(client, "dep-1", owner)
        await cm(client, "dep-2", owner)
        pod = await client.create(PODS, {"metadata": {"name": "p", "ownerReferences": [ref(owner)]},
                                         "spec": POD_SPEC}, NS)
        assert pod["metadata"]["ownerReferences"][0]["uid"] == owner["metadata"]["uid"]
        await client.delete(CM, "owner", NS)  # background is the default for configmaps
        for info, name in ((CM, "dep-1"), (CM, "dep-2"), (PODS, "p")):
            await until(lambda i=info, n=name: gone(client, i, n), what=f"{name} collected")


async def test_owner_that_never_existed_and_multiple_owners() -> None:
    async with api_server() as srv, running(srv, GarbageCollector) as (client, _):
        ghost = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "ghost", "uid": "no-such-uid"}}
        await cm(client, "orphaned", ghost)
        await until(lambda: gone(client, CM, "orphaned"), what="dependent of a missing owner collected")
        # An owner created just now (maybe not in the collector's graph yet) keeps its dependent: the
        # collector reads the owner live before deciding.
        a = await cm(client, "a")
        b = await cm(client, "b")
        await cm(client, "shared", a, b)
        await client.delete(CM, "a", NS)

        async def only_b() -> bool:
            obj = await exists(client, CM, "shared")
            assert obj is not None, "a dependent with a remaining owner must stay"
            return [r["name"] for r in obj["metadata"]["ownerReferences"]] == ["b"]
        await until(only_b, what="reference to the deleted owner removed")
        await client.delete(CM, "b", NS)
        await until(lambda: gone(client, CM, "shared"), what="collected once its last owner went")


async def test_foreground_waits_for_blocking_dependents() -> None:
    async with api_server() as srv, running(srv, GarbageCollector) as (client, _):
        deploy = await client.create(DEPLOY, {"apiVersion": "apps/v1", "kind": "Deployment",
                                              "metadata": {"name": "web"},
                                              "spec": {"selector": {"matchLabels": {"app": "w"}},
                                                       "template": TEMPLATE}}, NS)
        rs = await client.create(RS, {"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {
            "name": "web-1", "ownerReferences": [{**ref(deploy, True), "controller": True}]},
            "spec": {"selector": {"matchLabels": {"app": "w"}}, "template": TEMPLATE}}, NS)
        await client.create(PODS, {"metadata": {"name": "web-1-a", "labels": {"app": "w"},
                                                "ownerReferences": [{**ref(rs, True), "controller": True}]},
                                   "spec": POD_SPEC}, NS)
        # A blocking dependent that cannot go yet: its own finalizer holds it.
        await cm(client, "held", deploy, finalizers=("example.com/hold",), block=True)
        await client.delete(DEPLOY, "web", NS, propagation_policy="Foreground")

        await until(lambda: gone(client, PODS, "web-1-a"), what="grandchild pod deleted first")
        await until(lambda: gone(client, RS, "web-1"), what="replicaset deleted")

        async def held_deleting() -> bool:
            obj = await exists(client, CM, "held")
            return obj is not None and bool(obj["metadata"].get("deletionTimestamp"))
        await until(held_deleting, what="held dependent marked for deletion")
        d = await exists(client, DEPLOY, "web")
        assert d is not None and d["metadata"]["finalizers"] == ["foregroundDeletion"]
        await client.patch(CM, "held", {"metadata": {"finalizers": None}}, "merge", NS)
        await until(lambda: gone(client, DEPLOY, "web"), what="owner removed after its dependents")


async def test_orphan_keeps_dependents_without_the_reference() -> None:
    async with api_server() as srv, running(srv, GarbageCollector) as (client, _):
        owner = await cm(client, "owner")
        other = await cm(client, "other")
        await cm(client, "dep", owner, other)
        await cm(client, "solo", owner)
        await client.delete(CM, "owner", NS, propagation_policy="Orphan")
        await until(lambda: gone(client, CM, "owner"), what="owner removed")
        solo = await exists(client, CM, "solo")
        dep = await exists(client, CM, "dep")
        assert solo is not None and "ownerReferences" not in solo["metadata"]
        assert dep is not None and [r["name"] for r in dep["metadata"]["ownerReferences"]] == ["other"]


async def test_kubectl_cascade_orphan_and_foreground(tmp_path: Path) -> None:
    async with api_server() as srv, running(srv, GarbageCollector) as (client, _):
        cfg = write_kubeconfig(srv.url, tmp_path)
        for name in ("kept", "gone"):
            owner = await cm(client, name)
            await cm(client, f"{name}-child", owner, block=True)
        rc, out = await kubectl(cfg, "delete", "configmap", "kept", "--cascade=orphan")
        assert rc == 0, out
        await until(lambda: gone(client, CM, "kept"), what="orphaning owner removed")
        child = await exists(client, CM, "kept-child")
        assert child is not None and "ownerReferences" not in child["metadata"]
        # --cascade=foreground with kubectl's wait: returns once the owner is gone, after its child.
        rc, out = await kubectl(cfg, "delete", "configmap", "gone", "--cascade=foreground", "--timeout=20s")
        assert rc == 0, out
        assert await gone(client, CM, "gone-child") and await gone(client, CM, "gone")
