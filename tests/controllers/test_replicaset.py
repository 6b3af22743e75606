"""The ReplicaSet and ReplicationController controllers against a real API server."""

from __future__ import annotations

from typing import Any

from pyk8s.api.errors import forbidden
from pyk8s.apiserver.interfaces import AdmissionRequest
from pyk8s.client.client import Client
from pyk8s.client.events import EVENTS
from pyk8s.controllers.replicaset import (
    PODS,
    REPLICASETS,
    REPLICATION_CONTROLLERS,
    new_replicaset_controller,
    new_replication_controller,
    pods_to_delete,
    slow_start_batch,
)
from tests.controllers._apps import controllers, make_ready, pods
from tests.controllers._housekeeping import until
from tests.support.apiserver import api_server

Obj = dict[str, Any]


def template(app: str, image: str = "nginx:1.25") -> Obj:
    return {"metadata": {"labels": {"app": app}},
            "spec": {"containers": [{"name": "c", "image": image}]}}


def replicaset(name: str, replicas: int, app: str | None = None, **spec: Any) -> Obj:
    app = app or name
    return {"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": name},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": app}},
                     "template": template(app), **spec}}


async def rs_status(client: Client, name: str) -> Obj:
    obj = await client.get(REPLICASETS, name, "default")
    status: Obj = obj.get("status") or {}
    return status


async def test_scale_up_and_down_with_status_and_events() -> None:
    async with api_server() as srv, controllers(srv, new_replicaset_controller) as (client, _):
        await client.create(REPLICASETS, replicaset("web", 3), "default")
        created = await until(lambda: _count(client, "app=web", 3), what="3 pods")
        for p in created:
            ref = p["metadata"]["ownerReferences"][0]
            assert ref["kind"] == "ReplicaSet" and ref["name"] == "web"
            assert ref["controller"] is True and ref["blockOwnerDeletion"] is True
            assert p["metadata"]["generateName"] == "web-"
            assert p["metadata"]["labels"] == {"app": "web"}
        st = await until(lambda: _status_is(client, "web", replicas=3), what="status replicas 3")
        assert st["observedGeneration"] == 1 and "readyReplicas" not in st

        for p in created[:2]:
            await make_ready(client, p)
        await until(lambda: _status_is(client, "web", readyReplicas=2, availableReplicas=2,
                                       fullyLabeledReplicas=3), what="2 ready")

        # Scale down to 1: the not-ready pod goes first, then one of the ready ones.
        await client.patch(REPLICASETS, "web", {"spec": {"replicas": 1}}, "merge", "default")
        left = await until(lambda: _count(client, "app=web", 1), what="1 pod left")
        assert left[0]["metadata"]["name"] in {p["metadata"]["name"] for p in created[:2]}
        await until(lambda: _status_is(client, "web", replicas=1, observedGeneration=2), what="status")

        events = await until(lambda: _events(client, "web", 5), what="events")
        messages = {(e["reason"], e["message"]) for e in events}
        for p in created:
            assert ("SuccessfulCreate", f"Created pod: {p['metadata']['name']}") in messages
        assert sum(1 for r, _ in messages if r == "SuccessfulDelete") == 2


async def test_replaces_deleted_pods_and_ignores_terminating_ones() -> None:
    async with api_server() as srv, controllers(srv, new_replicaset_controller) as (client, _):
        await client.create(REPLICASETS, replicaset("web", 2), "default")
        first = await until(lambda: _count(client, "app=web", 2), what="2 pods")
        # A pod on a node is deleted gracefully: it stays, terminating, and a replacement is made at once.
        await make_ready(client, first[0])
        await client.delete(PODS, first[0]["metadata"]["name"], "default")
        after = await until(lambda: _count(client, "app=web", 2), what="a replacement")
        assert first[0]["metadata"]["name"] not in {p["metadata"]["name"] for p in after}
        everything = await pods(client, "app=web", active=False)
        assert len(everything) == 3  # the terminating one is still there, not counted
        await until(lambda: _status_is(client, "web", replicas=2), what="status counts active pods only")


