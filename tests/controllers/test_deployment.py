"""The Deployment controller (with the ReplicaSet controller under it) against a real API server."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path
from typing import Any

import pytest

from pyk8s.client.client import Client
from pyk8s.client.events import EVENTS
from pyk8s.controllers import deployment_util as du
from pyk8s.controllers.deployment import DEPLOYMENTS, new_deployment_controller
from pyk8s.controllers.replicaset import REPLICASETS, is_pod_ready, new_replicaset_controller
from tests.controllers._apps import FakeKubelet, controllers, pods
from tests.controllers._housekeeping import until
from tests.support.apiserver import api_server

Obj = dict[str, Any]


def deployment(name: str, replicas: int, image: str = "nginx:1.25", **spec: Any) -> Obj:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [{"name": "c", "image": image}]}}, **spec}}


async def get_d(client: Client, name: str) -> Obj:
    return await client.get(DEPLOYMENTS, name, "default")


async def rsets(client: Client) -> list[Obj]:
    items: list[Obj] = (await client.list(REPLICASETS, "default")).get("items") or []
    return sorted(items, key=du.revision)


def cond(d: Obj, type_: str) -> Obj:
    return du.get_condition(d.get("status") or {}, type_) or {}


async def rolled_out(client: Client, name: str) -> Obj | None:
    """kubectl rollout status' test for a finished rollout."""
    d = await get_d(client, name)
    st, want = d.get("status") or {}, d["spec"]["replicas"]
    done = (d["metadata"]["generation"] <= st.get("observedGeneration", 0)
            and st.get("updatedReplicas", 0) >= want and st.get("replicas", 0) <= st.get("updatedReplicas", 0)
            and st.get("availableReplicas", 0) >= st.get("updatedReplicas", 0)
            and cond(d, "Progressing").get("reason") == "NewReplicaSetAvailable")
    return d if done else None


async def test_create_scale_and_status() -> None:
    async with api_server() as srv, \
            controllers(srv, new_replicaset_controller, new_deployment_controller) as (client, _), \
            FakeKubelet(client):
        await client.create(DEPLOYMENTS, deployment("web", 3), "default")
        d = await until(lambda: rolled_out(client, "web"), what="rollout")
        [rs] = await rsets(client)
        h = rs["metadata"]["labels"]["pod-template-hash"]
        assert rs["metadata"]["name"] == f"web-{h}"
        assert rs["spec"]["selector"]["matchLabels"] == {"app": "web", "pod-template-hash": h}
        ann = rs["metadata"]["annotations"]
        assert ann[du.REVISION] == "1" and ann[du.DESIRED_REPLICAS] == "3" and ann[du.MAX_REPLICAS] == "4"
        assert d["metadata"]["annotations"][du.REVISION] == "1"
        st = d["status"]
        counts = (st["replicas"], st["updatedReplicas"], st["readyReplicas"], st["availableReplicas"])
        assert counts == (3, 3, 3, 3)
        assert "unavailableReplicas" not in st
        assert cond(d, "Available")["reason"] == "MinimumReplicasAvailable"
        ps = await pods(client, "app=web")
        assert len(ps) == 3 and all(p["metadata"]["name"].startswith(f"web-{h}-") for p in ps)

        await client.patch(DEPLOYMENTS, "web", {"spec": {"replicas": 5}}, "merge", "default")
        await until(lambda: _n_pods(client, "app=web", 5), what="5 pods")
        d = await until(lambda: rolled_out(client, "web"), what="scaled")
        assert d["status"]["availableReplicas"] == 5
        await client.patch(DEPLOYMENTS, "web", {"spec": {"replicas": 1}}, "merge", "default")
        await until(lambda: _n_pods(client, "app=web", 1), what="1 pod")
        [rs] = await rsets(client)
        assert rs["spec"]["replicas"] == 1 and rs["metadata"]["annotations"][du.DESIRED_REPLICAS] == "1"


