"""The async client against a real API server over HTTP: verbs, errors as StatusError, watch."""

from __future__ import annotations

import asyncio

import pytest

from pyk8s.api.errors import StatusError
from pyk8s.client.client import Client, resource_path
from tests.client.conftest import CONFIGMAPS, NAMESPACES, PODS, Server, cm, info

DEPLOYMENTS = info("apps", "deployments")


def test_resource_paths() -> None:
    assert resource_path(PODS, "ns", "p", "status") == "/api/v1/namespaces/ns/pods/p/status"
    assert resource_path(PODS) == "/api/v1/pods"
    assert resource_path(DEPLOYMENTS, "ns") == "/apis/apps/v1/namespaces/ns/deployments"
    assert resource_path(NAMESPACES, "ignored", "n") == "/api/v1/namespaces/n"


async def test_crud(client: Client) -> None:
    created = await client.create(CONFIGMAPS, cm("a"))
    assert created["metadata"]["uid"] and created["metadata"]["resourceVersion"]
    got = await client.get(CONFIGMAPS, "a", "default")
    assert got["data"] == {"k": "v"}

    got["data"]["k"] = "w"
    updated = await client.update(CONFIGMAPS, got)
    assert updated["data"]["k"] == "w"
    assert int(updated["metadata"]["resourceVersion"]) > int(got["metadata"]["resourceVersion"])

    patched = await client.patch(CONFIGMAPS, "a", {"data": {"x": "1"}}, "merge", "default")
    assert patched["data"] == {"k": "w", "x": "1"}
    patched = await client.patch(CONFIGMAPS, "a", [{"op": "remove", "path": "/data/x"}], "json", "default")
    assert patched["data"] == {"k": "w"}
    applied = await client.patch(CONFIGMAPS, "a", {"apiVersion": "v1", "kind": "ConfigMap",
                                                   "metadata": {"name": "a"}, "data": {"k": "applied"}},
                                 "apply", "default", field_manager="test", force=True)
    assert applied["data"]["k"] == "applied"

    listed = await client.list(CONFIGMAPS, "default")
    assert listed["kind"] == "ConfigMapList"
    assert [o["metadata"]["name"] for o in listed["items"]] == ["a"]

    await client.delete(CONFIGMAPS, "a", "default")
    with pytest.raises(StatusError) as e:
        await client.get(CONFIGMAPS, "a", "default")
    assert e.value.code == 404 and e.value.reason == "NotFound"
    assert e.value.message == 'configmaps "a" not found'
    assert e.value.details["name"] == "a"


async def test_errors_are_rebuilt_from_status(client: Client) -> None:
    await client.create(CONFIGMAPS, cm("a"))
    with pytest.raises(StatusError) as e:
        await client.create(CONFIGMAPS, cm("a"))
    assert (e.value.code, e.value.reason) == (409, "AlreadyExists")

    stale = await client.get(CONFIGMAPS, "a", "default")
    await client.patch(CONFIGMAPS, "a", {"data": {"k": "2"}}, "merge", "default")
    with pytest.raises(StatusError) as e:
        await client.update(CONFIGMAPS, stale)
    assert (e.value.code, e.value.reason) == (409, "Conflict")

    with pytest.raises(StatusError) as e:
        await client.create(CONFIGMAPS, cm("Not_Valid"))
    assert (e.value.code, e.value.reason) == (422, "Invalid")
    assert e.value.details["causes"][0]["field"] == "metadata.name"

    with pytest.raises(StatusError) as e:
        await client.delete(CONFIGMAPS, "a", "default", preconditions={"uid": "not-the-uid"})
    assert e.value.code == 409

    with pytest.raises(StatusError) as e:
        await client.list(CONFIGMAPS, "default", label_selector="a in (")
    assert e.value.code == 400


async def test_paginated_list(client: Client) -> None:
    for i in range(7):
        await client.create(CONFIGMAPS, cm(f"c{i}"))
    page = await client.list(CONFIGMAPS, "default", limit=3)
    assert len(page["items"]) == 3 and page["metadata"]["continue"]
    everything = await client.list_all(CONFIGMAPS, "default", page_size=3)
    assert [o["metadata"]["name"] for o in everything["items"]] == [f"c{i}" for i in range(7)]
    assert "continue" not in everything["metadata"]
    assert everything["metadata"]["resourceVersion"] == page["metadata"]["resourceVersion"]


