"""The disruption controller: a PodDisruptionBudget's status from its pods and their controllers."""

from __future__ import annotations

from typing import Any

from pyk8s.api.errors import StatusError
from pyk8s.api.meta import now_rfc3339
from pyk8s.client.client import Client
from pyk8s.controllers.disruption import DELETION_TIMEOUT, DisruptionController
from tests.controllers._housekeeping import running, until
from tests.controllers._pods import make_pod, set_ready
from tests.support.apiserver import api_server, info

PDBS, PODS = info("policy", "poddisruptionbudgets"), info("", "pods")
REPLICASETS, DEPLOYMENTS = info("apps", "replicasets"), info("apps", "deployments")


def pdb(name: str, **spec: Any) -> dict[str, Any]:
    return {"metadata": {"name": name}, "spec": {"selector": {"matchLabels": {"app": "web"}}, **spec}}


async def status_of(client: Client, name: str, **expected: Any) -> dict[str, Any] | None:
    """The budget's status once it holds `expected` (None until then)."""
    got = (await client.get(PDBS, name, "default")).get("status") or {}
    return got if all(got.get(k) == v for k, v in expected.items()) else None


def allowed_condition(status: dict[str, Any]) -> tuple[str, str]:
    [cond] = [c for c in status["conditions"] if c["type"] == "DisruptionAllowed"]
    return cond["status"], cond["reason"]


async def owned_pod(client: Client, name: str, owner: dict[str, Any], ip: str) -> None:
    pod = await make_pod(client, name, ip, ready=True)
    ref = {"apiVersion": "apps/v1", "kind": owner["kind"], "controller": True,
           "name": owner["metadata"]["name"], "uid": owner["metadata"]["uid"]}
    pod["metadata"]["ownerReferences"] = [ref]
    await client.update(PODS, pod, "default")


def replicaset(name: str, replicas: int, deployment: dict[str, Any] | None = None) -> dict[str, Any]:
    labels = {"app": "web"}
    meta: dict[str, Any] = {"name": name, "labels": labels}
    if deployment is not None:
        meta["ownerReferences"] = [{"apiVersion": "apps/v1", "kind": "Deployment", "controller": True,
                                    "name": deployment["metadata"]["name"],
                                    "uid": deployment["metadata"]["uid"]}]
    return {"kind": "ReplicaSet", "metadata": meta, "spec": {
        "replicas": replicas, "selector": {"matchLabels": labels}, "template": {
            "metadata": {"labels": labels}, "spec": {"containers": [{"name": "c", "image": "busybox"}]}}}}


async def test_min_available_counts_the_ready_pods() -> None:
    async with api_server() as srv, running(srv, DisruptionController) as (client, _):
        for i in range(3):
            await make_pod(client, f"web-{i}", f"10.0.0.{i + 1}", ready=True)
        await make_pod(client, "other", "10.0.0.9", ready=True, labels={"app": "other"})
        await client.create(PDBS, pdb("web", minAvailable=2), "default")
        status = await until(lambda: status_of(client, "web", disruptionsAllowed=1), what="one disruption")
        assert {k: status[k] for k in ("currentHealthy", "desiredHealthy", "expectedPods")} == {
            "currentHealthy": 3, "desiredHealthy": 2, "expectedPods": 3}
        assert status["observedGeneration"] == 1
        assert allowed_condition(status) == ("True", "SufficientPods")

        await set_ready(client, "web-0", False)  # an unready pod is not healthy
        status = await until(lambda: status_of(client, "web", disruptionsAllowed=0, currentHealthy=2),
                             what="no disruption left")
        assert allowed_condition(status) == ("False", "InsufficientPods")


