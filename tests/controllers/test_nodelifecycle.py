from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime
from typing import Any

from pyk8s.api.meta import now_rfc3339
from pyk8s.client.client import Client
from pyk8s.controllers.manager import ControllerOptions
from pyk8s.controllers.nodelifecycle import NodeLifecycleController, tolerates, toleration_seconds
from pyk8s.kubelet.hollow import HollowConfig, HollowNodes
from tests.controllers._housekeeping import running, until
from tests.support.apiserver import api_server, info

NODES, PODS, NAMESPACES = info("", "nodes"), info("", "pods"), info("", "namespaces")
LEASES = info("coordination.k8s.io", "leases")
# A grace period well above the test's lease renewal interval, so a busy machine never fails "alive".
OPTS = ControllerOptions(node_monitor_grace_period=1.5, node_startup_grace_period=1.5,
                         node_monitor_period=0.1)
UNREACHABLE = "node.kubernetes.io/unreachable"
NOT_READY = "node.kubernetes.io/not-ready"


def ready_condition(status: str = "True") -> dict[str, Any]:
    now = now_rfc3339()
    return {"type": "Ready", "status": status, "reason": "KubeletReady",
            "message": "kubelet is posting ready status", "lastHeartbeatTime": now, "lastTransitionTime": now}


async def add_node(client: Client, name: str, ready: str = "True") -> None:
    await client.create(NODES, {"metadata": {"name": name}})
    node = await client.get(NODES, name)
    node["status"] = {"conditions": [ready_condition(ready)]}
    await client.update_status(NODES, node)
    await client.create(LEASES, {"metadata": {"name": name}, "spec": {
        "holderIdentity": name, "leaseDurationSeconds": 40, "renewTime": now_micro()}}, "kube-node-lease")


def now_micro() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _epoch(ts: str) -> float:
    return datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp()


async def renew_forever(client: Client, name: str) -> None:
    """What a kubelet does: renew the node's Lease (here every 0.1 s)."""
    while True:
        await client.patch(LEASES, name, {"spec": {"renewTime": now_micro()}}, "merge", "kube-node-lease")
        await asyncio.sleep(0.1)


async def add_pod(client: Client, name: str, node: str, *tolerations: dict[str, Any]) -> None:
    spec: dict[str, Any] = {"nodeName": node, "containers": [{"name": "c", "image": "busybox"}]}
    if tolerations:
        spec["tolerations"] = list(tolerations)
    pod = await client.create(PODS, {"metadata": {"name": name}, "spec": spec}, "default")
    now = now_rfc3339()
    pod["status"] = {"phase": "Running", "podIP": "10.42.0.9", "conditions": [
        {"type": "Ready", "status": "True", "lastTransitionTime": now}]}
    await client.update_status(PODS, pod)


def taints(node: dict[str, Any]) -> set[tuple[str, str]]:
    return {(t["key"], t["effect"]) for t in (node.get("spec") or {}).get("taints") or []}


def condition(node: dict[str, Any], type_: str) -> dict[str, Any]:
    return next(c for c in node["status"]["conditions"] if c["type"] == type_)


def test_tolerations_match_as_kubernetes() -> None:
    taint = {"key": UNREACHABLE, "effect": "NoExecute"}
    assert tolerates({"key": UNREACHABLE, "operator": "Exists"}, taint)
    assert tolerates({"operator": "Exists"}, taint)
    assert not tolerates({"key": UNREACHABLE, "operator": "Exists", "effect": "NoSchedule"}, taint)
    kv = {"key": "k", "value": "v", "effect": "NoExecute"}
    assert tolerates({"key": "k", "value": "v", "effect": "NoExecute"}, kv)
    assert not tolerates({"key": "k", "value": "w"}, kv)
    pod = {"spec": {"tolerations": [{"key": UNREACHABLE, "operator": "Exists", "tolerationSeconds": 30},
                                    {"operator": "Exists", "tolerationSeconds": 10}]}}
    assert toleration_seconds(pod, [taint]) == 10
    assert toleration_seconds({"spec": {}}, [taint]) == 0
    assert toleration_seconds({"spec": {"tolerations": [{"operator": "Exists"}]}}, [taint]) is None


