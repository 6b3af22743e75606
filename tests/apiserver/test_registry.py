"""REST semantics over HTTP, driven by the official `kubernetes` Python client and by raw requests as
kubectl sends them."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any, TypeVar

import orjson
import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from tests.apiserver.conftest import Server

T = TypeVar("T")
NS = "/api/v1/namespaces/default"


class Clients:
    def __init__(self, url: str) -> None:
        cfg = client.Configuration()
        cfg.host = url
        self.api_client = client.ApiClient(cfg)
        self.core = client.CoreV1Api(self.api_client)
        self.apps = client.AppsV1Api(self.api_client)

    async def __call__(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        # The client blocks; the server runs on this loop, so call it from a thread.
        return await asyncio.to_thread(fn, *args, **kwargs)


@pytest.fixture
async def k8s(server: Server) -> AsyncIterator[Clients]:
    c = Clients(server.url)
    yield c
    c.api_client.close()


def configmap(name: str, **data: str) -> client.V1ConfigMap:
    return client.V1ConfigMap(metadata=client.V1ObjectMeta(name=name, labels={"app": "demo"}), data=data)


def pod(name: str, node: str | None = None, **meta: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {"containers": [{"name": "c", "image": "busybox"}]}
    if node:
        spec["nodeName"] = node
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, **meta}, "spec": spec}


def deployment(name: str, replicas: int = 1) -> dict[str, Any]:
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "c", "image": "busybox"}]},
            },
        },
    }


async def test_crud_with_the_official_client(k8s: Clients) -> None:
    created = await k8s(k8s.core.create_namespaced_config_map, "default", configmap("one", a="1"))
    assert created.metadata.uid and created.metadata.creation_timestamp
    assert int(created.metadata.resource_version) > 0
    got = await k8s(k8s.core.read_namespaced_config_map, "one", "default")
    assert got.data == {"a": "1"} and got.metadata.resource_version == created.metadata.resource_version
    got.data["b"] = "2"
    updated = await k8s(k8s.core.replace_namespaced_config_map, "one", "default", got)
    assert updated.data == {"a": "1", "b": "2"}
    assert int(updated.metadata.resource_version) > int(got.metadata.resource_version)
    assert updated.metadata.uid == created.metadata.uid
    patched = await k8s(k8s.core.patch_namespaced_config_map, "one", "default", {"data": {"c": "3"}})
    assert patched.data == {"a": "1", "b": "2", "c": "3"}
    listed = await k8s(k8s.core.list_namespaced_config_map, "default", label_selector="app=demo")
    assert [c.metadata.name for c in listed.items] == ["one"]
    assert int(listed.metadata.resource_version) >= int(patched.metadata.resource_version)
    await k8s(k8s.core.delete_namespaced_config_map, "one", "default")
    with pytest.raises(ApiException) as e:
        await k8s(k8s.core.read_namespaced_config_map, "one", "default")
    assert e.value.status == 404


async def test_create_twice_is_409_already_exists(k8s: Clients) -> None:
    await k8s(k8s.core.create_namespaced_config_map, "default", configmap("dup"))
    with pytest.raises(ApiException) as e:
        await k8s(k8s.core.create_namespaced_config_map, "default", configmap("dup"))
    assert e.value.status == 409
    assert '"reason":"AlreadyExists"' in e.value.body
    assert 'configmaps \\"dup\\" already exists' in e.value.body


async def test_stale_update_is_409_conflict(k8s: Clients) -> None:
    first = await k8s(k8s.core.create_namespaced_config_map, "default", configmap("c"))
    await k8s(k8s.core.patch_namespaced_config_map, "c", "default", {"data": {"x": "1"}})
    first.data = {"y": "2"}
    with pytest.raises(ApiException) as e:
        await k8s(k8s.core.replace_namespaced_config_map, "c", "default", first)
    assert e.value.status == 409
    assert (
        'Operation cannot be fulfilled on configmaps \\"c\\": the object has been modified; '
        "please apply your "
        "changes to the latest version and try again"
    ) in e.value.body


async def test_unconditional_update_without_resource_version(server: Server) -> None:
    await server.request("POST", f"{NS}/configmaps", {"metadata": {"name": "u"}, "data": {"a": "1"}})
    status, body = await server.request(
        "PUT", f"{NS}/configmaps/u", {"metadata": {"name": "u"}, "data": {"a": "2"}}
    )
    assert status == 200 and body["data"] == {"a": "2"}


async def test_update_of_missing_object_is_404_except_create_on_update_kinds(server: Server) -> None:
    status, body = await server.request("PUT", f"{NS}/configmaps/nope", {"metadata": {"name": "nope"}})
    assert status == 404 and body["message"] == 'configmaps "nope" not found'
    svc = {"metadata": {"name": "svc"}, "spec": {"ports": [{"port": 80}], "selector": {"a": "b"}}}
    status, body = await server.request("PUT", f"{NS}/services/svc", svc)
    assert status == 201 and body["metadata"]["name"] == "svc"


async def test_name_and_namespace_mismatches_are_400(server: Server) -> None:
    status, body = await server.request("PUT", f"{NS}/configmaps/a", {"metadata": {"name": "b"}})
    assert status == 400
    assert body["message"] == "the name of the object (b) does not match the name on the URL (a)"
    status, body = await server.request(
        "POST", f"{NS}/configmaps", {"metadata": {"name": "x", "namespace": "o"}}
    )
    assert status == 400
    assert body["message"] == (
        "the namespace of the provided object does not match the namespace sent on the request"
    )


async def test_generate_name(server: Server) -> None:
    names = set()
    for _ in range(5):
        status, body = await server.request(
            "POST", f"{NS}/configmaps", {"metadata": {"generateName": "gen-"}}
        )
        assert status == 201
        names.add(body["metadata"]["name"])
    assert len(names) == 5 and all(n.startswith("gen-") and len(n) == 9 for n in names)
    status, body = await server.request("POST", f"{NS}/configmaps", {"metadata": {}})
    assert status == 422


async def test_namespace_lifecycle(server: Server) -> None:
    status, body = await server.request(
        "POST", "/api/v1/namespaces/missing/configmaps", {"metadata": {"name": "a"}}
    )
    assert status == 404 and body["message"] == 'namespaces "missing" not found'
    assert (await server.request("POST", "/api/v1/namespaces", {"metadata": {"name": "doomed"}}))[0] == 201
    # A create while it is Active (the server keeps the namespace it looked up), then one after the delete:
    # the Terminating version must be the one that counts.
    async def create_in_doomed(name: str) -> tuple[int, Any]:
        return await server.request("POST", "/api/v1/namespaces/doomed/configmaps",
                                    {"metadata": {"name": name}})

    for _ in range(200):  # the watch cache takes the new namespace a moment after the create
        status, _ = await create_in_doomed("before")
        if status == 201:
            break
        assert status == 404
        await asyncio.sleep(0.02)
    assert status == 201
    status, body = await server.request("DELETE", "/api/v1/namespaces/doomed")
    assert status == 200
    assert body["status"]["phase"] == "Terminating" and body["metadata"]["deletionTimestamp"]
    assert body["spec"]["finalizers"] == ["kubernetes"]
    for attempt in range(200):  # the watch cache takes the Terminating version a moment after the delete
        status, body = await create_in_doomed(f"a{attempt}")
        if status == 403:
            break
        assert status == 201
        await asyncio.sleep(0.02)
    assert status == 403
    assert body["message"] == (
        f'configmaps "a{attempt}" is forbidden: unable to create new content in namespace doomed '
        "because it is being terminated"
    )
    # The namespace controller finalizes: the namespace goes once spec.finalizers is empty.
    status, ns = await server.request("GET", "/api/v1/namespaces/doomed")
    ns["spec"]["finalizers"] = []
    status, _ = await server.request("PUT", "/api/v1/namespaces/doomed/finalize", ns)
    assert status == 200
    status, _ = await server.request("GET", "/api/v1/namespaces/doomed")
    assert status == 404
    status, body = await server.request("DELETE", "/api/v1/namespaces/default")
    assert status == 403 and "may not be deleted" in body["message"]


async def test_pagination_with_continue(k8s: Clients) -> None:
    for i in range(7):
        await k8s(k8s.core.create_namespaced_config_map, "default", configmap(f"p{i}"))
    seen: list[str] = []
    token = None
    pages = 0
    while True:
        page = await k8s(k8s.core.list_namespaced_config_map, "default", limit=3, _continue=token)
        pages += 1
        seen.extend(c.metadata.name for c in page.items)
        token = page.metadata._continue
        if not token:
            break
    assert seen == [f"p{i}" for i in range(7)] and pages == 3


async def test_continue_after_compaction_is_410(server: Server) -> None:
    for i in range(3):
        await server.request("POST", f"{NS}/configmaps", {"metadata": {"name": f"c{i}"}})
    status, page = await server.request("GET", f"{NS}/configmaps", limit="1")
    token = page["metadata"]["continue"]
    await server.request("POST", f"{NS}/configmaps", {"metadata": {"name": "later"}})
    await server.store.compact(await server.store.current_revision())
    status, body = await server.request("GET", f"{NS}/configmaps", limit="1", **{"continue": token})
    assert status == 410 and body["reason"] == "Expired"
    assert body["message"].startswith("The provided continue parameter is too old")
    rv = page["metadata"]["resourceVersion"]
    status, body = await server.request(
        "GET", f"{NS}/configmaps", resourceVersion=rv, resourceVersionMatch="Exact"
    )
    assert status == 410 and body["message"] == "The resourceVersion for the provided list is too old."


async def test_list_resource_version_semantics(server: Server) -> None:
    _, a = await server.request("POST", f"{NS}/configmaps", {"metadata": {"name": "a"}})
    rv_a = a["metadata"]["resourceVersion"]
    _, b = await server.request("POST", f"{NS}/configmaps", {"metadata": {"name": "b"}})
    status, exact = await server.request(
        "GET", f"{NS}/configmaps", resourceVersion=rv_a, resourceVersionMatch="Exact"
    )
    assert status == 200 and [i["metadata"]["name"] for i in exact["items"]] == ["a"]
    assert exact["metadata"]["resourceVersion"] == rv_a
    status, newer = await server.request(
        "GET", f"{NS}/configmaps", resourceVersion=rv_a, resourceVersionMatch="NotOlderThan"
    )
    assert status == 200 and len(newer["items"]) == 2
    status, consistent = await server.request("GET", f"{NS}/configmaps")
    assert [i["metadata"]["name"] for i in consistent["items"]] == ["a", "b"]
    assert consistent["metadata"]["resourceVersion"] == b["metadata"]["resourceVersion"]
    status, body = await server.request("GET", f"{NS}/configmaps", resourceVersionMatch="Exact")
    assert status == 400
    future = str(int(b["metadata"]["resourceVersion"]) + 100)
    status, body = await server.request("GET", f"{NS}/configmaps", resourceVersion=future)
    assert status == 504 and body["reason"] == "Timeout"
    assert body["message"].startswith(f"Too large resource version: {future}")


async def test_field_selectors_across_namespaces(server: Server) -> None:
    await server.request("POST", "/api/v1/namespaces", {"metadata": {"name": "other"}})
    await server.request("POST", f"{NS}/pods", pod("on-n1", node="n1"))
    await server.request("POST", f"{NS}/pods", pod("unbound"))
    await server.request("POST", "/api/v1/namespaces/other/pods", pod("else", node="n1"))
    status, body = await server.request("GET", "/api/v1/pods", fieldSelector="spec.nodeName=n1")
    assert status == 200
    assert sorted(i["metadata"]["name"] for i in body["items"]) == ["else", "on-n1"]
    status, body = await server.request("GET", "/api/v1/pods", fieldSelector="spec.nodeName=")
    assert [i["metadata"]["name"] for i in body["items"]] == ["unbound"]
    status, body = await server.request("GET", f"{NS}/pods", fieldSelector="metadata.name=unbound")
    assert [i["metadata"]["name"] for i in body["items"]] == ["unbound"]


async def test_status_subresource_split(server: Server) -> None:
    status, dep = await server.request(
        "POST", "/apis/apps/v1/namespaces/default/deployments", deployment("web")
    )
    assert status == 201 and dep["metadata"]["generation"] == 1
    assert not dep.get("status", {}).get("replicas")
    dep["status"] = {"replicas": 5}
    dep["metadata"]["labels"] = {"changed": "yes"}
    status, main = await server.request("PUT", "/apis/apps/v1/namespaces/default/deployments/web", dep)
    assert status == 200 and main.get("status", {}).get("replicas") is None
    assert main["metadata"]["labels"] == {"changed": "yes"} and main["metadata"]["generation"] == 1
    main["status"] = {"replicas": 3}
    main["spec"]["replicas"] = 9
    status, st = await server.request("PUT", "/apis/apps/v1/namespaces/default/deployments/web/status", main)
    assert status == 200 and st["status"]["replicas"] == 3 and st["spec"]["replicas"] == 1
    status, st = await server.request(
        "PATCH",
        "/apis/apps/v1/namespaces/default/deployments/web/status",
        {"status": {"readyReplicas": 2}},
        content_type="application/merge-patch+json",
    )
    assert status == 200 and st["status"] == {"replicas": 3, "readyReplicas": 2}
    status, got = await server.request("GET", "/apis/apps/v1/namespaces/default/deployments/web/status")
    assert got["status"]["readyReplicas"] == 2
    st["spec"]["replicas"] = 4
    status, bumped = await server.request("PUT", "/apis/apps/v1/namespaces/default/deployments/web", st)
    assert bumped["metadata"]["generation"] == 2 and bumped["status"]["readyReplicas"] == 2


async def test_scale_subresource(k8s: Clients, server: Server) -> None:
    await server.request("POST", "/apis/apps/v1/namespaces/default/deployments", deployment("s", replicas=2))
    scale = await k8s(k8s.apps.read_namespaced_deployment_scale, "s", "default")
    assert scale.spec.replicas == 2 and scale.status.selector == "app=s"
    scale.spec.replicas = 5
    out = await k8s(k8s.apps.replace_namespaced_deployment_scale, "s", "default", scale)
    assert out.spec.replicas == 5
    out = await k8s(k8s.apps.patch_namespaced_deployment_scale, "s", "default", {"spec": {"replicas": 7}})
    assert out.spec.replicas == 7
    dep = await k8s(k8s.apps.read_namespaced_deployment, "s", "default")
    assert dep.spec.replicas == 7 and dep.metadata.generation == 3


async def test_binding_sets_node_once(server: Server) -> None:
    await server.request("POST", f"{NS}/pods", pod("b"))
    binding = {
        "apiVersion": "v1",
        "kind": "Binding",
        "metadata": {"name": "b"},
        "target": {"kind": "Node", "name": "n1"},
    }
    status, body = await server.request("POST", f"{NS}/pods/b/binding", binding)
    assert status == 201 and body["status"] == "Success"
    status, p = await server.request("GET", f"{NS}/pods/b")
    assert p["spec"]["nodeName"] == "n1"
    assert any(c["type"] == "PodScheduled" and c["status"] == "True" for c in p["status"]["conditions"])
    status, body = await server.request("POST", f"{NS}/pods/b/binding", binding | {"target": {"name": "n2"}})
    assert status == 409 and body["reason"] == "Conflict"
    assert body["message"].endswith('pod b is already assigned to node "n1"')


async def test_eviction_deletes_the_pod(server: Server) -> None:
    await server.request("POST", f"{NS}/pods", pod("ev"))
    ev = {"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": "ev", "namespace": "default"}}
    status, _ = await server.request("POST", f"{NS}/pods/ev/eviction", ev)
    assert status == 201
    assert (await server.request("GET", f"{NS}/pods/ev"))[0] == 404


async def test_graceful_pod_deletion(server: Server) -> None:
    await server.request("POST", f"{NS}/pods", pod("unbound"))
    status, body = await server.request("DELETE", f"{NS}/pods/unbound")
    assert status == 200 and (await server.request("GET", f"{NS}/pods/unbound"))[0] == 404
    await server.request("POST", f"{NS}/pods", pod("bound", node="n1"))
    status, body = await server.request("DELETE", f"{NS}/pods/bound")
    assert status == 200
    assert body["metadata"]["deletionTimestamp"] and body["metadata"]["deletionGracePeriodSeconds"] == 30
    assert (await server.request("GET", f"{NS}/pods/bound"))[0] == 200
    # The kubelet finishes with grace 0.
    status, body = await server.request("DELETE", f"{NS}/pods/bound", {"gracePeriodSeconds": 0})
    assert status == 200 and (await server.request("GET", f"{NS}/pods/bound"))[0] == 404


async def test_finalizers_hold_deletion_until_removed(server: Server) -> None:
    await server.request(
        "POST", f"{NS}/configmaps", {"metadata": {"name": "f", "finalizers": ["example.com/x"]}}
    )
    status, body = await server.request("DELETE", f"{NS}/configmaps/f")
    assert status == 200 and body["metadata"]["deletionTimestamp"]
    assert body["metadata"]["deletionGracePeriodSeconds"] == 0
    status, body = await server.request(
        "PATCH",
        f"{NS}/configmaps/f",
        {"metadata": {"finalizers": None}},
        content_type="application/merge-patch+json",
    )
    assert status == 200
    assert (await server.request("GET", f"{NS}/configmaps/f"))[0] == 404


async def test_propagation_policies_add_finalizers(server: Server) -> None:
    for name, policy, finalizer in (("o", "Orphan", "orphan"), ("fg", "Foreground", "foregroundDeletion")):
        await server.request("POST", f"{NS}/configmaps", {"metadata": {"name": name}})
        status, body = await server.request(
            "DELETE", f"{NS}/configmaps/{name}", {"propagationPolicy": policy}
        )
        assert status == 200 and body["metadata"]["finalizers"] == [finalizer]
    await server.request("POST", f"{NS}/configmaps", {"metadata": {"name": "bg"}})
    status, body = await server.request("DELETE", f"{NS}/configmaps/bg", propagationPolicy="Background")
    assert status == 200 and (await server.request("GET", f"{NS}/configmaps/bg"))[0] == 404


async def test_delete_preconditions(server: Server) -> None:
    _, cm = await server.request("POST", f"{NS}/configmaps", {"metadata": {"name": "pre"}})
    status, body = await server.request("DELETE", f"{NS}/configmaps/pre", {"preconditions": {"uid": "other"}})
    assert status == 409
    assert body["message"] == (
        f'Operation cannot be fulfilled on configmaps "pre": Precondition failed: UID in '
        f"precondition: other, UID in object meta: {cm['metadata']['uid']}"
    )
    status, _ = await server.request(
        "DELETE",
        f"{NS}/configmaps/pre",
        {"preconditions": {"resourceVersion": cm["metadata"]["resourceVersion"]}},
    )
    assert status == 200


async def test_dry_run_writes_nothing(server: Server) -> None:
    status, body = await server.request(
        "POST", f"{NS}/configmaps", {"metadata": {"name": "dry"}}, dryRun="All"
    )
    assert status == 201 and body["metadata"]["uid"]
    assert (await server.request("GET", f"{NS}/configmaps/dry"))[0] == 404
    await server.request("POST", f"{NS}/configmaps", {"metadata": {"name": "dry"}, "data": {"a": "1"}})
    status, body = await server.request(
        "PATCH",
        f"{NS}/configmaps/dry",
        {"data": {"a": "2"}},
        dryRun="All",
        content_type="application/merge-patch+json",
    )
    assert status == 200 and body["data"] == {"a": "2"}
    status, body = await server.request("DELETE", f"{NS}/configmaps/dry", dryRun="All")
    assert status == 200
    status, body = await server.request("GET", f"{NS}/configmaps/dry")
    assert status == 200 and body["data"] == {"a": "1"}


async def test_patch_types_and_missing_object(server: Server) -> None:
    await server.request("POST", f"{NS}/configmaps", {"metadata": {"name": "pt"}, "data": {"a": "1"}})
    status, body = await server.request(
        "PATCH",
        f"{NS}/configmaps/pt",
        [{"op": "add", "path": "/data/b", "value": "2"}],
        content_type="application/json-patch+json",
    )
    assert status == 200 and body["data"] == {"a": "1", "b": "2"}
    status, body = await server.request(
        "PATCH",
        f"{NS}/configmaps/pt",
        {"data": {"a": None}},
        content_type="application/strategic-merge-patch+json",
    )
    assert status == 200 and body["data"] == {"b": "2"}
    status, body = await server.request(
        "PATCH", f"{NS}/configmaps/missing", {"data": {}}, content_type="application/merge-patch+json"
    )
    assert status == 404


async def test_server_side_apply_creates_and_requires_field_manager(server: Server) -> None:
    doc = b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ssa\ndata:\n  k: v\n"
    status, body = await server.request(
        "PATCH", f"{NS}/configmaps/ssa", data=doc, content_type="application/apply-patch+yaml"
    )
    assert status == 400
    status, body = await server.request(
        "PATCH",
        f"{NS}/configmaps/ssa",
        data=doc,
        fieldManager="me",
        content_type="application/apply-patch+yaml",
    )
    assert status == 201 and body["data"] == {"k": "v"}
    assert body["metadata"]["managedFields"][0]["manager"] == "me"
    assert body["metadata"]["managedFields"][0]["operation"] == "Apply"
    status, body = await server.request(
        "PATCH",
        f"{NS}/configmaps/ssa",
        data=doc.replace(b"k: v", b"k: w"),
        fieldManager="other",
        content_type="application/apply-patch+yaml",
    )
    assert status == 409 and body["reason"] == "Conflict"
    status, body = await server.request(
        "PATCH",
        f"{NS}/configmaps/ssa",
        data=doc.replace(b"k: v", b"k: w"),
        fieldManager="other",
        force="true",
        content_type="application/apply-patch+yaml",
    )
    assert status == 200 and body["data"] == {"k": "w"}


async def test_noop_update_keeps_resource_version(server: Server) -> None:
    _, cm = await server.request(
        "POST", f"{NS}/configmaps", {"metadata": {"name": "same"}, "data": {"a": "1"}}, fieldManager="m"
    )
    status, again = await server.request("PUT", f"{NS}/configmaps/same", cm, fieldManager="m")
    assert status == 200 and again["metadata"]["resourceVersion"] == cm["metadata"]["resourceVersion"]


async def test_deletecollection(server: Server) -> None:
    for name, app in (("x1", "x"), ("x2", "x"), ("y1", "y")):
        await server.request("POST", f"{NS}/configmaps", {"metadata": {"name": name, "labels": {"app": app}}})
    status, body = await server.request("DELETE", f"{NS}/configmaps", labelSelector="app=x")
    assert status == 200 and sorted(i["metadata"]["name"] for i in body["items"]) == ["x1", "x2"]
    _, left = await server.request("GET", f"{NS}/configmaps")
    assert [i["metadata"]["name"] for i in left["items"]] == ["y1"]


async def test_create_object_and_list_objects_for_the_lead(server: Server) -> None:
    from pyk8s.api.catalog import lookup

    info = lookup("rbac.authorization.k8s.io", "v1", "clusterroles")
    assert info is not None
    await server.api.create_object(info, {"metadata": {"name": "viewer"}, "rules": []})
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 5
    while not any(o["metadata"]["name"] == "viewer" for o in server.api.list_objects(info)):
        assert loop.time() < deadline, "the watch cache never saw the clusterrole"
        await asyncio.sleep(0.01)


async def test_strict_field_validation_applies_to_patches(server: Server) -> None:
    await server.request("POST", f"{NS}/configmaps", {"metadata": {"name": "sv"}})
    status, body = await server.request(
        "PATCH",
        f"{NS}/configmaps/sv",
        {"bogus": 1},
        fieldValidation="Strict",
        content_type="application/merge-patch+json",
    )
    assert status == 400 and body["message"] == 'strict decoding error: unknown field "bogus"'
    status, body = await server.request("GET", f"{NS}/configmaps/sv")
    assert "bogus" not in body


async def test_delete_answers_a_status_or_the_object_as_kubernetes(server: Server) -> None:
    _, cm = await server.request("POST", f"{NS}/configmaps", {"metadata": {"name": "gone"}})
    status, body = await server.request("DELETE", f"{NS}/configmaps/gone")
    assert status == 200
    assert body == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success",
        "details": {"name": "gone", "kind": "configmaps", "uid": cm["metadata"]["uid"]},
    }
    await server.request("POST", f"{NS}/pods", pod("p"))
    status, body = await server.request("DELETE", f"{NS}/pods/p")
    assert status == 200 and body["kind"] == "Pod" and body["metadata"]["name"] == "p"


async def test_the_same_semantics_over_sqlite(tmp_path: Any) -> None:
    import aiohttp

    from pyk8s.apiserver.app import APIServerConfig
    from pyk8s.store.factory import open_store
    from tests.apiserver.conftest import start_server

    store = await open_store(f"sqlite://{tmp_path}/db")
    test_server, api = await start_server(APIServerConfig(store=store))
    try:
        async with aiohttp.ClientSession() as session:
            srv = Server(str(test_server.make_url("")).rstrip("/"), api, store, session)
            _, listed = await srv.request("GET", f"{NS}/configmaps")
            status, cm = await srv.request("POST", f"{NS}/configmaps", {"metadata": {"name": "s"}})
            assert status == 201
            stale = dict(cm, data={"a": "1"})
            status, _ = await srv.request(
                "PATCH",
                f"{NS}/configmaps/s",
                {"data": {"b": "2"}},
                content_type="application/merge-patch+json",
            )
            assert status == 200
            status, body = await srv.request("PUT", f"{NS}/configmaps/s", stale)
            assert status == 409 and body["reason"] == "Conflict"
            params = {"watch": "true", "resourceVersion": listed["metadata"]["resourceVersion"]}
            async with session.get(srv.url + f"{NS}/configmaps", params=params) as resp:
                lines = [orjson.loads(await asyncio.wait_for(resp.content.readline(), 5)) for _ in range(2)]
            assert [(e["type"], e["object"]["metadata"]["name"]) for e in lines] == [
                ("ADDED", "s"),
                ("MODIFIED", "s"),
            ]
    finally:
        await test_server.close()
        await store.close()


async def test_admission_sees_every_write_and_can_mutate_and_refuse(server: Server) -> None:
    from pyk8s.api.errors import forbidden
    from pyk8s.apiserver.interfaces import AdmissionRequest

    seen: list[tuple[str, str, str, str]] = []

    class Recorder:
        name = "recorder"

        async def admit(self, request: AdmissionRequest) -> None:
            seen.append(("admit", request.operation, request.resource.plural, request.subresource))
            if request.operation == "CREATE" and request.obj is not None and not request.subresource:
                request.obj["metadata"].setdefault("labels", {})["admitted"] = "yes"

        async def validate(self, request: AdmissionRequest) -> None:
            seen.append(("validate", request.operation, request.resource.plural, request.subresource))
            if request.name == "refused":
                raise forbidden("refused by policy")

    server.api.registry.plugins.append(Recorder())
    status, created = await server.request("POST", f"{NS}/pods", pod("adm"))
    assert status == 201 and created["metadata"]["labels"] == {"admitted": "yes"}
    binding = {"apiVersion": "v1", "kind": "Binding", "metadata": {"name": "adm"}, "target": {"name": "n1"}}
    assert (await server.request("POST", f"{NS}/pods/adm/binding", binding))[0] == 201
    eviction = {
        "apiVersion": "policy/v1",
        "kind": "Eviction",
        "metadata": {"name": "adm"},
        "deleteOptions": {"gracePeriodSeconds": 0},
    }
    assert (await server.request("POST", f"{NS}/pods/adm/eviction", eviction))[0] == 201
    assert [s for s in seen if s[0] == "validate"] == [
        ("validate", "CREATE", "pods", ""),
        ("validate", "CREATE", "pods", "binding"),
        ("validate", "CREATE", "pods", "eviction"),
        ("validate", "DELETE", "pods", ""),
    ]
    status, body = await server.request("POST", f"{NS}/configmaps", {"metadata": {"name": "refused"}})
    assert status == 403 and body["message"] == "refused by policy"
    assert (await server.request("GET", f"{NS}/configmaps/refused"))[0] == 404
