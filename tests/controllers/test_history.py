"""ControllerRevision helpers: hashing, naming, ordering, collisions and history truncation, against a real
API server where they write."""

from __future__ import annotations

from typing import Any

from pyk8s.client.client import Client
from pyk8s.client.transport import HTTPTransport
from pyk8s.controllers import history
from pyk8s.controllers.daemonset import DAEMONSETS
from tests.support.apiserver import api_server

Obj = dict[str, Any]


def owner(image: str = "busybox:1") -> Obj:
    return {"apiVersion": "apps/v1", "kind": "DaemonSet",
            "metadata": {"name": "agent", "namespace": "default", "uid": "u-1"},
            "spec": {"template": {"metadata": {"labels": {"app": "agent"}},
                                  "spec": {"containers": [{"name": "c", "image": image}]}}}}


def test_hash_is_stable_safe_and_depends_on_data_and_collisions() -> None:
    data = history.template_patch(owner())
    assert data["spec"]["template"]["$patch"] == "replace"
    h = history.hash_revision(data)
    assert h == history.hash_revision(history.template_patch(owner()))
    assert set(h) <= set("bcdfghjklmnpqrstvwxz2456789")
    assert h != history.hash_revision(history.template_patch(owner("busybox:2")))
    assert h != history.hash_revision(data, 1)
    assert history.hash_revision(data, 0) == h  # no collisions: as if none were counted


def test_new_revision_names_labels_and_owner() -> None:
    data = history.template_patch(owner())
    rev = history.new_revision(owner(), DAEMONSETS, data, 3, None, history.CONTROLLER_REVISION_HASH_LABEL)
    digest = history.hash_revision(data)
    assert rev["metadata"]["name"] == f"agent-{digest}"
    assert rev["metadata"]["labels"] == {"app": "agent", "controller-revision-hash": digest}
    assert rev["revision"] == 3
    ref = rev["metadata"]["ownerReferences"][0]
    assert (ref["kind"], ref["uid"]) == ("DaemonSet", "u-1")
    assert ref["controller"] is True and ref["blockOwnerDeletion"] is True


def test_sort_and_next() -> None:
    revs = [{"metadata": {"name": n, "creationTimestamp": "2026-01-01T00:00:00Z"}, "revision": r}
            for n, r in (("c", 3), ("a", 1), ("b", 2))]
    assert [r["metadata"]["name"] for r in history.sort_revisions(revs)] == ["a", "b", "c"]
    assert history.next_revision(revs) == 4
    assert history.next_revision([]) == 1


async def test_create_collision_and_truncate() -> None:
    async with api_server() as srv:
        client = Client(HTTPTransport(srv.url))
        try:
            ds = await client.create(DAEMONSETS, {
                **owner(), "metadata": {"name": "agent", "namespace": "default"},
                "spec": {**owner()["spec"], "selector": {"matchLabels": {"app": "agent"}}}})
            data = history.template_patch(ds)
            label = history.CONTROLLER_REVISION_HASH_LABEL
            first, count = await history.create_revision(client, {"data": data, "revision": 1}, ds,
                                                         DAEMONSETS, 0, label)
            assert count == 0 and first["metadata"]["name"] == f"agent-{history.hash_revision(data)}"
            # equal data under the same name: that revision, no collision
            again, count = await history.create_revision(client, {"data": data, "revision": 1}, ds,
                                                         DAEMONSETS, 0, label)
            assert count == 0 and again["metadata"]["uid"] == first["metadata"]["uid"]
            # different data whose name is taken: the collision count moves and the name changes
            other = history.template_patch(owner("busybox:2"))
            taken = history.new_revision(ds, DAEMONSETS, other, 2, None, label)
            taken["data"] = history.template_patch(owner("busybox:3"))
            await client.create(history.CONTROLLER_REVISIONS, taken)
            made, count = await history.create_revision(client, {"data": other, "revision": 2}, ds,
                                                        DAEMONSETS, 0, label)
            assert count == 1
            assert made["metadata"]["name"] == f"agent-{history.hash_revision(other, 1)}"
            assert made["data"] == other

            revs = (await client.list(history.CONTROLLER_REVISIONS, "default"))["items"]
            assert len(revs) == 3
            keep = made["metadata"]["name"]
            await history.truncate_history(client, revs, {keep}, 1)
            left = {r["metadata"]["name"] for r in (await client.list(history.CONTROLLER_REVISIONS,
                                                                      "default"))["items"]}
            # the live one stays, and of the two unused the newest (by revision number) is kept
            assert keep in left and len(left) == 2
        finally:
            await client.close()
