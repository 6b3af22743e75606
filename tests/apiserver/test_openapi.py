"""OpenAPI documents, kubectl explain, and the field validation kubectl relies on."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from pyk8s.api import catalog
from pyk8s.apiserver import discovery, openapi
from pyk8s.apiserver.openapi import document
from tests.apiserver.conftest import Server
from tests.apiserver.test_discovery import needs_kubectl, run_kubectl, serve
from tests.support.kubectl import kubectl, write_kubeconfig


@pytest.fixture
async def api_surface() -> AsyncIterator[str]:
    runner, url = await serve(discovery.add_routes, openapi.add_routes)
    try:
        yield url
    finally:
        await runner.cleanup()


def _info(group: str, plural: str) -> Any:
    info = catalog.lookup(group, "v1", plural)
    assert info is not None
    return info


def test_definitions_named_as_kubernetes() -> None:
    pod = openapi.resource_definition(_info("", "pods"))
    assert pod == "io.k8s.api.core.v1.Pod"
    assert openapi.resource_definition(_info("apps", "deployments")) == "io.k8s.api.apps.v1.Deployment"
    assert openapi.resource_definition(_info("events.k8s.io", "events")) == "io.k8s.api.events.v1.Event"
    assert openapi.definition_name("autoscaling", "v1", "Scale") == "io.k8s.api.autoscaling.v1.Scale"
    doc = document.openapi_v2()
    defs = doc["definitions"]
    container = defs["io.k8s.api.core.v1.Container"]
    assert container["required"] == ["name"]
    assert "description" in container["properties"]["image"]
    assert defs["io.k8s.api.core.v1.ServicePort"]["properties"]["targetPort"]["$ref"] == (
        "#/definitions/io.k8s.apimachinery.pkg.util.intstr.IntOrString"
    )
    assert defs["io.k8s.apimachinery.pkg.util.intstr.IntOrString"]["format"] == "int-or-string"
    limits = defs["io.k8s.api.core.v1.ResourceRequirements"]["properties"]["limits"]
    quantity = "#/definitions/io.k8s.apimachinery.pkg.api.resource.Quantity"
    assert limits["additionalProperties"]["$ref"] == quantity
    containers = defs["io.k8s.api.core.v1.PodSpec"]["properties"]["containers"]
    assert containers["x-kubernetes-patch-merge-key"] == "name"
    assert containers["x-kubernetes-patch-strategy"] == "merge"
    assert defs["io.k8s.api.core.v1.Pod"]["x-kubernetes-group-version-kind"] == [
        {"group": "", "version": "v1", "kind": "Pod"}
    ]
    assert "ObjectMeta" in defs["io.k8s.api.core.v1.Pod"]["properties"]["metadata"]["$ref"]


def test_every_write_operation_offers_field_validation() -> None:
    """kubectl takes the first PATCH operation of a kind it finds (map order) and checks it for
    fieldValidation, so every one of them must list it."""
    for gv in document.group_versions():
        doc = document.openapi_v3(gv)
        patches = 0
        for path, item in doc["paths"].items():
            for method in ("patch", "put", "post"):
                op = item.get(method)
                if op is None:
                    continue
                names = {(p["name"], p["in"]) for p in op["parameters"]}
                assert ("fieldValidation", "query") in names, (path, method)
                assert "x-kubernetes-group-version-kind" in op and "x-kubernetes-action" in op
                patches += method == "patch"
        kinds = [i for i in catalog.CATALOG if i.api_version == gv and "patch" in i.verbs]
        assert patches >= len(kinds)


def test_v3_document_is_self_contained() -> None:
    doc = document.openapi_v3("apps/v1")
    schemas = doc["components"]["schemas"]
    text = repr(doc)
    for ref in {part.split("'")[0] for part in text.split("#/components/schemas/")[1:]}:
        assert ref in schemas, ref
    assert "/apis/apps/v1/namespaces/{namespace}/deployments/{name}/scale" in doc["paths"]
    assert "io.k8s.api.core.v1.PodSpec" in schemas


def test_unknown_fields() -> None:
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p", "labels": {"a": "b"}, "colour": "red"},
        "spec": {
            "containers": [
                {
                    "name": "c",
                    "image": "i",
                    "imagePullPolcy": "Always",
                    "ports": [{"containerPort": 80, "bogus": 1}],
                    "resources": {"limits": {"cpu": "1"}},
                }
            ],
            "nodeSelector": {"any-key": "ok"},
            "extra": {},
        },
        "status": {"phase": "Running"},
    }
    assert openapi.unknown_fields(_info("", "pods"), pod) == [
        "metadata.colour",
        "spec.containers[0].imagePullPolcy",
        "spec.containers[0].ports[0].bogus",
        "spec.extra",
    ]
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"k": "v"}}
    assert openapi.unknown_fields(_info("", "configmaps"), cm) == []
    # Free-form fields (ControllerRevision.data, managedFields' fieldsV1) take anything.
    rev = {
        "metadata": {"name": "r", "managedFields": [{"fieldsV1": {"f:x": {}}}]},
        "revision": 1,
        "data": {"spec": {"anything": True}},
    }
    assert openapi.unknown_fields(_info("apps", "controllerrevisions"), rev) == []


async def test_v3_index_and_hash_urls(api_surface: str) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.get(api_surface + "/openapi/v3") as resp:
            index = (await resp.json())["paths"]
        assert set(index) == {document.v3_path(gv) for gv in document.group_versions()}
        url = index["apis/apps/v1"]["serverRelativeURL"]
        async with session.get(api_surface + url) as resp:
            assert resp.status == 200 and resp.headers["Cache-Control"] == "public, immutable"
            assert (await resp.json())["openapi"] == "3.0.0"
            etag = resp.headers["ETag"]
        async with session.get(
            api_surface + "/openapi/v3/apis/apps/v1?hash=stale", allow_redirects=False
        ) as resp:
            assert resp.status == 301 and resp.headers["Location"] == url
        async with session.get(api_surface + url, headers={"If-None-Match": etag}) as resp:
            assert resp.status == 304
        async with session.get(api_surface + "/openapi/v3/apis/nope/v1") as resp:
            assert resp.status == 404 and (await resp.json())["kind"] == "Status"


async def test_v2_json_or_406(api_surface: str) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.get(api_surface + "/openapi/v2", headers={"Accept": "application/json"}) as resp:
            assert resp.status == 200 and (await resp.json())["swagger"] == "2.0"
        protobuf = "application/com.github.proto-openapi.spec.v2@v1.0+protobuf"
        async with session.get(api_surface + "/openapi/v2", headers={"Accept": protobuf}) as resp:
            assert resp.status == 406
        async with session.get(
            api_surface + "/openapi/v2", headers={"Accept": protobuf + ", application/json"}
        ) as resp:
            assert resp.status == 200


@needs_kubectl
async def test_kubectl_explain(api_surface: str, tmp_path: Path) -> None:
    config = write_kubeconfig(api_surface, tmp_path)
    out = await run_kubectl(config, "explain", "pods.spec.containers")
    assert "KIND:       Pod" in out and "FIELD: containers <[]Container>" in out
    assert "List of containers belonging to the pod." in out
    assert "imagePullPolicy\t<string>" in out
    out = await run_kubectl(config, "explain", "deployment.spec", "--recursive")
    assert "GROUP:      apps" in out and "DeploymentSpec is the specification of the desired behavior" in out
    assert "selector\t<LabelSelector> -required-" in out
    assert "containers\t<[]Container> -required-" in out


async def _apply_refused(server: Server, tmp_path: Path, manifest: str, *flags: str) -> str:
    """`kubectl apply -f` of the manifest, which must fail: its output (stderr merged)."""
    path = tmp_path / "manifest.yaml"
    path.write_text(manifest)
    status, out = await kubectl(write_kubeconfig(server.url, tmp_path), "apply", "-f", str(path), *flags)
    assert status != 0
    return out


@needs_kubectl
async def test_kubectl_apply_gets_server_side_strict_validation(server: Server, tmp_path: Path) -> None:
    """The full API server: kubectl finds fieldValidation in the OpenAPI, sends fieldValidation=Strict
    and reports the server's strict decoding error."""
    manifest = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\nfoo: bar\ndata:\n  a: b\n"
    text = await _apply_refused(server, tmp_path, manifest, "-v=6")
    assert "fieldValidation=Strict" in text
    assert 'strict decoding error: unknown field "foo"' in text


@needs_kubectl
async def test_kubectl_apply_nested_unknown_field_is_refused(server: Server, tmp_path: Path) -> None:
    """Unknown fields deep in the object are found through the schema, as Kubernetes names them."""
    err = await _apply_refused(
        server,
        tmp_path,
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\nspec:\n  containers:\n  - name: c\n"
        "    image: busybox\n    imagePullPolcy: Always\n",
    )
    assert 'unknown field "spec.containers[0].imagePullPolcy"' in err
    status, _ = await server.request("GET", "/api/v1/namespaces/default/pods/p")
    assert status == 404
