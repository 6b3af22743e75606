"""Pod features over the real runtime (runc, and runsc where installed), as test_runc_pods runs it: a shared
process namespace, a dead sandbox replaced (its pause killed, its namespaces gone as after a reboot, its
network namespace deleted under the real CNI plugins, its gVisor sandbox killed), sidecars stopped after
the main containers in reverse order, a Job-style pod with a sidecar completing, and a gVisor pod held to
its containers' limits."""

from __future__ import annotations

import contextlib
import ipaddress
import os
import shutil
import signal
from pathlib import Path
from typing import Any

import pytest

from pyk8s.kubelet.runtime import nsutil
from pyk8s.kubelet.runtime.service import _alive
from tests.kubelet import test_runc_network as net
from tests.kubelet import test_runc_pods as runc
from tests.kubelet._harness import Env, conditions, state
from tests.kubelet.test_runc_pods import bb, pod, real_kubelet
from tests.support.apiserver import Server
from tests.support.poll import eventually, until

pytestmark = runc.pytestmark
node = runc.node  # the fixture: an API server, a state directory and a cgroup root of its own
node_netns = net.node_netns  # the fixture: a network namespace of the test's own, with a bridge name and CIDR

Node = tuple[Path, Server, str]


async def _stop_monitor_server(tmp: Path) -> None:
    """The runtime's monitor server outlives the test otherwise (containers are removed by the fixtures)."""
    from pyk8s.kubelet.images import ImageStore
    from pyk8s.kubelet.runtime import RuncRuntime
    await RuncRuntime(str(tmp / "runtime"), ImageStore(str(tmp / "images")), None).close()

SANDBOX_CHANGED = ("Normal", "SandboxChanged", "Pod sandbox changed, it will be killed and re-created.")


def _cid(p: dict[str, Any], name: str) -> str:
    return str(state(p, name)["containerID"]).removeprefix("runc://")


async def _ps(env: Env, p: dict[str, Any], name: str) -> str:
    result = await env.runtime.exec_sync(_cid(p, name), ["ps", "-o", "pid,args"], 10)
    assert result.exit_code == 0, result.stderr
    return result.stdout.decode()


def _sandbox_record(env: Env, p: dict[str, Any]) -> dict[str, Any]:
    import json
    uid = p["metadata"]["uid"]
    runtime: Any = env.runtime
    for sid in os.listdir(runtime.sandbox_root):
        rec: dict[str, Any] = json.loads((Path(runtime.sandbox_root) / sid / "sandbox.json").read_text())
        if rec["config"]["pod_uid"] == uid and rec["state"] == "ready":
            return rec
    raise AssertionError("no ready sandbox")


async def test_share_process_namespace_and_a_killed_pause_is_a_new_sandbox(node: Node) -> None:
    async with real_kubelet(*node) as env:
        await env.create(pod("shared", bb("a", "sleep 3600"), bb("b", "sleep 3601"),
                             shareProcessNamespace=True))
        await env.create(pod("apart", bb("a", "sleep 3600"), bb("b", "sleep 3601")))
        p = await env.wait("shared", lambda p: conditions(p).get("Ready") == "True", within=15)
        seen = await _ps(env, p, "b")
        assert "sleep 3600" in seen and "sleep 3601" in seen  # a's process, seen from b
        pid1 = next(line.split(None, 1) for line in seen.splitlines()[1:] if line.split()[0] == "1")
        assert "pause" in pid1[1]  # the pod's pause is PID 1, as in Kubernetes
        q = await env.wait("apart", lambda p: conditions(p).get("Ready") == "True", within=15)
        own = await _ps(env, q, "b")
        assert "sleep 3601" in own and "sleep 3600" not in own

        # The pause dies: the kernel ends the whole namespace; the kubelet makes a new sandbox.
        pause_pid, _ = _sandbox_record(env, p)["pause"]
        os.kill(pause_pid, signal.SIGKILL)
        p = await env.wait("shared", lambda p: conditions(p).get("Ready") == "True"
                           and state(p, "a")["restartCount"] == 1 and state(p, "b")["restartCount"] == 1,
                           within=20)
        assert SANDBOX_CHANGED in await env.events("shared")
        new_pause = _sandbox_record(env, p)["pause"]
        assert new_pause[0] != pause_pid and "sleep 3600" in await _ps(env, p, "b")

        await env.client.delete(env.manager.pods.info, "shared", "default")

        async def gone() -> bool:
            return not _alive(*new_pause)
        await until(gone, within=15, what="the pause process ended with the pod")