async def test_rolling_update_respects_surge_and_unavailable() -> None:
    async with api_server() as srv, \
            controllers(srv, new_replicaset_controller, new_deployment_controller) as (client, _), \
            FakeKubelet(client):
        strategy = {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 1}}
        await client.create(DEPLOYMENTS, deployment("web", 4, strategy=strategy), "default")
        await until(lambda: rolled_out(client, "web"), what="first rollout")

        # Sample the ReplicaSets' sizes and the available pods while the image changes.
        seen: list[tuple[int, int]] = []
        stop = asyncio.Event()

        async def sample() -> None:
            while not stop.is_set():
                rss = await rsets(client)
                total = sum(rs["spec"]["replicas"] for rs in rss)
                # Available pods as they are (ready, not being deleted), not as statuses report them.
                available = sum(1 for p in await pods(client, "app=web") if is_pod_ready(p))
                seen.append((total, available))
                await asyncio.sleep(0.005)
        sampler = asyncio.create_task(sample())
        await client.patch(DEPLOYMENTS, "web", {"metadata": {"annotations": {du.CHANGE_CAUSE: "image 1.26"}},
                                                "spec": {"template": {"spec": {"containers": [
                                                    {"name": "c", "image": "nginx:1.26"}]}}}},
                           "strategic", "default")
        d = await until(lambda: rolled_out(client, "web"), what="second rollout")
        stop.set()
        await sampler
        assert max(t for t, _ in seen) <= 5  # replicas + maxSurge
        assert min(a for _, a in seen) >= 3  # replicas - maxUnavailable
        old, new = await rsets(client)
        assert old["spec"]["replicas"] == 0 and new["spec"]["replicas"] == 4
        assert new["metadata"]["annotations"][du.REVISION] == "2"
        assert new["metadata"]["annotations"][du.CHANGE_CAUSE] == "image 1.26"
        assert d["metadata"]["annotations"][du.REVISION] == "2"
        ps = await pods(client, "app=web")
        assert len(ps) == 4 and all(p["spec"]["containers"][0]["image"] == "nginx:1.26" for p in ps)
        first_step = f"Scaled up replica set {new['metadata']['name']} to 1"

        async def scaling_event() -> bool:
            events = (await client.list(EVENTS, "default")).get("items") or []
            messages = {e["message"] for e in events if e["reason"] == "ScalingReplicaSet"}
            down = f"Scaled down replica set {old['metadata']['name']} to "
            return first_step in messages and any(m.startswith(down) and " from " in m for m in messages)
        await until(scaling_event, what="ScalingReplicaSet event")


async def test_scaling_mid_rollout_is_proportional() -> None:
    async with api_server() as srv, \
            controllers(srv, new_replicaset_controller, new_deployment_controller) as (client, _), \
            FakeKubelet(client) as kubelet:
        strategy = {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 3, "maxUnavailable": 2}}
        await client.create(DEPLOYMENTS, deployment("web", 10, strategy=strategy), "default")
        await until(lambda: rolled_out(client, "web"), what="first rollout")
        kubelet.enabled = False  # new pods never become ready: the rollout stalls half way
        await client.patch(DEPLOYMENTS, "web", {"spec": {"template": {"spec": {"containers": [
            {"name": "c", "image": "nginx:1.26"}]}}}}, "strategic", "default")
        # New 3 (surge), old down to 8 (2 unavailable), new up to 5: 13 pods, 8 available; stuck there.
        await until(lambda: _sizes(client, [8, 5]), what="old 8, new 5")
        await client.patch(DEPLOYMENTS, "web", {"spec": {"paused": True}}, "merge", "default")
        await until(lambda: _reason(client, "web", "DeploymentPaused"), what="paused")
        await client.patch(DEPLOYMENTS, "web", {"spec": {"replicas": 20}}, "merge", "default")
        # 23 allowed (20 + surge 3), 13 there: 10 added in proportion to the sizes for 13 (8·23/13 ≈ 14,
        # 5·23/13 ≈ 9), as Kubernetes rounds them.
        await until(lambda: _sizes(client, [14, 9]), what="proportional sizes")
        rss = await rsets(client)
        assert [rs["metadata"]["annotations"][du.DESIRED_REPLICAS] for rs in rss] == ["20", "20"]
        assert [rs["metadata"]["annotations"][du.MAX_REPLICAS] for rs in rss] == ["23", "23"]


async def test_recreate_removes_old_pods_first() -> None:
    async with api_server() as srv, \
            controllers(srv, new_replicaset_controller, new_deployment_controller) as (client, _), \
            FakeKubelet(client):
        await client.create(DEPLOYMENTS, deployment("db", 2, strategy={"type": "Recreate"}), "default")
        await until(lambda: rolled_out(client, "db"), what="first rollout")
        mixed: list[bool] = []
        stop = asyncio.Event()

        async def sample() -> None:
            while not stop.is_set():
                every = await pods(client, "app=db", active=False)
                images = {p["spec"]["containers"][0]["image"] for p in every}
                mixed.append(len(images) > 1)
                await asyncio.sleep(0.005)
        sampler = asyncio.create_task(sample())
        await client.patch(DEPLOYMENTS, "db", {"spec": {"template": {"spec": {"containers": [
            {"name": "c", "image": "nginx:1.26"}]}}}}, "strategic", "default")
        await until(lambda: rolled_out(client, "db"), what="recreate rollout")
        stop.set()
        await sampler
        assert not any(mixed), "old and new pods existed at once"
        assert [rs["spec"]["replicas"] for rs in await rsets(client)] == [0, 2]


