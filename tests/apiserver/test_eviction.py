"""pods/eviction against PodDisruptionBudgets: the budget's status decides, an allowed eviction takes one
disruption and records the pod, and pods that are not running skip the budget."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from pyk8s.api.catalog import require
from pyk8s.api.errors import StatusError
from pyk8s.apiserver.disruption import allow_eviction
from pyk8s.apiserver.interfaces import UserInfo
from pyk8s.apiserver.registry import RequestContext
from tests.apiserver.conftest import Server

NS = "/api/v1/namespaces/default"
PDBS = "/apis/policy/v1/namespaces/default/poddisruptionbudgets"
PODS_INFO = require("", "Pod")


async def running_pod(server: Server, name: str, ready: bool = True, **labels: str) -> None:
    body = {"metadata": {"name": name, "labels": labels or {"app": "web"}},
            "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "busybox"}]}}
    status, pod = await server.request("POST", f"{NS}/pods", body)
    assert status == 201, pod
    pod["status"] = {"phase": "Running",
                     "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}
    status, out = await server.request("PUT", f"{NS}/pods/{name}/status", pod)
    assert status == 200, out


WEB = {"matchLabels": {"app": "web"}}


async def budget(server: Server, name: str, allowed: int, healthy: int = 3, desired: int = 2,
                 observed: int | None = None, selector: dict[str, Any] | None = WEB) -> dict[str, Any]:
    """A budget whose status is set as the disruption controller would (no controller runs here); a
    `selector` of None leaves the budget without one."""
    spec: dict[str, Any] = {"minAvailable": desired}
    if selector is not None:
        spec["selector"] = selector
    body = {"metadata": {"name": name}, "spec": spec}
    status, pdb = await server.request("POST", PDBS, body)
    assert status == 201, pdb
    pdb["status"] = {"observedGeneration": pdb["metadata"]["generation"] if observed is None else observed,
                     "disruptionsAllowed": allowed, "currentHealthy": healthy, "desiredHealthy": desired,
                     "expectedPods": healthy}
    status, out = await server.request("PUT", f"{PDBS}/{name}/status", pdb)
    assert status == 200, out
    return dict(out)


async def evict(server: Server, name: str, **options: Any) -> tuple[int, Any]:
    body = {"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": name}}
    if options:
        body["deleteOptions"] = options
    return await server.request("POST", f"{NS}/pods/{name}/eviction", body)


async def exists(server: Server, name: str) -> bool:
    """The pod is there and not being deleted (a bound pod's deletion waits for its kubelet)."""
    status, pod = await server.request("GET", f"{NS}/pods/{name}")
    return status == 200 and not pod["metadata"].get("deletionTimestamp")


async def test_an_eviction_the_budget_allows_takes_one_disruption(server: Server) -> None:
    for name in ("a", "b"):
        await running_pod(server, name)
    await budget(server, "web", allowed=1)
    status, body = await evict(server, "a")
    assert status == 201, body
    assert not await exists(server, "a")
    _, pdb = await server.request("GET", f"{PDBS}/web")
    assert pdb["status"]["disruptionsAllowed"] == 0
    assert list(pdb["status"]["disruptedPods"]) == ["a"]
    assert {c["type"]: (c["status"], c["reason"]) for c in pdb["status"]["conditions"]} == {
        "DisruptionAllowed": ("False", "InsufficientPods")}

    # The budget is spent: the next eviction is refused with 429, and the pod stays.
    status, body = await evict(server, "b")
    assert status == 429 and body["reason"] == "TooManyRequests", body
    assert body["message"] == "Cannot evict pod as it would violate the pod's disruption budget."
    cause = "The disruption budget web needs 2 healthy pods and has 3 currently"
    assert body["details"]["causes"] == [{"reason": "DisruptionBudget", "message": cause}]
    assert await exists(server, "b")


async def test_an_empty_selector_covers_the_namespace_and_a_missing_one_nothing(server: Server) -> None:
    """policy/v1: `selector: {}` selects every pod of the namespace, no selector selects none."""
    await running_pod(server, "a", app="other")
    await budget(server, "none", allowed=0, selector=None)
    status, body = await evict(server, "a", dryRun=["All"])
    assert status == 201, body  # the selector-less budget is not this pod's
    await budget(server, "all", allowed=0, selector={})
    status, body = await evict(server, "a")
    assert status == 429, body
    assert body["details"]["causes"][0]["message"].startswith("The disruption budget all needs")
    assert await exists(server, "a")


async def test_a_budget_not_yet_processed_refuses(server: Server) -> None:
    await running_pod(server, "a")
    await budget(server, "web", allowed=5, observed=0)
    status, body = await evict(server, "a")
    assert status == 429
    assert body["details"]["causes"][0]["message"] == \
        "The disruption budget web is still being processed by the server."
    assert await exists(server, "a")


async def test_a_dry_run_eviction_writes_nothing(server: Server) -> None:
    await running_pod(server, "a")
    before = await budget(server, "web", allowed=1)
    status, body = await server.request("POST", f"{NS}/pods/a/eviction", {
        "apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": "a"}}, dryRun="All")
    assert status == 201, body
    assert await exists(server, "a")
    _, pdb = await server.request("GET", f"{PDBS}/web")
    assert pdb["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]
    # The dry run may also come in the eviction's deleteOptions.
    assert (await evict(server, "a", dryRun=["All"]))[0] == 201
    assert await exists(server, "a")
    _, pdb = await server.request("GET", f"{PDBS}/web")
    assert pdb["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]


async def test_pods_that_disrupt_nothing_skip_the_budget(server: Server) -> None:
    await server.request("POST", f"{NS}/pods", {"metadata": {"name": "pending", "labels": {"app": "web"}},
                                                "spec": {"containers": [{"name": "c", "image": "busybox"}]}})
    await running_pod(server, "unready", ready=False)
    await running_pod(server, "other", app="other")
    await budget(server, "web", allowed=0, healthy=2, desired=2)
    for name in ("pending", "unready", "other"):  # Pending; unready with a met budget; no budget
        status, body = await evict(server, name)
        assert status == 201, (name, body)
        assert not await exists(server, name)
    _, pdb = await server.request("GET", f"{PDBS}/web")
    assert "disruptedPods" not in pdb["status"]


async def test_an_unready_pod_under_a_short_budget_needs_a_disruption(server: Server) -> None:
    await running_pod(server, "unready", ready=False)
    await budget(server, "web", allowed=0, healthy=1, desired=2)
    status, _ = await evict(server, "unready")
    assert status == 429
    status, pdb = await server.request("GET", f"{PDBS}/web")
    pdb["spec"]["unhealthyPodEvictionPolicy"] = "AlwaysAllow"
    assert (await server.request("PUT", f"{PDBS}/web", pdb))[0] == 200
    status, body = await evict(server, "unready")
    assert status == 201, body


async def test_two_budgets_for_one_pod_are_an_error(server: Server) -> None:
    await running_pod(server, "a")
    await budget(server, "one", allowed=1)
    await budget(server, "two", allowed=1)
    status, body = await evict(server, "a")
    assert status == 500
    assert body["message"] == ("Internal error occurred: This pod has more than one PodDisruptionBudget, "
                               "which the eviction "
                               "subresource does not support.")
    assert await exists(server, "a")


async def test_a_malformed_eviction_is_a_bad_request(server: Server) -> None:
    await running_pod(server, "a")
    for options in ("soon", {"preconditions": "x"}):
        eviction = {"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": "a"},
                    "deleteOptions": options}
        status, body = await server.request("POST", f"{NS}/pods/a/eviction", eviction)
        assert status == 400 and body["kind"] == "Status", body
    assert await exists(server, "a")


async def test_the_official_client_sees_the_refusal(server: Server) -> None:
    await running_pod(server, "a")
    await budget(server, "web", allowed=0)
    api = client.CoreV1Api(client.ApiClient(client.Configuration(host=server.url)))
    eviction = client.V1Eviction(metadata=client.V1ObjectMeta(name="a", namespace="default"))
    with pytest.raises(ApiException) as refused:
        await asyncio.to_thread(api.create_namespaced_pod_eviction, "a", "default", eviction)
    assert refused.value.status == 429
    assert json.loads(refused.value.body)["details"]["causes"][0]["reason"] == "DisruptionBudget"
    api.api_client.close()



async def test_racing_evictions_cannot_overrun_the_budget(server: Server) -> None:
    """Four evictions all read the budget (one disruption left) before any writes it: the budget's
    compare-and-swap lets one through; the others decide again from the new version and are refused."""
    names = [f"p{i}" for i in range(4)]
    for name in names:
        await running_pod(server, name)
    await budget(server, "web", allowed=1, healthy=4, desired=3)
    reg = server.api.registry
    listed = asyncio.Barrier(len(names))
    real_list = reg.store.list
    held = 0

    async def list_together(*args: Any, **kwargs: Any) -> Any:
        nonlocal held
        out = await real_list(*args, **kwargs)
        if held < len(names):  # the first round waits for all four; retries pass
            held += 1
            await listed.wait()
        return out

    reg.store.list = list_together  # type: ignore[method-assign]
    try:
        pods = [await reg.get(PODS_INFO, "default", name) for name in names]
        ctx = RequestContext(UserInfo("admin", groups=("system:masters",)))
        evictions = (allow_eviction(reg, pod, ctx) for pod in pods)
        results = await asyncio.gather(*evictions, return_exceptions=True)
    finally:
        reg.store.list = real_list  # type: ignore[method-assign]
    refused = [r for r in results if isinstance(r, StatusError)]
    assert len(refused) == 3 and all(r.code == 429 for r in refused), results
    _, pdb = await server.request("GET", f"{PDBS}/web")
    assert pdb["status"]["disruptionsAllowed"] == 0 and len(pdb["status"]["disruptedPods"]) == 1