async def test_max_unavailable_counts_what_the_controllers_want() -> None:
    async with api_server() as srv, running(srv, DisruptionController) as (client, _):
        deploy = await client.create(DEPLOYMENTS, {"metadata": {"name": "web"}, "spec": {
            "replicas": 4, "selector": {"matchLabels": {"app": "web"}}, "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "c", "image": "busybox"}]}}}}, "default")
        rs = await client.create(REPLICASETS, replicaset("web-1", 3, deploy), "default")
        for i in range(3):  # the ReplicaSet wants 3, but it is the Deployment's 4 that count
            await owned_pod(client, f"web-{i}", rs, f"10.0.0.{i + 1}")
        await client.create(PDBS, pdb("web", maxUnavailable="25%"), "default")
        status = await until(lambda: status_of(client, "web", expectedPods=4), what="the Deployment's scale")
        assert (status["desiredHealthy"], status["currentHealthy"], status["disruptionsAllowed"]) == (3, 3, 0)

        await client.create(PDBS, pdb("half", minAvailable="50%"), "default")
        status = await until(lambda: status_of(client, "half", expectedPods=4), what="a percentage budget")
        assert (status["desiredHealthy"], status["disruptionsAllowed"]) == (2, 1)


async def test_pods_of_a_missing_controller_allow_no_disruption() -> None:
    async with api_server() as srv, running(srv, DisruptionController) as (client, _):
        ghost = {"kind": "ReplicaSet", "metadata": {"name": "gone", "uid": "no-such-uid"}}
        await owned_pod(client, "web-0", ghost, "10.0.0.1")
        await client.create(PDBS, pdb("web", maxUnavailable=1), "default")
        status = await until(lambda: status_of(client, "web", disruptionsAllowed=0),
                             what="a fail-safe status")
        assert allowed_condition(status) == ("False", "SyncFailed")
        [cond] = status["conditions"]
        assert cond["message"] == "found no scale for the controller ReplicaSet/gone of its pods"


async def test_an_evicted_pod_is_forgotten_once_it_is_gone() -> None:
    async with api_server() as srv, running(srv, DisruptionController) as (client, _):
        for i in range(3):
            await make_pod(client, f"web-{i}", f"10.0.0.{i + 1}", ready=True, node="")
        await client.create(PDBS, pdb("web", minAvailable=1), "default")
        await until(lambda: status_of(client, "web", disruptionsAllowed=2), what="two disruptions")
        await client.create_subresource(PODS, "web-0", "eviction", {
            "apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": "web-0"}}, "default")
        # The unbound pod is deleted at once; the controller forgets it and counts the two left.
        status = await until(lambda: status_of(client, "web", disruptionsAllowed=1, currentHealthy=2),
                             what="the evicted pod gone")
        assert "disruptedPods" not in status


async def record_eviction(client: Client, budget: str, pod: str, at: str) -> None:
    """What an eviction writes into the budget (without deleting the pod), retried over the controller's
    own writes."""
    for _ in range(20):
        pdb = await client.get(PDBS, budget, "default")
        pdb["status"]["disruptedPods"] = {pod: at}
        try:
            await client.update_status(PDBS, pdb, "default")
            return
        except StatusError as e:
            if e.code != 409:
                raise
    raise AssertionError("the budget kept changing")


async def test_a_pod_recorded_as_evicted_is_not_healthy_until_its_deletion_is_overdue() -> None:
    async with api_server() as srv, running(srv, DisruptionController) as (client, _):
        for i in range(3):
            await make_pod(client, f"web-{i}", f"10.0.0.{i + 1}", ready=True)
        await client.create(PDBS, pdb("web", minAvailable=1), "default")
        await until(lambda: status_of(client, "web", disruptionsAllowed=2), what="two disruptions")

        # Evicted a moment ago and not deleted yet: it no longer counts as healthy.
        await record_eviction(client, "web", "web-0", now_rfc3339())
        status = await until(lambda: status_of(client, "web", currentHealthy=2, disruptionsAllowed=1),
                             what="the evicted pod not counted")
        assert list(status["disruptedPods"]) == ["web-0"]

        # Evicted longer ago than DELETION_TIMEOUT and still there: the eviction is forgotten.
        await record_eviction(client, "web", "web-1", now_rfc3339(-int(DELETION_TIMEOUT) - 10))
        status = await until(lambda: status_of(client, "web", currentHealthy=3, disruptionsAllowed=2),
                             what="the overdue eviction forgotten")
        assert "disruptedPods" not in status