async def test_adopts_orphans_and_releases_pods_that_stop_matching() -> None:
    async with api_server() as srv, controllers(srv, new_replicaset_controller) as (client, _):
        orphan = await client.create(PODS, {"metadata": {"name": "stray", "labels": {"app": "web"}},
                                            "spec": template("web")["spec"]}, "default")
        rs = await client.create(REPLICASETS, replicaset("web", 2), "default")
        await until(lambda: _count(client, "app=web", 2), what="2 pods")

        async def adopted() -> bool:
            p = await client.get(PODS, "stray", "default")
            refs = p["metadata"].get("ownerReferences") or []
            return bool(refs) and refs[0]["uid"] == rs["metadata"]["uid"] and refs[0]["controller"]
        await until(adopted, what="the orphan adopted")
        assert len(await pods(client, "app=web")) == 2  # only one pod was created besides the orphan
        assert orphan["metadata"]["uid"] == (await client.get(PODS, "stray", "default"))["metadata"]["uid"]

        # Relabel it: the ReplicaSet releases it and makes another.
        await client.patch(PODS, "stray", {"metadata": {"labels": {"app": "other"}}}, "merge", "default")

        async def released() -> bool:
            p = await client.get(PODS, "stray", "default")
            return not p["metadata"].get("ownerReferences")
        await until(released, what="the pod released")
        await until(lambda: _count(client, "app=web", 2), what="a replacement for the released pod")


async def test_available_only_after_min_ready_seconds() -> None:
    async with api_server() as srv, controllers(srv, new_replicaset_controller) as (client, _):
        await client.create(REPLICASETS, replicaset("web", 2, minReadySeconds=3600), "default")
        a, b = await until(lambda: _count(client, "app=web", 2), what="2 pods")
        await make_ready(client, a, since="2020-01-01T00:00:00Z")  # ready for years
        await make_ready(client, b)  # ready just now
        await until(lambda: _status_is(client, "web", readyReplicas=2, availableReplicas=1),
                    what="1 available")
        await client.patch(REPLICASETS, "web", {"spec": {"minReadySeconds": 0}}, "merge", "default")
        await until(lambda: _status_is(client, "web", readyReplicas=2, availableReplicas=2),
                    what="2 available")


async def test_replication_controller() -> None:
    async with api_server() as srv, controllers(srv, new_replication_controller) as (client, _):
        rc = {"apiVersion": "v1", "kind": "ReplicationController", "metadata": {"name": "old"},
              "spec": {"replicas": 2, "selector": {"app": "old"}, "template": template("old")}}
        await client.create(REPLICATION_CONTROLLERS, rc, "default")
        created = await until(lambda: _count(client, "app=old", 2), what="2 pods")
        assert created[0]["metadata"]["ownerReferences"][0]["kind"] == "ReplicationController"

        async def status() -> bool:
            obj = await client.get(REPLICATION_CONTROLLERS, "old", "default")
            return bool((obj.get("status") or {}).get("replicas") == 2)
        await until(status, what="rc status")


class PodQuota:
    """An admission plugin, as ResourceQuota: at most `limit` pods may be created."""

    name = "PodQuota"

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.created = 0

    async def admit(self, request: AdmissionRequest) -> None:
        pass

    async def validate(self, request: AdmissionRequest) -> None:
        if request.operation == "CREATE" and request.resource.plural == "pods" and not request.subresource:
            if self.created >= self.limit:
                message = (f'pods "{request.name}" is forbidden: exceeded quota: q, requested: pods=1, '
                           f"used: pods={self.created}, limited: pods={self.limit}")
                raise forbidden(message, "pods", request.name)
            self.created += 1