async def test_status_and_binding_subresources(client: Client) -> None:
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "default"},
           "spec": {"containers": [{"name": "c", "image": "busybox"}]}}
    pod = await client.create(PODS, pod)
    pod["status"] = {"phase": "Running", "message": "set through status"}
    updated = await client.update_status(PODS, pod)
    assert updated["status"]["message"] == "set through status"
    await client.create_subresource(PODS, "p", "binding", {
        "apiVersion": "v1", "kind": "Binding", "metadata": {"name": "p", "namespace": "default"},
        "target": {"apiVersion": "v1", "kind": "Node", "name": "node-1"}}, "default")
    assert (await client.get(PODS, "p", "default"))["spec"]["nodeName"] == "node-1"


async def test_writes_without_decoding_the_answer(client: Client) -> None:
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "nd", "namespace": "default"}}
    assert await client.create(CONFIGMAPS, cm, decode=False) == {}
    assert await client.patch(CONFIGMAPS, "nd", {"data": {"k": "v"}}, "merge", "default", decode=False) == {}
    assert (await client.get(CONFIGMAPS, "nd", "default"))["data"] == {"k": "v"}
    with pytest.raises(StatusError) as err:  # errors are still raised from the Status body
        await client.patch(CONFIGMAPS, "absent", {"data": {}}, "merge", "default", decode=False)
    assert err.value.code == 404 and err.value.reason == "NotFound"


async def test_watch_events_and_bookmarks(client: Client) -> None:
    start = await client.list(CONFIGMAPS, "default")
    rv = start["metadata"]["resourceVersion"]
    seen: list[tuple[str, str]] = []
    bookmarks = 0

    async def consume() -> None:
        nonlocal bookmarks
        async for kind, obj in client.watch(CONFIGMAPS, "default", resource_version=rv, allow_bookmarks=True):
            if kind == "BOOKMARK":
                bookmarks += 1
            else:
                seen.append((kind, obj["metadata"]["name"]))
            if len(seen) == 3 and bookmarks:
                return

    task = asyncio.create_task(consume())
    await client.create(CONFIGMAPS, cm("w"))
    await client.patch(CONFIGMAPS, "w", {"data": {"k": "2"}}, "merge", "default")
    await client.delete(CONFIGMAPS, "w", "default")
    async with asyncio.timeout(5):
        await task
    assert seen == [("ADDED", "w"), ("MODIFIED", "w"), ("DELETED", "w")]


async def test_watch_ends_when_the_server_times_it_out(client: Client) -> None:
    events = [e async for e in client.watch(CONFIGMAPS, "default", timeout_seconds=1)]
    assert events == []


async def test_watch_from_a_too_old_version_raises_410(client: Client, server: Server) -> None:
    server.api.caches.cache("/registry/core/configmaps/").ring_size = 2
    first = await client.create(CONFIGMAPS, cm("c0"))
    for i in range(1, 5):
        await client.create(CONFIGMAPS, cm(f"c{i}"))
    rv = first["metadata"]["resourceVersion"]
    with pytest.raises(StatusError) as e:
        async for _ in client.watch(CONFIGMAPS, "default", resource_version=rv):
            pass
    assert (e.value.code, e.value.reason) == (410, "Expired")


async def test_a_refused_watch_raises_before_streaming(client: Client) -> None:
    with pytest.raises(StatusError) as e:
        async for _ in client.watch(CONFIGMAPS, "default", field_selector="spec.nothing=1"):
            pass
    assert e.value.code == 400


async def test_delete_collection_by_selector(client: Client) -> None:
    await client.create(CONFIGMAPS, cm("a", tier="x"))
    await client.create(CONFIGMAPS, cm("b", tier="x"))
    await client.create(CONFIGMAPS, cm("c", tier="y"))
    await client.delete_collection(CONFIGMAPS, "default", label_selector="tier=x")
    left = await client.list(CONFIGMAPS, "default")
    assert [o["metadata"]["name"] for o in left["items"]] == ["c"]