async def test_sandbox_whose_namespaces_vanish_is_replaced_unless_restart_never(node: Node) -> None:
    async with real_kubelet(*node) as env:
        await env.create(pod("again", bb("c")))
        await env.create(pod("never", bb("c"), restart="Never"))
        p = await env.wait("again", lambda p: conditions(p).get("Ready") == "True", within=15)
        n = await env.wait("never", lambda p: conditions(p).get("Ready") == "True", within=15)
        old = {_sandbox_record(env, x)["id"] for x in (p, n)}
        # What a reboot leaves: the sandboxes' namespace files, no longer holding namespaces.
        for x in (p, n):
            rec = _sandbox_record(env, x)
            for key in ("ipc", "uts", "netns"):
                if rec[key]:
                    nsutil.unmount(rec[key])
        p = await env.wait("again", lambda p: conditions(p).get("Ready") == "True"
                           and state(p, "c")["restartCount"] == 1, within=20)
        assert _sandbox_record(env, p)["id"] not in old
        assert SANDBOX_CHANGED in await env.events("again")
        n = await env.wait("never", lambda p: p["status"].get("phase") == "Failed", within=20)
        assert state(n, "c")["restartCount"] == 0 and "terminated" in state(n, "c")["state"]
        assert SANDBOX_CHANGED not in await env.events("never")


async def test_sidecars_stop_after_main_in_reverse_order_and_job_pod_completes(node: Node) -> None:
    tmp = node[0]
    out = tmp / "out"
    out.mkdir()

    def noting(name: str, **extra: Any) -> dict[str, Any]:
        script = f'trap "echo {name} >> /out/order; exit 0" TERM; while true; do sleep 0.1; done'
        c = bb(name, script, **extra)
        c["volumeMounts"] = [{"name": "out", "mountPath": "/out"}]
        return c

    volumes = [{"name": "out", "hostPath": {"path": str(out), "type": "Directory"}}]
    async with real_kubelet(*node) as env:
        sidecars = [noting("s1", restartPolicy="Always"), noting("s2", restartPolicy="Always")]
        await env.create(pod("order", noting("main"), initContainers=sidecars, volumes=volumes,
                             terminationGracePeriodSeconds=10))
        job = pod("job", bb("main", "sleep 0.3"), restart="Never",
                  initContainers=[bb("side", "sleep 3600", restartPolicy="Always")])
        await env.create(job)
        await env.wait("order", lambda p: conditions(p).get("Ready") == "True", within=15)
        await env.client.delete(env.manager.pods.info, "order", "default")

        async def noted() -> bool:
            return (out / "order").exists() and len((out / "order").read_text().split()) == 3
        await until(noted, within=20, what="every container noted its SIGTERM")
        assert (out / "order").read_text().split() == ["main", "s2", "s1"]

        j = await env.wait("job", lambda p: p["status"].get("phase") == "Succeeded"
                           and "terminated" in state(p, "side", init=True).get("state", {}), within=20)
        assert state(j, "main")["state"]["terminated"]["exitCode"] == 0
        assert not [c for c in await env.runtime.list_containers() if c.state == "running"]


@pytest.mark.skipif(shutil.which("runsc") is None, reason="needs runsc")
async def test_killed_gvisor_sandbox_is_replaced(node: Node) -> None:
    from pyk8s.api import catalog
    runtime_classes = catalog.lookup("node.k8s.io", "v1", "runtimeclasses")
    assert runtime_classes
    async with real_kubelet(*node) as env:
        await env.client.create(runtime_classes, {"metadata": {"name": "gvisor"}, "handler": "runsc"})
        await eventually(lambda: env.manager.runtime_class("gvisor") is not None, within=20,
                         what="RuntimeClass seen")
        await env.create(pod("gv", bb("c"), runtimeClassName="gvisor"))
        p = await env.wait("gv", lambda p: conditions(p).get("Ready") == "True", within=30)
        sandbox_pid, _ = _sandbox_record(env, p)["gvisor_pid"]
        os.kill(sandbox_pid, signal.SIGKILL)
        p = await env.wait("gv", lambda p: conditions(p).get("Ready") == "True"
                           and state(p, "c")["restartCount"] == 1, within=30)
        assert SANDBOX_CHANGED in await env.events("gv")
        assert _sandbox_record(env, p)["gvisor_pid"][0] != sandbox_pid



