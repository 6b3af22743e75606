"""The pod workers over the real runtime (runc) and the real image store's seed busybox, against an
in-process API server: exit codes, restart back-off, init containers in order, a failing liveness
probe, OOMKilled, and a kubelet restart that adopts running containers. Sandboxes get an isolated
network namespace (no CNI here: the network has its own tests); cgroups go under a random root."""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from pyk8s.client.client import Client
from pyk8s.client.events import EventRecorder
from pyk8s.client.transport import HTTPTransport
from pyk8s.kubelet.images import ImageStore, ensure_seed_image
from pyk8s.kubelet.pods import PodsConfig
from pyk8s.kubelet.runtime import RuncRuntime
from pyk8s.kubelet.volumes import VolumeManager
from tests.kubelet._harness import NODE, Env, conditions, running, state
from tests.kubelet.runtime.conftest import remove_cgroups
from tests.support.apiserver import Server, api_server
from tests.support.poll import until

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or shutil.which("runc") is None
                                or not os.path.exists("/bin/busybox"), reason="needs root, runc and busybox")


def bb(name: str, *script: str, **extra: Any) -> dict[str, Any]:
    cmd = ["sh", "-c", " ".join(script)] if script else ["sleep", "3600"]
    return {"name": name, "image": "busybox", "imagePullPolicy": "IfNotPresent", "command": cmd, **extra}


def pod(name: str, *containers: dict[str, Any], restart: str = "Always", **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "default"},
            "spec": {"nodeName": NODE, "restartPolicy": restart, "terminationGracePeriodSeconds": 1,
                     "containers": list(containers), **spec}}


@contextlib.asynccontextmanager
async def real_kubelet(tmp: Path, srv: Server, cgroup_root: str) -> AsyncIterator[Env]:
    client = Client(HTTPTransport(srv.url))
    recorder = EventRecorder(client, "kubelet", NODE)
    images = ImageStore(str(tmp / "images"))
    await ensure_seed_image(images)
    runtime = RuncRuntime(str(tmp / "runtime"), images, None)
    cfg = PodsConfig(node_name=NODE, node_ip="127.0.0.1", log_root=str(tmp / "logs"), cgroup_root=cgroup_root,
                     relist_period=0.1, backoff_base=0.5, backoff_cap=2.0, error_resync=0.2)
    volumes = VolumeManager(client, str(tmp / "volumes"))
    try:
        async with running(srv, client, cfg, runtime, images, recorder, volumes, within=10) as env:
            yield env
    finally:
        await recorder.close()
        await client.close()


@pytest.fixture
async def node(tmp_path: Path) -> AsyncIterator[tuple[Path, Server, str]]:
    root = f"/pyk8s-test-{secrets.token_hex(4)}"
    async with api_server() as srv:
        try:
            yield tmp_path, srv, root
        finally:
            rt = RuncRuntime(str(tmp_path / "runtime"), ImageStore(str(tmp_path / "images")), None)
            for s in await rt.list_pod_sandboxes():
                await rt.stop_pod_sandbox(s.id)
                for c in await rt.list_containers(s.id):
                    await rt.remove_container(c.id)
                await rt.remove_pod_sandbox(s.id)
            await rt.close()  # the monitor server would outlive the test
            remove_cgroups(root.strip("/"))


def waiting(p: dict[str, Any], name: str = "c") -> str:
    return str(state(p, name).get("state", {}).get("waiting", {}).get("reason", ""))


async def test_busybox_runs_and_exit_codes_are_reported(node: tuple[Path, Server, str]) -> None:
    async with real_kubelet(*node) as env:
        await env.create(pod("run", bb("c")))
        await env.create(pod("three", bb("c", "exit 3"), restart="Never"))
        await env.create(pod("zero", bb("c", "echo hi"), restart="Never"))
        p = await env.wait("run", lambda p: conditions(p).get("Ready") == "True", within=15)
        cs = state(p, "c")
        assert p["status"]["phase"] == "Running" and cs["started"] and "running" in cs["state"]
        assert cs["containerID"].startswith("runc://")
        t = await env.wait("three", lambda p: p["status"].get("phase") == "Failed", within=15)
        assert state(t, "c")["state"]["terminated"]["exitCode"] == 3
        assert state(t, "c")["state"]["terminated"]["reason"] == "Error"
        z = await env.wait("zero", lambda p: p["status"].get("phase") == "Succeeded", within=15)
        assert state(z, "c")["state"]["terminated"]["reason"] == "Completed"