async def test_rollback_pause_and_history_limit() -> None:
    async with api_server() as srv, \
            controllers(srv, new_replicaset_controller, new_deployment_controller) as (client, _), \
            FakeKubelet(client):
        await client.create(DEPLOYMENTS, deployment("web", 2, revisionHistoryLimit=1), "default")
        await until(lambda: rolled_out(client, "web"), what="rev 1")
        first = (await rsets(client))[0]
        for image in ("nginx:1.26", "nginx:1.27"):
            await client.patch(DEPLOYMENTS, "web", {"spec": {"template": {"spec": {"containers": [
                {"name": "c", "image": image}]}}}}, "strategic", "default")
            await until(lambda: rolled_out(client, "web"), what=f"rollout of {image}")
        # Three revisions, a history limit of one: the oldest empty ReplicaSet is deleted.
        await until(lambda: _n_rss(client, 2), what="history cleaned up")
        assert first["metadata"]["name"] not in {rs["metadata"]["name"] for rs in await rsets(client)}

        # Rollback as kubectl does it: the old ReplicaSet's template back into the deployment.
        old = (await rsets(client))[0]
        template = du.template_without_hash(old["spec"]["template"])
        undo = [{"op": "replace", "path": "/spec/template", "value": template}]
        await client.patch(DEPLOYMENTS, "web", undo, "json", "default")
        d = await until(lambda: rolled_out(client, "web"), what="rollback")
        rss = await rsets(client)
        assert rss[-1]["metadata"]["name"] == old["metadata"]["name"]  # reused, not a new one
        assert du.revision(rss[-1]) == 4 and d["metadata"]["annotations"][du.REVISION] == "4"

        # Paused: template changes wait; scaling still happens.
        await client.patch(DEPLOYMENTS, "web", {"spec": {"paused": True}}, "merge", "default")
        await until(lambda: _reason(client, "web", "DeploymentPaused"), what="paused condition")
        await client.patch(DEPLOYMENTS, "web", {"spec": {"replicas": 3, "template": {"spec": {"containers": [
            {"name": "c", "image": "nginx:1.28"}]}}}}, "strategic", "default")
        await until(lambda: _n_pods(client, "app=web", 3), what="scaled while paused")
        ps = await pods(client, "app=web")
        assert all(p["spec"]["containers"][0]["image"] == "nginx:1.26" for p in ps)
        # No ReplicaSet for the paused template (and, as Kubernetes, the old empty one beyond the history
        # limit is cleaned up even while paused).
        assert all(rs["spec"]["template"]["spec"]["containers"][0]["image"] != "nginx:1.28"
                   for rs in await rsets(client))
        await client.patch(DEPLOYMENTS, "web", {"spec": {"paused": False}}, "merge", "default")
        await until(lambda: rolled_out(client, "web"), what="rollout after resume")
        ps = await pods(client, "app=web")
        assert {p["spec"]["containers"][0]["image"] for p in ps} == {"nginx:1.28"}


async def test_progress_deadline_exceeded() -> None:
    async with api_server() as srv, \
            controllers(srv, new_replicaset_controller, new_deployment_controller) as (client, _):
        # No kubelet: pods never become ready, so the rollout stalls past its 1 s deadline.
        await client.create(DEPLOYMENTS, deployment("stuck", 1, progressDeadlineSeconds=1), "default")
        d = await until(lambda: _reason(client, "stuck", "ProgressDeadlineExceeded"), within=10,
                        what="deadline exceeded")
        c = cond(d, "Progressing")
        assert c["status"] == "False"
        assert c["message"].startswith('ReplicaSet "stuck-')
        assert c["message"].endswith('has timed out progressing.')
        assert cond(d, "Available")["reason"] == "MinimumReplicasUnavailable"
        assert d["status"]["unavailableReplicas"] == 1