async def test_silent_node_unknown_tainted_pods_evicted_then_recovers() -> None:
    async with api_server() as srv, running(srv, NodeLifecycleController, options=OPTS) as (client, _):
        await client.create(NAMESPACES, {"metadata": {"name": "kube-node-lease"}})
        await add_node(client, "alive")
        await add_node(client, "dead")
        renewer = asyncio.create_task(renew_forever(client, "alive"))
        try:
            await add_pod(client, "untolerating", "dead")
            tolerate = {"key": UNREACHABLE, "operator": "Exists", "effect": "NoExecute"}
            await add_pod(client, "brief", "dead", {**tolerate, "tolerationSeconds": 1})
            await add_pod(client, "forever", "dead", tolerate)
            await add_pod(client, "elsewhere", "alive")

            async def unreachable() -> dict[str, Any] | None:
                node = await client.get(NODES, "dead")
                want = {(UNREACHABLE, "NoExecute"), (UNREACHABLE, "NoSchedule")}
                return node if taints(node) == want else None
            node = await until(unreachable, what="silent node tainted unreachable")
            ready = condition(node, "Ready")
            assert (ready["status"], ready["reason"], ready["message"]) == (
                "Unknown", "NodeStatusUnknown", "Kubelet stopped posting node status.")
            added = next(t for t in node["spec"]["taints"] if t["effect"] == "NoExecute")["timeAdded"]

            async def deleting(name: str) -> bool:
                return bool((await client.get(PODS, name, "default"))["metadata"].get("deletionTimestamp"))
            await until(lambda: deleting("untolerating"), what="untolerating pod evicted at once")
            await until(lambda: deleting("brief"), within=5, what="pod evicted after its tolerationSeconds")
            # Not before: its graceful deletion (30 s) began at least tolerationSeconds after the taint.
            brief = await client.get(PODS, "brief", "default")
            assert _epoch(brief["metadata"]["deletionTimestamp"]) - 30 >= _epoch(added) + 1

            async def not_ready(name: str) -> bool:
                pod = await client.get(PODS, name, "default")
                return condition(pod, "Ready")["status"] == "False"
            await until(lambda: not_ready("forever"), what="pods of the silent node marked not ready")
            # The living node is untouched; the tolerating-forever pod stays.
            alive = await client.get(NODES, "alive")
            assert condition(alive, "Ready")["status"] == "True" and taints(alive) == set()
            assert not await deleting("forever") and not await deleting("elsewhere")

            # The kubelet comes back: Ready posted again, the taints go.
            node = await client.get(NODES, "dead")
            node["status"]["conditions"] = [ready_condition()]
            await client.update_status(NODES, node)

            async def recovered() -> bool:
                return taints(await client.get(NODES, "dead")) == set()
            await until(recovered, what="taints removed after recovery")
        finally:
            renewer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renewer


async def test_not_ready_node_and_condition_taints() -> None:
    async with api_server() as srv, running(srv, NodeLifecycleController, options=OPTS) as (client, _):
        await client.create(NAMESPACES, {"metadata": {"name": "kube-node-lease"}})
        await add_node(client, "sick", ready="False")
        await client.patch(NODES, "sick", {"spec": {"unschedulable": True, "taints": [
            {"key": "example.com/own", "effect": "NoSchedule"}]}})

        async def tainted() -> bool:
            return taints(await client.get(NODES, "sick")) == {
                (NOT_READY, "NoExecute"), (NOT_READY, "NoSchedule"),
                ("node.kubernetes.io/unschedulable", "NoSchedule"), ("example.com/own", "NoSchedule")}
        await until(tainted, what="not-ready and unschedulable taints beside the user's own")


async def test_hollow_agent_killed_node_unreachable_pods_evicted() -> None:
    async with api_server() as srv, running(srv, NodeLifecycleController, options=OPTS) as (client, _):
        await client.create(NAMESPACES, {"metadata": {"name": "kube-node-lease"}})
        agents = {p: HollowNodes(client, HollowConfig(prefix=p, count=1, renew_interval=0.1, workers=2))
                  for p in ("keep", "kill")}
        tasks = {p: asyncio.create_task(a.run()) for p, a in agents.items()}
        try:
            for a in agents.values():
                await asyncio.wait_for(a.registered.wait(), 10)
            await add_pod(client, "web-keep", "keep-0")
            await add_pod(client, "web-kill", "kill-0")
            tasks["kill"].cancel()  # the agent dies: its lease is no longer renewed
            await asyncio.gather(tasks["kill"], return_exceptions=True)

            async def unreachable() -> bool:
                node = await client.get(NODES, "kill-0")
                ready = condition(node, "Ready")["status"]
                return (UNREACHABLE, "NoExecute") in taints(node) and ready == "Unknown"
            await until(unreachable, within=10, what="killed agent's node unreachable")

            async def evicted() -> bool:
                pod = await client.get(PODS, "web-kill", "default")
                return bool(pod["metadata"].get("deletionTimestamp"))
            await until(evicted, what="pod of the dead node evicted")
            keep = await client.get(NODES, "keep-0")
            assert condition(keep, "Ready")["status"] == "True" and taints(keep) == set()
            assert "deletionTimestamp" not in (await client.get(PODS, "web-keep", "default"))["metadata"]
        finally:
            for t in tasks.values():
                t.cancel()
            await asyncio.gather(*tasks.values(), return_exceptions=True)
