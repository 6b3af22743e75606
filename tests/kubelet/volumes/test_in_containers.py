"""Volumes as real runc containers see them: a configMap update reaching a running container, subPath
mounts, and CVE-2017-1002101 played out — a container plants `escape -> /` in a shared emptyDir and a
later container asking for that subPath is refused, never given the host's root."""

from __future__ import annotations

from pathlib import Path

import pytest

from pyk8s.kubelet import cri
from pyk8s.kubelet.runtime import RuncRuntime
from pyk8s.kubelet.volumes import VolumeError
from tests.kubelet.runtime.conftest import container_config, needs_root, sandbox_config, wait_for
from tests.kubelet.volumes.conftest import CONFIGMAPS, Env, make_pod

pytestmark = needs_root


async def _run_to_exit(runtime: RuncRuntime, sid: str, cfg: cri.ContainerConfig) -> cri.ContainerStatus:
    cid = await runtime.create_container(sid, cfg)
    await runtime.start_container(cid)

    async def exited() -> cri.ContainerStatus | None:
        st = await runtime.container_status(cid)
        return st if st.state == "exited" else None

    return await wait_for(exited)  # type: ignore[return-value]


async def test_volumes_in_running_containers(env: Env, runtime: RuncRuntime, cgroup_parent: str,
                                             tmp_path: Path) -> None:
    await env.client.create(CONFIGMAPS, {"metadata": {"name": "cfg", "namespace": "default"},
                                         "data": {"greeting": "hello"}})
    planter = {"name": "planter", "image": "busybox",
               "volumeMounts": [{"name": "shared", "mountPath": "/shared"}]}
    reader = {"name": "reader", "image": "busybox", "volumeMounts": [
        {"name": "cfg", "mountPath": "/etc/cfg"},
        {"name": "shared", "mountPath": "/data", "subPath": "data"},
    ]}
    victim = {"name": "victim", "image": "busybox",
              "volumeMounts": [{"name": "shared", "mountPath": "/host", "subPath": "escape"}]}
    pod = await make_pod(env, "real", [{"name": "cfg", "configMap": {"name": "cfg"}},
                                       {"name": "shared", "emptyDir": {}}],
                         containers=[planter, reader, victim])
    vols = await env.volumes.setup(pod)
    sid = await runtime.run_pod_sandbox(sandbox_config(cgroup_parent, tmp_path))

    # The first container plants a symlink to / and a file for the legitimate subPath.
    planted = await _run_to_exit(runtime, sid, container_config(
        ["sh", "-c", "ln -s / /shared/escape && mkdir /shared/data && echo inside > /shared/data/f"],
        name="planter", mounts=vols.mounts_for(planter), log_path="planter/0.log"))
    assert planted.exit_code == 0
    assert (Path(vols.host_path("shared")) / "escape").is_symlink()

    with pytest.raises(VolumeError) as e:
        vols.mounts_for(victim)
    assert e.value.reason == "CreateContainerConfigError"

    cid = await runtime.create_container(sid, container_config(
        ["sleep", "60"], name="reader", mounts=vols.mounts_for(reader), log_path="reader/0.log"))
    await runtime.start_container(cid)
    seen = await runtime.exec_sync(cid, ["sh", "-c", "cat /etc/cfg/greeting; echo; cat /data/f"], 10)
    assert seen.stdout.decode().split() == ["hello", "inside"]
    # the subPath mount shows only the volume's subdirectory: nothing of the host's root
    listing = await runtime.exec_sync(cid, ["ls", "/data"], 10)
    assert listing.stdout.decode().split() == ["f"]

    cm = await env.client.get(CONFIGMAPS, "cfg", "default")
    cm["data"] = {"greeting": "bonjour"}
    await env.client.update(CONFIGMAPS, cm)
    await env.volumes.refresh()
    after = await runtime.exec_sync(cid, ["cat", "/etc/cfg/greeting"], 10)
    assert after.stdout.decode() == "bonjour"  # the running container sees the update
    write = await runtime.exec_sync(cid, ["sh", "-c", "echo x > /etc/cfg/new"], 10)
    assert write.exit_code != 0  # configMap volumes are read-only in the container
    await runtime.stop_container(cid, 0)