async def test_restart_back_off_and_init_containers_in_order(node: tuple[Path, Server, str]) -> None:
    async with real_kubelet(*node) as env:
        await env.create(pod("crash", bb("c", "exit 1")))
        await env.create(pod("init", bb("c"), initContainers=[bb("i1", "sleep 0.2"), bb("i2", "true")]))
        p = await env.wait("crash", lambda p: state(p, "c").get("restartCount", 0) >= 2
                           and waiting(p) == "CrashLoopBackOff", within=20)
        assert state(p, "c")["lastState"]["terminated"]["exitCode"] == 1
        i = await env.wait("init", lambda p: "running" in state(p, "c").get("state", {}), within=15)
        i1 = state(i, "i1", init=True)["state"]["terminated"]
        i2 = state(i, "i2", init=True)["state"]["terminated"]
        assert i1["finishedAt"] <= i2["startedAt"]
        assert i2["finishedAt"] <= state(i, "c")["state"]["running"]["startedAt"]


async def test_failing_liveness_probe_restarts_and_oom_kill(node: tuple[Path, Server, str]) -> None:
    async with real_kubelet(*node) as env:
        probe = {"exec": {"command": ["test", "-e", "/tmp/healthy"]}, "periodSeconds": 1,
                 "failureThreshold": 1}
        await env.create(pod("live", bb("c", "touch /tmp/healthy; sleep 1; rm /tmp/healthy; sleep 3600",
                                        livenessProbe=probe)))
        hog = bb("c", "head -c 200m /dev/zero | tail > /dev/null",
                 resources={"limits": {"memory": "20Mi", "cpu": "1"}})
        await env.create(pod("oom", hog, restart="Never"))
        p = await env.wait("live", lambda p: state(p, "c").get("restartCount", 0) >= 1, within=20)
        events = await env.events("live")
        assert any(r == "Unhealthy" and m.startswith("Liveness probe failed") for _, r, m in events)
        assert ("Normal", "Killing", "Container c failed liveness probe, will be restarted") in events
        assert p["status"]["phase"] == "Running"
        o = await env.wait("oom", lambda p: p["status"].get("phase") == "Failed", within=20)
        assert state(o, "c")["state"]["terminated"]["reason"] == "OOMKilled"
        assert o["status"]["qosClass"] == "Guaranteed"


async def test_restarted_kubelet_adopts_running_containers(node: tuple[Path, Server, str]) -> None:
    async with real_kubelet(*node) as env:
        await env.create(pod("keep", bb("c")))
        p = await env.wait("keep", lambda p: conditions(p).get("Ready") == "True", within=15)
        cid = state(p, "c")["containerID"]
        started = state(p, "c")["state"]["running"]["startedAt"]
    async with real_kubelet(*node) as env:
        await env.manager.synced.wait()
        p = await env.get("keep")
        assert state(p, "c")["containerID"] == cid
        running = [c for c in await env.runtime.list_containers() if c.state == "running"]
        assert [f"runc://{c.id}" for c in running] == [cid]
        # A change to the pod wakes its adopted worker, which keeps the container.
        await env.client.patch(env.manager.pods.info, "keep", {"metadata": {"labels": {"x": "y"}}}, "merge",
                               "default")
        p = await env.wait("keep", lambda p: p["metadata"].get("labels") == {"x": "y"}, within=20)
        assert state(p, "c")["containerID"] == cid and state(p, "c")["restartCount"] == 0
        assert state(p, "c")["state"]["running"]["startedAt"] == started


async def test_volumes_reach_containers_and_are_torn_down(node: tuple[Path, Server, str]) -> None:
    from pyk8s.api import catalog
    configmaps = catalog.lookup("", "v1", "configmaps")
    assert configmaps
    tmp = node[0]
    async with real_kubelet(*node) as env:
        await env.client.create(configmaps, {"metadata": {"name": "cfg", "namespace": "default"},
                                             "data": {"greeting": "hello"}})
        writer = bb("w", "cp /cfg/greeting /shared/out")
        writer["volumeMounts"] = [{"name": "cfg", "mountPath": "/cfg"},
                                  {"name": "shared", "mountPath": "/shared"}]
        reader = bb("c", "test \"$(cat /shared/out)\" = hello && sleep 3600")
        reader["volumeMounts"] = [{"name": "shared", "mountPath": "/shared", "readOnly": True}]
        await env.create(pod("vol", reader, initContainers=[writer], volumes=[
            {"name": "cfg", "configMap": {"name": "cfg"}}, {"name": "shared", "emptyDir": {}}]))
        p = await env.wait("vol", lambda p: conditions(p).get("Ready") == "True", within=15)
        uid = p["metadata"]["uid"]
        assert state(p, "c")["restartCount"] == 0
        assert any(uid in d for d in os.listdir(tmp / "volumes" / "pods"))
        await env.client.delete(env.manager.pods.info, "vol", "default")

        async def gone() -> bool:
            try:
                await env.get("vol")
            except Exception:
                return not (tmp / "volumes" / "pods" / uid).exists()
            return False
        await until(gone, within=15, what="pod deleted and its volumes torn down")
