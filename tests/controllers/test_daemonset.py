"""The DaemonSet controller against a real API server: nodes are plain Node objects, the test binds daemon
pods to their target node and marks them Running and Ready as a scheduler and kubelet would."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from pyk8s.client.client import Client
from pyk8s.client.events import EVENTS
from pyk8s.controllers.daemonset import (
    DAEMONSETS,
    NODES,
    DaemonSetController,
    new_daemonset_controller,
    target_node,
    tolerates,
)
from pyk8s.controllers.history import CONTROLLER_REVISION_HASH_LABEL, CONTROLLER_REVISIONS
from pyk8s.controllers.manager import ControllerContext
from pyk8s.controllers.replicaset import PODS
from tests.controllers._apps import controllers, make_ready, pods
from tests.controllers._housekeeping import until
from tests.controllers.test_job import kubectl, needs_kubectl
from tests.support.apiserver import api_server

Obj = dict[str, Any]
SELECTOR = "app=agent"


def node(name: str, labels: dict[str, str] | None = None, taints: list[Obj] | None = None) -> Obj:
    return {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name, "labels": labels or {}},
            "spec": {"taints": taints or []},
            "status": {"conditions": [{"type": "Ready", "status": "True"}]}}


def daemonset(image: str = "busybox:1", **spec: Any) -> Obj:
    meta = {"name": "agent", "namespace": "default"}
    return {"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": meta,
            "spec": {"selector": {"matchLabels": {"app": "agent"}},
                     "template": {"metadata": {"labels": {"app": "agent"}},
                                  "spec": {"containers": [{"name": "c", "image": image}]}}, **spec}}


@contextlib.asynccontextmanager
async def kubelet(client: Client) -> AsyncIterator[None]:
    """Binds each daemon pod to the node its affinity names, Running and Ready."""
    async def loop() -> None:
        while True:
            for p in await pods(client, SELECTOR):
                if (p.get("status") or {}).get("phase") != "Running":
                    await make_ready(client, p, node=target_node(p) or "")
            await asyncio.sleep(0.02)

    task = asyncio.create_task(loop())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def nodes_with_pods(client: Client) -> dict[str, Obj]:
    return {target_node(p) or "": p for p in await pods(client, SELECTOR)}


def test_tolerations_match_as_kubernetes() -> None:
    taint = {"key": "k", "value": "v", "effect": "NoSchedule"}
    assert tolerates([{"key": "k", "operator": "Equal", "value": "v"}], taint)
    assert tolerates([{"operator": "Exists"}], taint)
    assert not tolerates([{"key": "k", "value": "w"}], taint)
    assert not tolerates([{"key": "k", "operator": "Exists", "effect": "NoExecute"}], taint)


async def test_one_pod_per_eligible_node_and_new_nodes() -> None:
    async with api_server() as srv, controllers(srv, new_daemonset_controller) as (client, _):
        await client.create(NODES, node("a", {"disk": "ssd"}))
        await client.create(NODES, node("tainted", {"disk": "ssd"},
                                        [{"key": "dedicated", "value": "db", "effect": "NoSchedule"}]))
        await client.create(NODES, node("not-ready", {"disk": "ssd"},
                                        [{"key": "node.kubernetes.io/not-ready", "effect": "NoExecute"}]))
        await client.create(NODES, node("hdd", {"disk": "hdd"}))
        await client.create(DAEMONSETS, daemonset(**{"template": {
            "metadata": {"labels": {"app": "agent"}},
            "spec": {"nodeSelector": {"disk": "ssd"}, "containers": [{"name": "c", "image": "busybox"}]}}}))

        async def on(names: set[str]) -> dict[str, Obj] | None:
            got = await nodes_with_pods(client)
            return got if set(got) == names else None

        # the untolerated NoSchedule taint and the label mismatch keep nodes out; not-ready is tolerated
        got = await until(lambda: on({"a", "not-ready"}), what="pods on the eligible nodes")
        pod = got["a"]
        assert pod["metadata"]["generateName"] == "agent-"
        assert pod["metadata"]["labels"]["pod-template-generation"] == "1"
        assert CONTROLLER_REVISION_HASH_LABEL in pod["metadata"]["labels"]
        assert "nodeName" not in pod["spec"]  # the scheduler binds it
        terms = pod["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
        assert terms == {"nodeSelectorTerms": [
            {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["a"]}]}]}
        keys = {(t["key"], t["effect"]) for t in pod["spec"]["tolerations"]}
        assert ("node.kubernetes.io/unreachable", "NoExecute") in keys
        assert ("node.kubernetes.io/unschedulable", "NoSchedule") in keys
        assert ("node.kubernetes.io/network-unavailable", "NoSchedule") not in keys  # not hostNetwork

        await client.create(NODES, node("b", {"disk": "ssd"}))
        await until(lambda: on({"a", "b", "not-ready"}), what="a pod on the new node")
        await client.patch(NODES, "b", {"metadata": {"labels": {"disk": "hdd"}}}, "merge")
        await until(lambda: on({"a", "not-ready"}), what="the pod gone from a node that stopped fitting")

        async with kubelet(client):
            async def status() -> Obj | None:
                ds = await client.get(DAEMONSETS, "agent", "default")
                st = ds.get("status") or {}
                return st if st.get("numberReady") == 2 and st.get("numberAvailable") == 2 else None

            st = await until(status, what="status counting both ready pods")
        assert st["desiredNumberScheduled"] == 2 and st["currentNumberScheduled"] == 2
        assert st["updatedNumberScheduled"] == 2 and st["numberMisscheduled"] == 0
        assert st["observedGeneration"] == 1


async def test_rolling_update_replaces_pods_and_records_revisions() -> None:
    async with api_server() as srv, controllers(srv, new_daemonset_controller) as (client, _):
        for name in ("a", "b", "c"):
            await client.create(NODES, node(name))
        await client.create(DAEMONSETS, daemonset("busybox:1"))
        async with kubelet(client):
            async def all_on(image: str) -> bool:
                got = await nodes_with_pods(client)
                return set(got) == {"a", "b", "c"} and all(
                    p["spec"]["containers"][0]["image"] == image and p["status"].get("phase") == "Running"
                    for p in got.values())

            await until(lambda: all_on("busybox:1"), what="first generation on every node")
            first_hash = {p["metadata"]["labels"][CONTROLLER_REVISION_HASH_LABEL]
                          for p in (await nodes_with_pods(client)).values()}
            await client.patch(DAEMONSETS, "agent", {"spec": {"template": {"spec": {"containers": [
                {"name": "c", "image": "busybox:2"}]}}}}, "strategic", "default")
            await until(lambda: all_on("busybox:2"), within=15, what="rolled out to every node")

            async def rolled() -> Obj | None:
                ds = await client.get(DAEMONSETS, "agent", "default")
                st = ds.get("status") or {}
                done = st.get("observedGeneration") == 2 and st.get("updatedNumberScheduled") == 3 and st.get(
                    "numberAvailable") == 3
                return st if done else None

            await until(rolled, what="status of a finished rollout")
        new_hash = {p["metadata"]["labels"][CONTROLLER_REVISION_HASH_LABEL]
                    for p in (await nodes_with_pods(client)).values()}
        assert len(new_hash) == 1 and new_hash != first_hash
        revisions = (await client.list(CONTROLLER_REVISIONS, "default"))["items"]
        by_number = {r["revision"]: r for r in revisions}
        assert set(by_number) == {1, 2}
        assert by_number[2]["metadata"]["name"] == f"agent-{next(iter(new_hash))}"
        template = by_number[2]["data"]["spec"]["template"]
        assert template["$patch"] == "replace"
        assert template["spec"]["containers"][0]["image"] == "busybox:2"
        assert by_number[2]["metadata"]["ownerReferences"][0]["kind"] == "DaemonSet"


async def test_on_delete_waits_for_deletion() -> None:
    async with api_server() as srv, controllers(srv, new_daemonset_controller) as (client, _):
        await client.create(NODES, node("a"))
        await client.create(DAEMONSETS, daemonset("busybox:1", updateStrategy={"type": "OnDelete"}))
        [pod] = await until(lambda: _pods(client, 1), what="the pod")
        await client.patch(DAEMONSETS, "agent", {"spec": {"template": {"spec": {"containers": [
            {"name": "c", "image": "busybox:2"}]}}}}, "strategic", "default")

        async def observed() -> bool:
            ds = await client.get(DAEMONSETS, "agent", "default")
            return bool((ds.get("status") or {}).get("observedGeneration") == 2)

        await until(observed, what="the new generation observed")
        [same] = await pods(client, SELECTOR)
        assert same["metadata"]["name"] == pod["metadata"]["name"]  # not replaced by itself
        await client.delete(PODS, pod["metadata"]["name"], "default", grace_period_seconds=0)

        async def replaced() -> Obj | None:
            got = await pods(client, SELECTOR)
            return got[0] if len(got) == 1 and got[0]["metadata"]["name"] != pod["metadata"]["name"] else None

        new = await until(replaced, what="a replacement")
        assert new["spec"]["containers"][0]["image"] == "busybox:2"


async def _pods(client: Client, n: int) -> list[Obj] | None:
    got = await pods(client, SELECTOR)
    return got if len(got) == n else None


@needs_kubectl
async def test_kubectl_rollout_status(tmp_path: Path) -> None:
    async with api_server() as srv, controllers(srv, new_daemonset_controller) as (client, _):
        for name in ("a", "b"):
            await client.create(NODES, node(name))
        await client.create(DAEMONSETS, daemonset("busybox:1"))
        async with kubelet(client):
            code, out = await kubectl(srv, tmp_path, "rollout", "status", "daemonset/agent", "--timeout=20s")
            assert code == 0, out
            assert 'daemon set "agent" successfully rolled out' in out
            code, out = await kubectl(srv, tmp_path, "set", "image", "daemonset/agent", "c=busybox:2")
            assert code == 0, out
            code, out = await kubectl(srv, tmp_path, "rollout", "status", "daemonset/agent", "--timeout=20s")
            assert code == 0, out
            assert 'daemon set "agent" successfully rolled out' in out
            images = {p["spec"]["containers"][0]["image"] for p in await pods(client, SELECTOR)}
            assert images == {"busybox:2"}
            code, out = await kubectl(srv, tmp_path, "rollout", "history", "daemonset/agent")
            assert code == 0 and "REVISION" in out, out
            code, out = await kubectl(srv, tmp_path, "rollout", "undo", "daemonset/agent")
            assert code == 0 and "rolled back" in out, out
            code, out = await kubectl(srv, tmp_path, "rollout", "status", "daemonset/agent", "--timeout=20s")
            assert code == 0, out
            images = {p["spec"]["containers"][0]["image"] for p in await pods(client, SELECTOR)}
            assert images == {"busybox:1"}
            revisions = (await client.list(CONTROLLER_REVISIONS, "default"))["items"]
            # the first template is current again, under a new number
            assert sorted(r["revision"] for r in revisions) == [2, 3]


async def test_surge_starts_the_new_pod_before_the_old_goes() -> None:
    strategy = {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}
    async with api_server() as srv, controllers(srv, new_daemonset_controller) as (client, _):
        for name in ("a", "b"):
            await client.create(NODES, node(name))
        await client.create(DAEMONSETS, daemonset("busybox:1", updateStrategy=strategy))

        async def images() -> dict[str, list[str]]:
            out: dict[str, list[str]] = {}
            for p in await pods(client, SELECTOR):
                out.setdefault(target_node(p) or "", []).append(p["spec"]["containers"][0]["image"])
            return {k: sorted(v) for k, v in out.items()}

        async with kubelet(client):
            async def first() -> bool:
                st = (await client.get(DAEMONSETS, "agent", "default")).get("status") or {}
                # available, or the rollout would rightly replace the old pods at once
                ready = st.get("numberAvailable") == 2
                return ready and await images() == {"a": ["busybox:1"], "b": ["busybox:1"]}

            await until(first, what="first generation available")
        # no kubelet now: the surged pod cannot become ready, so the rollout holds still where it is
        await client.patch(DAEMONSETS, "agent", {"spec": {"template": {"spec": {"containers": [
            {"name": "c", "image": "busybox:2"}]}}}}, "strategic", "default")

        async def surged() -> dict[str, list[str]] | None:
            now = await images()
            return now if sorted(map(len, now.values())) == [1, 2] else None

        held = await until(surged, what="one node with the old and the new pod")
        two = next(n for n, v in held.items() if len(v) == 2)
        assert held[two] == ["busybox:1", "busybox:2"]
        assert held["b" if two == "a" else "a"] == ["busybox:1"]  # maxSurge 1: the other node waits
        async with kubelet(client):
            async def rolled() -> bool:
                now = await images()
                assert set(now) == {"a", "b"}, now  # never a node without a pod: maxUnavailable 0
                return now == {"a": ["busybox:2"], "b": ["busybox:2"]}

            await until(rolled, within=15, what="surged rollout done")


async def test_failed_pods_are_replaced_with_backoff() -> None:
    def factory(ctx: ControllerContext) -> DaemonSetController:
        return DaemonSetController(ctx.client, ctx.informers, ctx.recorder("daemonset-controller"),
                                   failed_pod_backoff=0.05)

    async with api_server() as srv, controllers(srv, factory) as (client, [ctrl]):
        await client.create(NODES, node("a"))
        await client.create(DAEMONSETS, daemonset())
        seen: list[str] = []
        for round_ in range(2):
            async def fresh() -> Obj | None:
                got = [p for p in await pods(client, SELECTOR) if p["metadata"]["name"] not in seen]
                return got[0] if got else None

            pod = await until(fresh, what=f"pod {round_}")
            seen.append(pod["metadata"]["name"])
            await client.patch(PODS, pod["metadata"]["name"], {"status": {"phase": "Failed"}}, "merge",
                               "default", subresource="status")
        await until(fresh, what="the second failed pod replaced after its back-off")
        assert set(ctrl._failed_backoff) == {"default/agent/a"}
        delay, _ = ctrl._failed_backoff["default/agent/a"]
        assert delay == 0.1  # doubled once: the second failure waited longer than the first

        async def warned() -> bool:
            events = (await client.list(EVENTS, "default"))["items"]
            return sum(e.get("count", 1) for e in events if e["reason"] == "FailedDaemonPod") >= 2

        await until(warned, what="FailedDaemonPod events")
