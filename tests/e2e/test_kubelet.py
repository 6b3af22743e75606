"""A real node: `pyk8s agent` (no --hollow) runs the kubelet over runc and the seed busybox image, joined to
a real `pyk8s server`, driven through the real kubectl: a pod Running with an IP, exit codes, restart
back-off, init containers in order, a failing liveness probe restarting a container, a memory limit ending
in OOMKilled, a missing image in ImagePullBackOff, and a SIGKILLed and restarted kubelet that leaves its
running containers untouched. Pods use the host network here, so the test adds no bridge or NAT rules to
the machine (pod networking through CNI has its own tests in network namespaces of their own)."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support.cluster import Agent, Cluster, start_agent, start_cluster, wait_for

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or shutil.which("runc") is None
                                or not os.path.exists("/bin/busybox"), reason="needs root, runc and busybox")


@dataclass
class Node:
    cluster: Cluster
    data_dir: Path
    name: str
    agent: Agent
    agent_args: tuple[str, ...] = ()

    def start_agent(self) -> None:
        agent = start_agent(self.cluster, self.data_dir, "--node-name", self.name, "--node-ip", "127.0.0.1",
                            *self.agent_args)
        self.agent = agent
        try:
            wait_for(lambda: "pyk8s agent: ready" in agent.log.read_text()
                     or agent.process.poll() is not None, within=60, what="the agent ready")
        except AssertionError as e:
            raise AssertionError(agent.log.read_text()) from e
        assert agent.process.poll() is None, agent.log.read_text()


def node_on_own_cluster(prefix: str, *agent_args: str) -> Iterator[Node]:
    """A fresh cluster with one real agent node, `<prefix>-<hex>`; on the way out, pods, the agent, the
    cluster and whatever the runtime left are removed."""
    cluster = start_cluster()
    data_dir = cluster.data_dir / "node"
    n = Node(cluster, data_dir, f"{prefix}-{secrets.token_hex(3)}", None, agent_args)  # type: ignore[arg-type]
    try:
        n.start_agent()
        yield n
    finally:
        cluster.kubectl("delete", "pods", "--all", "--wait=false", check=False)
        with contextlib.suppress(AssertionError):
            wait_for(lambda: not _json(cluster, "get", "pods")["items"], within=30, what="pods gone")
        if n.agent is not None:
            n.agent.stop()
        cluster.stop()
        _cleanup_runtime(data_dir)
        shutil.rmtree(cluster.data_dir, ignore_errors=True)


@pytest.fixture(scope="module")
def node() -> Iterator[Node]:
    # A kubelet port of its own: another node on this machine may hold 10250.
    yield from node_on_own_cluster("kubelet-e2e", "--kubelet-port", "0")


def _cleanup_runtime(data_dir: Path) -> None:
    """Whatever the kubelet left (a failed test, or a pod whose volumes were still being torn down when the
    agent stopped): sandboxes, containers, volume mounts, cgroups."""
    import asyncio

    from pyk8s.kubelet.images import ImageStore
    from pyk8s.kubelet.runtime import RuncRuntime
    from pyk8s.kubelet.volumes import VolumeManager

    async def clean() -> None:
        if (data_dir / "agent" / "runtime").is_dir():
            rt = RuncRuntime(str(data_dir / "agent" / "runtime"), ImageStore.for_data_dir(data_dir), None)
            for s in await rt.list_pod_sandboxes():
                await rt.stop_pod_sandbox(s.id)
                for c in await rt.list_containers(s.id):
                    await rt.remove_container(c.id)
                await rt.remove_pod_sandbox(s.id)
            await rt.close()
        volumes = VolumeManager(None, str(data_dir / "agent" / "volumes"))  # type: ignore[arg-type]
        for uid in volumes.pod_uids_on_disk():
            await volumes.teardown(uid)

    asyncio.run(clean())
    # The agent's service proxy leaves its rules when it stops, as kube-proxy does; a test node must not.
    subprocess.run(["nft", "delete", "table", "ip", "pyk8s"], capture_output=True, check=False)


def _json(cluster: Cluster, *args: str) -> dict[str, Any]:
    out: dict[str, Any] = json.loads(cluster.kubectl(*args, "-o", "json").stdout)
    return out


def apply(cluster: Cluster, obj: dict[str, Any]) -> None:
    cluster.kubectl("apply", "-f", "-", input=json.dumps(obj))


def pod(name: str, node_name: str, *containers: dict[str, Any], restart: str = "Always",
        **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "default"},
            "spec": {"nodeName": node_name, "restartPolicy": restart, "hostNetwork": True,
                     "terminationGracePeriodSeconds": 1, "containers": list(containers), **spec}}


def bb(name: str, script: str = "sleep 3600", **extra: Any) -> dict[str, Any]:
    return {"name": name, "image": "busybox", "imagePullPolicy": "IfNotPresent",
            "command": ["sh", "-c", script], **extra}


def get(cluster: Cluster, name: str) -> dict[str, Any]:
    return _json(cluster, "get", "pod", name)


def cstate(p: dict[str, Any], name: str = "c", init: bool = False) -> dict[str, Any]:
    key = "initContainerStatuses" if init else "containerStatuses"
    return next((dict(s) for s in p.get("status", {}).get(key) or [] if s["name"] == name), {})


def until_pod(cluster: Cluster, name: str, check: Any, within: float = 60, what: str = "") -> dict[str, Any]:
    found: dict[str, Any] = {}

    def probe() -> bool:
        found.update(get(cluster, name))
        return bool(check(found))
    wait_for(probe, within=within, what=what or f"pod {name}")
    return found


def test_busybox_pod_runs_with_ip_and_exit_codes(node: Node) -> None:
    cluster, name = node.cluster, node.name
    apply(cluster, pod("e2e-run", name, bb("c")))
    apply(cluster, pod("e2e-exit", name, bb("c", "exit 7"), restart="Never"))
    p = until_pod(cluster, "e2e-run", lambda p: p["status"].get("phase") == "Running"
                  and cstate(p).get("ready"), what="busybox Running and ready")
    assert p["status"]["podIP"] == "127.0.0.1" and p["status"]["hostIP"] == "127.0.0.1"
    assert cstate(p)["containerID"].startswith("runc://") and p["status"]["qosClass"] == "BestEffort"
    row = cluster.kubectl("get", "pod", "e2e-run").stdout.splitlines()[1].split()
    assert row[1:3] == ["1/1", "Running"]
    e = until_pod(cluster, "e2e-exit", lambda p: p["status"].get("phase") == "Failed", what="exit 7")
    assert cstate(e)["state"]["terminated"]["exitCode"] == 7
    assert cstate(e)["state"]["terminated"]["reason"] == "Error"
    events = cluster.kubectl("get", "events", "--field-selector", "involvedObject.name=e2e-run").stdout
    assert "Started" in events and "Created" in events


def test_restart_back_off_and_init_containers(node: Node) -> None:
    cluster, name = node.cluster, node.name
    apply(cluster, pod("e2e-crash", name, bb("c", "exit 1")))
    apply(cluster, pod("e2e-init", name, bb("c"), initContainers=[bb("i1", "sleep 0.3"), bb("i2", "true")]))
    p = until_pod(cluster, "e2e-crash", lambda p: cstate(p).get("state", {}).get("waiting", {}).get("reason")
                  == "CrashLoopBackOff", what="CrashLoopBackOff")
    assert cstate(p)["lastState"]["terminated"]["exitCode"] == 1 and cstate(p)["restartCount"] >= 1
    assert "CrashLoopBackOff" in cluster.kubectl("get", "pod", "e2e-crash").stdout
    i = until_pod(cluster, "e2e-init", lambda p: "running" in cstate(p).get("state", {}), what="init done")
    i1, i2 = cstate(i, "i1", True)["state"]["terminated"], cstate(i, "i2", True)["state"]["terminated"]
    assert i1["reason"] == i2["reason"] == "Completed"
    assert i1["finishedAt"] <= i2["startedAt"] <= cstate(i)["state"]["running"]["startedAt"]


def test_liveness_restart_and_oom_kill(node: Node) -> None:
    cluster, name = node.cluster, node.name
    probe = {"exec": {"command": ["test", "-e", "/tmp/healthy"]}, "periodSeconds": 1, "failureThreshold": 1}
    apply(cluster, pod("e2e-live", name, bb("c", "touch /tmp/healthy; sleep 2; rm /tmp/healthy; sleep 3600",
                                           livenessProbe=probe)))
    apply(cluster, pod("e2e-oom", name, bb("c", "head -c 300m /dev/zero | tail > /dev/null",
                                          resources={"limits": {"memory": "32Mi"}}), restart="Never"))
    until_pod(cluster, "e2e-live", lambda p: cstate(p).get("restartCount", 0) >= 1, what="liveness restart")
    events = cluster.kubectl("get", "events", "--field-selector", "involvedObject.name=e2e-live").stdout
    assert "Unhealthy" in events and "failed liveness probe, will be restarted" in events
    o = until_pod(cluster, "e2e-oom", lambda p: p["status"].get("phase") == "Failed", what="OOMKilled")
    assert cstate(o)["state"]["terminated"]["reason"] == "OOMKilled"


def test_missing_image_shows_image_pull_back_off(node: Node) -> None:
    cluster, name = node.cluster, node.name
    c = bb("c")
    c["image"] = "127.0.0.1:1/missing/image:1"
    apply(cluster, pod("e2e-img", name, c))
    until_pod(cluster, "e2e-img", lambda p: cstate(p).get("state", {}).get("waiting", {}).get("reason")
              == "ImagePullBackOff", what="ImagePullBackOff")
    assert "ImagePullBackOff" in cluster.kubectl("get", "pod", "e2e-img").stdout


def test_sigkilled_kubelet_leaves_running_containers_untouched(node: Node) -> None:
    cluster, name = node.cluster, node.name
    apply(cluster, pod("e2e-keep", name, bb("c")))
    p = until_pod(cluster, "e2e-keep", lambda p: cstate(p).get("ready"), what="e2e-keep ready")
    cid, started = cstate(p)["containerID"], cstate(p)["state"]["running"]["startedAt"]
    # Kill the agent the hard way, then start it again on the same data dir.
    node.agent.stop(signal.SIGKILL)
    node.start_agent()
    cluster.kubectl("label", "pod", "e2e-keep", "poked=yes")  # wakes the adopted worker
    p = until_pod(cluster, "e2e-keep", lambda p: p["metadata"].get("labels", {}).get("poked") == "yes")
    wait_for(lambda: get(cluster, "e2e-keep")["status"].get("phase") == "Running", what="still Running")
    p = get(cluster, "e2e-keep")
    assert cstate(p)["containerID"] == cid and cstate(p)["restartCount"] == 0
    assert cstate(p)["state"]["running"]["startedAt"] == started
    cluster.kubectl("delete", "pod", "e2e-keep", "--wait=true", "--timeout=60s")


def _gvisor_class(cluster: Cluster) -> None:
    """The gvisor RuntimeClass: the node registers it when its credentials allow; an administrator's apply
    is the same object."""
    apply(cluster, {"apiVersion": "node.k8s.io/v1", "kind": "RuntimeClass", "metadata": {"name": "gvisor"},
                    "handler": "runsc"})


@pytest.mark.skipif(shutil.which("runsc") is None, reason="needs runsc")
def test_gvisor_pod_runs_under_runsc(node: Node) -> None:
    cluster, name = node.cluster, node.name
    _gvisor_class(cluster)
    apply(cluster, pod("e2e-gvisor", name, bb("c", "dmesg | grep -q gVisor"), restart="Never",
                       runtimeClassName="gvisor"))
    p = until_pod(cluster, "e2e-gvisor", lambda p: p["status"].get("phase") in ("Succeeded", "Failed"),
                  what="the gVisor pod finished")
    assert p["status"]["phase"] == "Succeeded", p["status"]


def _ready(p: dict[str, Any]) -> bool:
    conditions = p.get("status", {}).get("conditions") or []
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


def test_shared_process_namespace_and_a_job_style_pod_with_a_sidecar(node: Node) -> None:
    cluster, name = node.cluster, node.name
    apply(cluster, pod("e2e-shared", name, bb("a", "sleep 3600"), bb("b", "sleep 3601"),
                       shareProcessNamespace=True))
    apply(cluster, pod("e2e-job", name, bb("main", "sleep 0.5"), restart="Never",
                       initContainers=[bb("side", restartPolicy="Always")]))
    until_pod(cluster, "e2e-shared", _ready, what="e2e-shared ready")
    done = cluster.kubectl("exec", "e2e-shared", "-c", "b", "--", "ps", "-o", "pid,args", check=False)
    assert done.returncode == 0, done.stderr + node.agent.log.read_text()[-6000:]
    seen = done.stdout
    assert "sleep 3600" in seen and "sleep 3601" in seen  # container a's process, seen from b
    j = until_pod(cluster, "e2e-job", lambda p: p["status"].get("phase") == "Succeeded"
                  and "terminated" in cstate(p, "side", True).get("state", {}), what="the Job-style pod done")
    assert cstate(j, "main")["state"]["terminated"]["reason"] == "Completed"
    cluster.kubectl("delete", "pod", "e2e-shared", "e2e-job", "--wait=true", "--timeout=60s")


def test_pod_whose_sandbox_died_gets_a_new_one(node: Node) -> None:
    from pyk8s.kubelet.runtime import nsutil

    cluster, name = node.cluster, node.name
    apply(cluster, pod("e2e-sandbox", name, bb("c")))
    p = until_pod(cluster, "e2e-sandbox", _ready, what="e2e-sandbox ready")
    uid = p["metadata"]["uid"]
    records = [json.loads(f.read_text())
               for f in (node.data_dir / "agent" / "runtime" / "sandboxes").glob("*/sandbox.json")]
    (rec,) = [r for r in records if r["config"]["pod_uid"] == uid]
    # What a reboot leaves of a sandbox: its namespace files, no longer holding namespaces.
    for key in ("ipc", "uts", "netns"):
        if rec[key]:
            nsutil.unmount(rec[key])
    until_pod(cluster, "e2e-sandbox", lambda p: _ready(p) and cstate(p)["restartCount"] == 1,
              what="containers running again in a new sandbox")
    events = _json(cluster, "get", "events", "--field-selector", "involvedObject.name=e2e-sandbox")["items"]
    assert ("SandboxChanged", "Pod sandbox changed, it will be killed and re-created.") in [
        (e["reason"], e["message"]) for e in events]
    cluster.kubectl("delete", "pod", "e2e-sandbox", "--wait=true", "--timeout=60s")


@pytest.mark.skipif(shutil.which("runsc") is None, reason="needs runsc")
def test_exec_with_a_tty_into_a_gvisor_pod(node: Node) -> None:
    from tests.e2e.test_streaming import _on_pty  # kubectl -t needs a terminal of its own

    cluster, name = node.cluster, node.name
    _gvisor_class(cluster)
    apply(cluster, pod("e2e-gvisor-tty", name, bb("c"), runtimeClassName="gvisor"))
    until_pod(cluster, "e2e-gvisor-tty", _ready, what="the gVisor pod ready")
    # kubectl's terminal size reaches gVisor's terminal through the resize channel, shortly after the start.
    script = ('for i in $(seq 100); do s=$(stty size 2>/dev/null); [ "$s" = "33 99" ] && break; sleep 0.1; '
              'done; echo "size=$s"; dmesg | grep -c gVisor; exit 5')
    out, code = _on_pty(node, "exec", "-i", "-t", "e2e-gvisor-tty", "--", "sh", "-c", script)
    assert code == 5 and "size=33 99" in out, out
    assert "stty:" not in out, out  # stdin is a terminal inside gVisor (before: "not a tty")
    cluster.kubectl("delete", "pod", "e2e-gvisor-tty", "--wait=true", "--timeout=60s")
