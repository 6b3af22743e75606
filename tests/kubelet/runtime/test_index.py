"""Listing a pod's containers: the runtime keeps records it has read, yet the state directory stays the
truth, for a new runtime object and for containers another object created or removed."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from pyk8s.kubelet.runtime import RuncRuntime
from tests.kubelet.runtime.conftest import (
    FakeImages,
    container_config,
    mountinfo,
    needs_root,
    sandbox_config,
)

pytestmark = needs_root


async def test_containers_are_listed_by_sandbox_across_runtime_objects(
        runtime: RuncRuntime, cgroup_parent: str, tmp_path: Path, busybox_layer: Path) -> None:
    s1, s2 = await asyncio.gather(runtime.run_pod_sandbox(sandbox_config(cgroup_parent, tmp_path)),
                                  runtime.run_pod_sandbox(sandbox_config(cgroup_parent, tmp_path)))
    in_s1 = set(await asyncio.gather(*(runtime.create_container(s1, container_config(["true"]))
                                       for _ in range(3))))
    in_s2 = {await runtime.create_container(s2, container_config(["true"]))}
    assert {c.id for c in await runtime.list_containers(s1)} == in_s1
    assert {c.id for c in await runtime.list_containers(s2)} == in_s2
    assert {c.id for c in await runtime.list_containers()} == in_s1 | in_s2
    assert all(c.sandbox_id == s1 and c.state == "created" for c in await runtime.list_containers(s1))

    # A new object on the same state directory (a restarted kubelet) finds them all.
    other = RuncRuntime(runtime.state_dir, FakeImages(busybox_layer), None)
    assert {c.id for c in await other.list_containers(s1)} == in_s1
    assert {s.id for s in await other.list_pod_sandboxes()} == {s1, s2}

    # What one object creates or removes, the other lists.
    added = await other.create_container(s2, container_config(["true"]))
    removed = sorted(in_s1)[0]
    await other.remove_container(removed)
    assert {c.id for c in await runtime.list_containers(s2)} == in_s2 | {added}
    assert {c.id for c in await runtime.list_containers(s1)} == in_s1 - {removed}
    await runtime.remove_pod_sandbox(s1)
    assert await other.list_containers(s1) == [] and await runtime.list_containers(s1) == []
    assert f"{runtime.state_dir}/containers/{removed}" not in mountinfo()
    await other.close()


async def test_a_failed_sandbox_leaves_nothing(runtime: RuncRuntime, cgroup_parent: str,
                                               tmp_path: Path) -> None:
    """The sandbox record is written once its namespaces are planned; a failure undoes them."""
    cfg = sandbox_config(cgroup_parent, tmp_path, hostname="-bad name-")  # hostname(1) refuses it
    with pytest.raises(RuntimeError):
        await runtime.run_pod_sandbox(cfg)
    assert await runtime.list_pod_sandboxes() == []
    assert os.listdir(runtime.sandbox_root) == []
    assert f"{runtime.state_dir}/sandboxes/" not in mountinfo()


async def test_sandbox_namespaces_leave_our_threads_in_our_own(runtime: RuncRuntime, cgroup_parent: str,
                                                               tmp_path: Path) -> None:
    """A hostNetwork sandbox's IPC namespace is made by a thread of the runtime's process: it is a new
    one, held by its bind mount, and no thread of ours stays in it."""
    sid = await runtime.run_pod_sandbox(sandbox_config(cgroup_parent, tmp_path, host_network=True))
    ipc = os.path.join(runtime.sandbox_root, sid, "ns", "ipc")
    assert f"{ipc} " in mountinfo()
    assert os.stat(ipc).st_ino != os.stat("/proc/self/ns/ipc").st_ino
    for kind in ("ipc", "uts"):
        own = os.readlink(f"/proc/self/ns/{kind}")
        assert {os.readlink(f"/proc/self/task/{t}/ns/{kind}") for t in os.listdir("/proc/self/task")} == {own}
    await runtime.remove_pod_sandbox(sid)
    assert f"{ipc} " not in mountinfo()