@pytest.mark.skipif(shutil.which("runsc") is None, reason="needs runsc")
async def test_gvisor_pod_is_held_to_its_containers_limits(node: Node) -> None:
    from pyk8s.api import catalog
    runtime_classes = catalog.lookup("node.k8s.io", "v1", "runtimeclasses")
    assert runtime_classes
    limits = {"limits": {"memory": "64Mi", "cpu": "500m"}}
    async with real_kubelet(*node) as env:
        await env.client.create(runtime_classes, {"metadata": {"name": "gvisor"}, "handler": "runsc"})
        await eventually(lambda: env.manager.runtime_class("gvisor") is not None, within=20,
                         what="RuntimeClass seen")
        sizes = bb("c", "grep MemTotal /proc/meminfo; sleep 3600", resources=limits)
        await env.create(pod("gv-sizes", sizes, bb("d", resources=limits), runtimeClassName="gvisor"))
        hog = bb("c", "head -c 300m /dev/zero | tail > /dev/null", resources=limits)
        await env.create(pod("gv-hog", hog, restart="Never", runtimeClassName="gvisor"))
        p = await env.wait("gv-sizes", lambda p: conditions(p).get("Ready") == "True", within=30)
        # The sandbox (gVisor's kernel) has the pod's limits: the sums over its containers.
        rec = _sandbox_record(env, p)
        cgroup = Path("/sys/fs/cgroup/memory") / rec["config"]["cgroup_parent"].strip("/") / rec["id"]
        assert int((cgroup / "memory.limit_in_bytes").read_text()) == 128 * 1024 * 1024
        cpu = Path("/sys/fs/cgroup/cpu") / rec["config"]["cgroup_parent"].strip("/") / rec["id"]
        assert int((cpu / "cpu.cfs_quota_us").read_text()) == 100_000

        async def logged() -> bool:
            return any("MemTotal:" in f.read_text() for f in (node[0] / "logs").glob("*gv-sizes*/c/*.log"))
        await until(logged, within=15, what="the container's meminfo logged")
        line = next(f.read_text() for f in (node[0] / "logs").glob("*gv-sizes*/c/*.log"))
        assert "131072 kB" in line  # gVisor's kernel sizes itself to the pod's limit
        h = await env.wait("gv-hog", lambda p: p["status"].get("phase") == "Failed", within=30)
        assert state(h, "c")["state"]["terminated"]["reason"] == "OOMKilled"


@net.pytestmark
async def test_pod_whose_network_namespace_vanished_gets_a_new_sandbox_and_ip(node_netns: tuple[str, str],
                                                                           tmp_path: Path) -> None:
    """Through the real CNI plugins, inside a network namespace of the test's own (test_runc_network's
    node): the pod's network namespace is deleted; the kubelet makes a new sandbox with a new IP."""
    bridge, cidr = node_netns
    async with contextlib.AsyncExitStack() as stack:
        stack.push_async_callback(_stop_monitor_server, tmp_path)
        env = await stack.enter_async_context(net.kubelet_with_network(tmp_path, bridge, cidr))
        await env.create(pod("renet", bb("c")))
        p = await env.wait("renet", lambda p: conditions(p).get("Ready") == "True", within=30)
        old_ip = p["status"]["podIP"]
        rec = _sandbox_record(env, p)
        nsutil.unmount(rec["netns"])  # what `ip netns delete` does
        os.unlink(rec["netns"])
        p = await env.wait("renet", lambda p: conditions(p).get("Ready") == "True"
                           and state(p, "c")["restartCount"] == 1, within=30)
        assert p["status"]["podIP"] != old_ip and p["status"]["podIPs"] == [{"ip": p["status"]["podIP"]}]
        assert ipaddress.ip_address(p["status"]["podIP"]) in ipaddress.ip_network(cidr)
        assert SANDBOX_CHANGED in await env.events("renet")