async def test_failed_create_sets_replica_failure() -> None:
    quota = PodQuota(2)
    async with api_server(admission=[quota]) as srv, \
            controllers(srv, new_replicaset_controller) as (client, _):
        await client.create(REPLICASETS, replicaset("bad", 5), "default")

        async def failure() -> Obj | None:
            for c in (await rs_status(client, "bad")).get("conditions") or []:
                if c["type"] == "ReplicaFailure":
                    return dict(c)
            return None
        cond = await until(failure, what="ReplicaFailure")
        assert cond["status"] == "True" and cond["reason"] == "FailedCreate"
        events = await until(lambda: _events(client, "bad", 1), what="FailedCreate event")
        failed = [e for e in events if e["reason"] == "FailedCreate"]
        assert failed and failed[0]["type"] == "Warning"
        assert failed[0]["message"].startswith("Error creating: pods")
        assert len(await pods(client, "app=bad")) == 2
        # The quota lifted, the ReplicaSet completes and the condition goes.
        quota.limit = 100
        await until(lambda: _count(client, "app=bad", 5), what="5 pods")
        await until(lambda: _status_is(client, "bad", replicas=5, conditions=None), what="condition removed")


async def test_slow_start_batches() -> None:
    calls = 0

    async def fn() -> None:
        nonlocal calls
        calls += 1
        if calls > 7:
            raise RuntimeError("quota")

    ok, err = await slow_start_batch(20, 1, fn)
    # Batches 1, 2, 4 (7 calls) succeed, the batch of 8 fails: nothing after it is tried.
    assert ok == 7 and isinstance(err, RuntimeError) and calls == 15


def _pod(name: str, node: str = "", phase: str = "Pending", ready: bool = False, created: str = "",
         restarts: int = 0, cost: int | None = None) -> Obj:
    status: Obj = {"phase": phase, "conditions": [
        {"type": "Ready", "status": "True" if ready else "False", "lastTransitionTime": created}],
        "containerStatuses": [{"restartCount": restarts}]}
    m: Obj = {"name": name, "creationTimestamp": created or None}
    if cost is not None:
        m["annotations"] = {"controller.kubernetes.io/pod-deletion-cost": str(cost)}
    return {"metadata": m, "spec": {"nodeName": node}, "status": status}


def test_deletion_ranking() -> None:
    t1, t2 = "2024-01-01T00:00:00Z", "2024-01-02T00:00:00Z"
    pods_ = [
        _pod("ready-old", "n1", "Running", True, t1),
        _pod("ready-new", "n2", "Running", True, t2),
        _pod("unassigned", "", "Pending", False, t1),
        _pod("pending", "n3", "Pending", False, t1),
        _pod("running-unready", "n4", "Running", False, t1),
        _pod("unknown", "n5", "Unknown", False, t1),
        _pod("costly", "n6", "Running", True, t2, cost=100),
    ]
    order = [p["metadata"]["name"] for p in pods_to_delete(pods_, pods_, 6)]
    assert order == ["unassigned", "pending", "unknown", "running-unready", "ready-new", "ready-old"]
    # Doubled up on a node goes before alone; more restarts before fewer.
    a, b, c = _pod("a", "n1", "Running", True, t1), _pod("b", "n1", "Running", True, t1), \
        _pod("c", "n2", "Running", True, t1, restarts=3)
    assert pods_to_delete([a, c], [a, b, c], 1)[0]["metadata"]["name"] == "a"
    d = _pod("d", "n3", "Running", True, t1)
    assert pods_to_delete([c, d], [c, d], 1)[0]["metadata"]["name"] == "c"


async def _count(client: Client, selector: str, n: int) -> list[Obj] | None:
    items = await pods(client, selector)
    return items if len(items) == n else None


async def _status_is(client: Client, name: str, **want: Any) -> Obj | None:
    st = await rs_status(client, name)
    return st if all(st.get(k) == v for k, v in want.items()) else None


async def _events(client: Client, name: str, at_least: int) -> list[Obj] | None:
    items = (await client.list(EVENTS, "default")).get("items") or []
    mine = [e for e in items if e["involvedObject"]["name"] == name]
    return mine if len(mine) >= at_least else None