def test_fenceposts_and_hash() -> None:
    d = deployment("x", 10, strategy={"type": "RollingUpdate",
                                      "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}})
    assert du.fenceposts(d) == (3, 2)  # surge rounds up, unavailable down
    d["spec"]["strategy"]["rollingUpdate"] = {"maxSurge": 0, "maxUnavailable": "5%"}
    assert du.fenceposts(d) == (0, 1)  # both zero: one may be unavailable
    t = deployment("x", 1)["spec"]["template"]
    assert du.compute_hash(t) == du.compute_hash(dict(t)) != du.compute_hash(t, 1)
    assert set(du.compute_hash(t)) <= set("bcdfghjklmnpqrstvwxz2456789")


async def _n_pods(client: Client, selector: str, n: int) -> bool:
    return len(await pods(client, selector)) == n


async def _sizes(client: Client, sizes: list[int]) -> bool:
    return [rs["spec"]["replicas"] for rs in await rsets(client)] == sizes


async def _n_rss(client: Client, n: int) -> bool:
    return len(await rsets(client)) == n


async def _reason(client: Client, name: str, reason: str) -> Obj | None:
    d = await get_d(client, name)
    return d if cond(d, "Progressing").get("reason") == reason else None


KUBECTL = shutil.which("kubectl")


async def kubectl(tmp: Path, url: str, *args: str) -> str:
    assert KUBECTL is not None
    config = tmp / "kubeconfig.yaml"
    if not config.exists():
        config.write_text(
            "apiVersion: v1\nkind: Config\n"
            f"clusters:\n- name: t\n  cluster:\n    server: {url}\n"
            "users:\n- name: u\n  user: {}\n"
            "contexts:\n- name: t\n  context:\n    cluster: t\n    user: u\n    namespace: default\n"
            "current-context: t\n")
    proc = await asyncio.create_subprocess_exec(
        KUBECTL, f"--kubeconfig={config}", f"--cache-dir={tmp / 'cache'}", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, f"kubectl {' '.join(args)} failed: {err.decode()}{out.decode()}"
    return out.decode()


@pytest.mark.skipif(KUBECTL is None, reason="kubectl not on PATH")
async def test_kubectl_rollout_status_history_undo(tmp_path: Path) -> None:
    async with api_server() as srv, \
            controllers(srv, new_replicaset_controller, new_deployment_controller) as (client, _), \
            FakeKubelet(client):
        url = srv.url
        await kubectl(tmp_path, url, "create", "deployment", "web", "--image=nginx:1.25", "--replicas=3")
        out = await kubectl(tmp_path, url, "rollout", "status", "deployment/web", "--timeout=30s")
        assert 'deployment "web" successfully rolled out' in out

        await kubectl(tmp_path, url, "set", "image", "deployment/web", "nginx=nginx:1.26")
        await kubectl(tmp_path, url, "annotate", "deployment/web", "kubernetes.io/change-cause=to 1.26")
        out = await kubectl(tmp_path, url, "rollout", "status", "deployment/web", "--timeout=30s")
        assert 'deployment "web" successfully rolled out' in out

        history = await kubectl(tmp_path, url, "rollout", "history", "deployment/web")
        lines = [line.split() for line in history.splitlines() if line[:1].isdigit()]
        assert [cols[0] for cols in lines] == ["1", "2"]
        assert " ".join(lines[1][1:]) == "to 1.26"
        rev2 = await kubectl(tmp_path, url, "rollout", "history", "deployment/web", "--revision=2")
        assert "nginx:1.26" in rev2

        out = await kubectl(tmp_path, url, "rollout", "undo", "deployment/web")
        assert "rolled back" in out
        await kubectl(tmp_path, url, "rollout", "status", "deployment/web", "--timeout=30s")
        d = await get_d(client, "web")
        assert d["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.25"
        assert d["metadata"]["annotations"][du.REVISION] == "3"
        ps = await pods(client, "app=web")
        assert len(ps) == 3 and {p["spec"]["containers"][0]["image"] for p in ps} == {"nginx:1.25"}
        history = await kubectl(tmp_path, url, "rollout", "history", "deployment/web")
        assert [line.split()[0] for line in history.splitlines() if line[:1].isdigit()] == ["2", "3"]

        out = await kubectl(tmp_path, url, "get", "rs")
        assert "web-" in out
        out = await kubectl(tmp_path, url, "describe", "deployment", "web")
        assert "ScalingReplicaSet" in out and "NewReplicaSetAvailable" in out
