from __future__ import annotations

from pathlib import Path
from typing import Any

from pyk8s.api.errors import StatusError
from pyk8s.client.client import Client
from pyk8s.controllers.namespace import NamespaceController, discover_namespaced_resources
from tests.controllers._housekeeping import running, until
from tests.support.apiserver import api_server, info
from tests.support.kubectl import kubectl, write_kubeconfig

NS, CM, SA, PODS, DEPLOY = (info("", "namespaces"), info("", "configmaps"), info("", "serviceaccounts"),
                           info("", "pods"), info("apps", "deployments"))


def pod(name: str) -> dict[str, Any]:
    return {"metadata": {"name": name}, "spec": {"containers": [{"name": "c", "image": "busybox"}]}}


async def _gone(client: Client, name: str) -> bool:
    try:
        await client.get(NS, name)
    except StatusError as e:
        return e.code == 404
    return False


async def test_discovery_finds_namespaced_deletable_resources() -> None:
    async with api_server() as srv, running(srv) as (client, _):
        found, failures = await discover_namespaced_resources(client)
        names = {r.group_resource for r in found}
        assert failures == []
        assert {"pods", "configmaps", "deployments.apps", "leases.coordination.k8s.io"} <= names
        assert "nodes" not in names and "namespaces" not in names and "bindings" not in names


async def test_namespace_drained_conditions_then_finalized() -> None:
    async with api_server() as srv, running(srv, NamespaceController) as (client, _):
        await client.create(NS, {"metadata": {"name": "team"}})
        await client.create(CM, {"metadata": {"name": "plain"}}, "team")
        await client.create(CM, {"metadata": {"name": "held", "finalizers": ["example.com/hold"]}}, "team")
        await client.create(PODS, pod("p"), "team")
        await client.create(DEPLOY, {"metadata": {"name": "d"}, "spec": {
            "selector": {"matchLabels": {"a": "b"}},
            "template": {"metadata": {"labels": {"a": "b"}}, "spec": pod("x")["spec"]}}}, "team")
        await client.delete(NS, "team")

        async def conditions() -> dict[str, Any]:
            ns = await client.get(NS, "team")
            return {c["type"]: c for c in (ns.get("status") or {}).get("conditions") or []}

        async def blocked() -> dict[str, Any] | None:
            c = await conditions()
            return c if c.get("NamespaceFinalizersRemaining", {}).get("status") == "True" else None

        conds = await until(blocked, what="finalizers-remaining condition")
        assert conds["NamespaceContentRemaining"]["reason"] == "SomeResourcesRemain"
        assert conds["NamespaceContentRemaining"]["message"] == \
            "Some resources are remaining: configmaps. has 1 resource instances"
        assert conds["NamespaceFinalizersRemaining"]["message"] == \
            "Some content in the namespace has finalizers remaining: example.com/hold in 1 resource instances"
        assert conds["NamespaceDeletionDiscoveryFailure"]["status"] == "False"
        assert conds["NamespaceDeletionContentFailure"]["reason"] == "ContentDeleted"
        # Everything without a finalizer is gone already.
        assert (await client.list(PODS, "team"))["items"] == []
        assert (await client.list(DEPLOY, "team"))["items"] == []
        assert [c["metadata"]["name"] for c in (await client.list(CM, "team"))["items"]] == ["held"]
        assert (await client.get(NS, "team"))["spec"]["finalizers"] == ["kubernetes"]

        await client.patch(CM, "held", {"metadata": {"finalizers": None}}, "merge", "team")
        await until(lambda: _gone(client, "team"), what="namespace removed")


async def test_kubectl_delete_namespace_returns_once_gone(tmp_path: Path) -> None:
    async with api_server() as srv, running(srv, NamespaceController) as (client, _):
        cfg = write_kubeconfig(srv.url, tmp_path)
        assert (await kubectl(cfg, "create", "namespace", "scratch"))[0] == 0
        assert (await kubectl(cfg, "-n", "scratch", "create", "configmap", "a", "--from-literal=k=v"))[0] == 0
        rc, out = await kubectl(cfg, "delete", "namespace", "scratch", "--timeout=20s")
        assert rc == 0, out
        assert out.strip() == 'namespace "scratch" deleted'
        assert await _gone(client, "scratch")
