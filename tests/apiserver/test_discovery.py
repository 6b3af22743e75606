"""Discovery documents, checked over HTTP and with the real kubectl and the official Python client."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator, Callable, Mapping
from pathlib import Path

import aiohttp
import orjson
import pytest
from aiohttp import web

from pyk8s.api import catalog
from pyk8s.apiserver import discovery
from tests.support.kubectl import kubectl, write_kubeconfig

KUBECTL = shutil.which("kubectl")
needs_kubectl = pytest.mark.skipif(KUBECTL is None, reason="kubectl not on PATH")


async def serve(*register: Callable[[web.Application], None]) -> tuple[web.AppRunner, str]:
    app = web.Application()
    for add in register:
        add(app)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    return runner, f"http://127.0.0.1:{port}"


async def run_kubectl(kubeconfig: Path, *args: str) -> str:
    status, out = await kubectl(kubeconfig, *args)
    assert status == 0, f"kubectl {' '.join(args)} failed: {out}"
    return out


@pytest.fixture
async def discovery_url() -> AsyncIterator[str]:
    runner, url = await serve(discovery.add_routes)
    try:
        yield url
    finally:
        await runner.cleanup()


async def get(url: str, accept: str = "application/json") -> tuple[int, Mapping[str, str], bytes]:
    async with aiohttp.ClientSession() as session, session.get(url, headers={"Accept": accept}) as resp:
        return resp.status, resp.headers.copy(), await resp.read()


async def test_version(discovery_url: str) -> None:
    async with aiohttp.ClientSession() as session, session.get(discovery_url + "/version") as resp:
        doc = await resp.json()
    assert doc["major"] == "1" and doc["minor"] == "32"
    assert doc["gitVersion"].startswith("v1.32.")
    assert "platform" in doc and "goVersion" in doc


async def test_core_resource_list(discovery_url: str) -> None:
    async with aiohttp.ClientSession() as session, session.get(discovery_url + "/api/v1") as resp:
        doc = await resp.json()
    assert doc["kind"] == "APIResourceList" and doc["groupVersion"] == "v1"
    by_name = {r["name"]: r for r in doc["resources"]}
    pods = by_name["pods"]
    assert pods["shortNames"] == ["po"] and pods["categories"] == ["all"] and pods["namespaced"]
    assert pods["storageVersionHash"] == "xPOwRZ+Yhw8="  # the hash a real 1.32 cluster reports
    assert by_name["pods/status"]["verbs"] == ["get", "patch", "update"]
    assert by_name["pods/eviction"]["group"] == "policy" and by_name["pods/eviction"]["kind"] == "Eviction"
    assert by_name["bindings"]["verbs"] == ["create"] and "storageVersionHash" not in by_name["bindings"]
    assert not by_name["namespaces"]["namespaced"]
    assert "deletecollection" not in by_name["namespaces"]["verbs"]


async def test_group_documents(discovery_url: str) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.get(discovery_url + "/apis") as resp:
            groups = (await resp.json())["groups"]
        async with session.get(discovery_url + "/apis/apps") as resp:
            apps = await resp.json()
        async with session.get(discovery_url + "/apis/apps/v1") as resp:
            apps_v1 = await resp.json()
    names = [g["name"] for g in groups]
    assert names[0] == "apps" and set(names) == {g for g in catalog.GROUP_ORDER if g}
    assert apps["kind"] == "APIGroup"
    assert apps["preferredVersion"] == {"groupVersion": "apps/v1", "version": "v1"}
    scale = next(r for r in apps_v1["resources"] if r["name"] == "deployments/scale")
    assert (scale["group"], scale["version"], scale["kind"]) == ("autoscaling", "v1", "Scale")


async def test_aggregated_discovery_negotiation(discovery_url: str) -> None:
    accept = (
        "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,"
        "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json;q=0.9"
    )
    status, headers, body = await get(discovery_url + "/apis", accept)
    assert status == 200
    assert headers["Content-Type"] == "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
    doc = orjson.loads(body)
    assert doc["kind"] == "APIGroupDiscoveryList" and doc["apiVersion"] == "apidiscovery.k8s.io/v2"
    apps = next(i for i in doc["items"] if i["metadata"].get("name") == "apps")
    deploy = next(r for r in apps["versions"][0]["resources"] if r["resource"] == "deployments")
    assert deploy["scope"] == "Namespaced" and deploy["shortNames"] == ["deploy"]
    scale_kind = {"group": "autoscaling", "version": "v1", "kind": "Scale"}
    scale = {"subresource": "scale", "responseKind": scale_kind, "verbs": ["get", "patch", "update"]}
    assert scale in deploy["subresources"]
    # A client that revalidates gets 304 with the same ETag.
    async with (
        aiohttp.ClientSession() as session,
        session.get(
            discovery_url + "/apis", headers={"Accept": accept, "If-None-Match": headers["ETag"]}
        ) as resp,
    ):
        assert resp.status == 304
    status, headers, body = await get(discovery_url + "/api", accept.replace("v=v2;", "v=v2beta1;", 1))
    assert headers["Content-Type"].endswith("v=v2beta1;as=APIGroupDiscoveryList")
    assert orjson.loads(body)["items"][0]["versions"][0]["version"] == "v1"
    # Plain JSON still gets the legacy documents.
    status, headers, body = await get(discovery_url + "/api")
    assert headers["Content-Type"].startswith("application/json") and orjson.loads(body)["versions"] == ["v1"]


@needs_kubectl
async def test_kubectl_api_resources(discovery_url: str, tmp_path: Path) -> None:
    config = write_kubeconfig(discovery_url, tmp_path)
    out = await run_kubectl(config, "api-resources", "--no-headers")
    rows = {(line.split()[0], line.split()[-1]): line.split() for line in out.splitlines()}
    assert ("pods", "Pod") in rows and rows[("pods", "Pod")] == ["pods", "po", "v1", "true", "Pod"]
    assert rows[("deployments", "Deployment")] == ["deployments", "deploy", "apps/v1", "true", "Deployment"]
    assert rows[("namespaces", "Namespace")] == ["namespaces", "ns", "v1", "false", "Namespace"]
    assert rows[("leases", "Lease")] == ["leases", "coordination.k8s.io/v1", "true", "Lease"]
    assert len(out.splitlines()) == len(catalog.CATALOG)
    wide = await run_kubectl(config, "api-resources", "--categories=all", "-o", "name")
    assert set(wide.split()) == {
        "pods",
        "replicationcontrollers",
        "services",
        "daemonsets.apps",
        "deployments.apps",
        "replicasets.apps",
        "statefulsets.apps",
        "cronjobs.batch",
        "jobs.batch",
    }
    versions = await run_kubectl(config, "api-versions")
    assert set(versions.split()) == {i.api_version for i in catalog.CATALOG}


@needs_kubectl
async def test_kubectl_version(discovery_url: str, tmp_path: Path) -> None:
    out = await run_kubectl(write_kubeconfig(discovery_url, tmp_path), "version")
    assert "Server Version: v1.32.0-pyk8s" in out


async def test_official_client_discovery(discovery_url: str) -> None:
    from kubernetes import client

    config = client.Configuration()
    config.host = discovery_url
    with client.ApiClient(config) as api:
        version = await asyncio.to_thread(client.VersionApi(api).get_code)
        core = await asyncio.to_thread(client.CoreV1Api(api).get_api_resources)
        groups = await asyncio.to_thread(client.ApisApi(api).get_api_versions)
    assert version.git_version == discovery.GIT_VERSION
    assert any(r.name == "pods" and r.short_names == ["po"] for r in core.resources)
    assert any(g.name == "batch" for g in groups.groups)


async def test_official_dynamic_client_finds_resources(discovery_url: str) -> None:
    """The dynamic client walks the legacy discovery documents to map kinds to resources."""
    from kubernetes import client, dynamic

    config = client.Configuration()
    config.host = discovery_url
    with client.ApiClient(config) as api:
        dyn = await asyncio.to_thread(dynamic.DynamicClient, api)
        deployments = await asyncio.to_thread(dyn.resources.get, api_version="apps/v1", kind="Deployment")
        leases = await asyncio.to_thread(
            dyn.resources.get, api_version="coordination.k8s.io/v1", kind="Lease"
        )
    assert (deployments.name, deployments.namespaced, deployments.short_names) == (
        "deployments",
        True,
        ["deploy"],
    )
    assert leases.name == "leases"
