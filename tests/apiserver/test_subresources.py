"""pods/binding: one compare-and-swap from the watch cache's copy, correct also when that copy is stale."""

from __future__ import annotations

from typing import Any

from tests.apiserver.conftest import Server
from tests.support.poll import eventually

NS = "/api/v1/namespaces/default"
PODS = "/registry/core/pods/"
PODS_KEY = PODS + "default/"


def pod(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"containers": [{"name": "c", "image": "busybox"}]}}


def binding(name: str, node: str, **meta: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Binding", "metadata": {"name": name, **meta},
            "target": {"kind": "Node", "name": node}}


async def cached(server: Server, name: str, rv: str) -> dict[str, Any]:
    """The watch cache's copy of the pod once it has caught up with `rv`."""
    objects = server.api.caches.caches[PODS].objects

    def current() -> bool:
        obj = objects.get(PODS_KEY + name)
        return obj is not None and obj["metadata"]["resourceVersion"] == rv

    await eventually(current, what=f"the watch cache at {rv}")
    return objects[PODS_KEY + name]


async def test_binding_from_a_stale_cache_copy_keeps_the_newer_write(server: Server) -> None:
    _, created = await server.request("POST", f"{NS}/pods", pod("s"))
    stale = await cached(server, "s", created["metadata"]["resourceVersion"])
    status, labelled = await server.request("PATCH", f"{NS}/pods/s", {"metadata": {"labels": {"a": "b"}}},
                                            content_type="application/merge-patch+json")
    assert status == 200
    # Hold the cache at the older version, as a cache that has not seen the label patch yet.
    server.api.caches.caches[PODS].objects[PODS_KEY + "s"] = stale
    status, body = await server.request("POST", f"{NS}/pods/s/binding", binding("s", "n1"))
    assert status == 201, body
    _, got = await server.request("GET", f"{NS}/pods/s")
    assert got["spec"]["nodeName"] == "n1"
    assert got["metadata"]["labels"] == {"a": "b"}  # the conflict was retried on the current object
    assert int(got["metadata"]["resourceVersion"]) > int(labelled["metadata"]["resourceVersion"])
    assert stale["spec"].get("nodeName") is None  # the cache's object was not changed in place


async def test_binding_checks_the_uid_and_a_deleted_pod(server: Server) -> None:
    _, created = await server.request("POST", f"{NS}/pods", pod("u"))
    status, body = await server.request("POST", f"{NS}/pods/u/binding", binding("u", "n1", uid="other"))
    assert status == 409 and "Precondition failed: UID in precondition: other" in body["message"]
    status, body = await server.request(
        "POST", f"{NS}/pods/u/binding", binding("u", "n1", uid=created["metadata"]["uid"],
                                                annotations={"why": "test"}))
    assert status == 201, body
    _, got = await server.request("GET", f"{NS}/pods/u")
    assert got["spec"]["nodeName"] == "n1" and got["metadata"]["annotations"] == {"why": "test"}
    status, body = await server.request("POST", f"{NS}/pods/gone/binding", binding("gone", "n1"))
    assert status == 404 and body["reason"] == "NotFound"
