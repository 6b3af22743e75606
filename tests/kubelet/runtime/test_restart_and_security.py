"""Restart safety (containers outlive the process that made them) and the CVE checks."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from pyk8s.kubelet import cri
from pyk8s.kubelet.runtime import RuncRuntime
from tests.kubelet.runtime.conftest import (
    FakeImages,
    container_config,
    mountinfo,
    needs_root,
    read_text,
    sandbox_config,
    wait_for,
)

pytestmark = needs_root


async def test_kubelet_killed_containers_survive(runtime: RuncRuntime, cgroup_parent: str, tmp_path: Path,
                                                 busybox_layer: Path) -> None:
    # Another Python process creates a sandbox, a finished and a running container, then is SIGKILLed.
    script = textwrap.dedent(f"""
        import asyncio, os, signal, sys
        sys.path.insert(0, {os.getcwd()!r})
        from pathlib import Path
        from pyk8s.kubelet.runtime import RuncRuntime
        from tests.kubelet.runtime.conftest import FakeImages, container_config, sandbox_config
        async def main():
            rt = RuncRuntime({runtime.state_dir!r}, FakeImages(Path({str(busybox_layer)!r})), None)
            sid = await rt.run_pod_sandbox(sandbox_config({cgroup_parent!r}, Path({str(tmp_path)!r})))
            done = await rt.create_container(sid, container_config(["sh", "-c", "exit 2"], name="done"))
            await rt.start_container(done)
            live = await rt.create_container(sid, container_config(["sleep", "1000"], name="live",
                                                                    log_path="live/0.log"))
            await rt.start_container(live)
            print(sid, done, live, flush=True)
            os.kill(os.getpid(), signal.SIGKILL)
        asyncio.run(main())
    """)
    proc = subprocess.run(  # noqa: ASYNC221 - the process must be killed mid-way, synchronously is fine
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert proc.returncode == -9, proc.stderr
    sid, done, live = proc.stdout.split()

    fresh = RuncRuntime(runtime.state_dir, FakeImages(busybox_layer), None)
    sandboxes = await fresh.list_pod_sandboxes()
    assert [(s.id, s.state) for s in sandboxes] == [(sid, "ready")]
    assert sandboxes[0].netns_path

    async def done_exited() -> bool:
        return (await fresh.container_status(done)).state == "exited"

    await wait_for(done_exited)
    by_id = {c.id: c for c in await fresh.list_containers(sid)}
    assert (by_id[done].exit_code, by_id[done].reason) == (2, "Error")
    assert by_id[live].state == "running" and by_id[live].pid > 0
    pid = by_id[live].pid
    assert read_text(f"/proc/{pid}/cmdline").encode().startswith(b"sleep")
    # The same process, not a restarted one; and it still answers exec.
    res = await fresh.exec_sync(live, ["echo", "still here"], 10)
    assert res.stdout == b"still here\n"
    assert (await fresh.container_status(live)).pid == pid

    # After a reboot the namespaces' bind mounts are gone: the sandbox is no longer ready.
    ipc = Path(runtime.state_dir) / "sandboxes" / sid / "ns" / "ipc"
    await fresh.stop_container(live, 0)
    subprocess.run(["umount", str(ipc)], check=True)  # noqa: ASYNC221 - a quick umount
    assert (await fresh.pod_sandbox_status(sid)).state == "notready"


async def test_working_dir_cannot_reach_the_host(runtime: RuncRuntime, cgroup_parent: str,
                                                 tmp_path: Path, busybox_layer: Path) -> None:
    """CVE-2024-21626: runc 1.1.5 leaks a host directory fd; a workingDir of /proc/self/fd/N, direct or
    through a symlink in the image, would put the process in the host's filesystem."""
    sid = await runtime.run_pod_sandbox(sandbox_config(cgroup_parent, tmp_path))
    for n in range(3, 10):
        with pytest.raises(ValueError, match="/proc"):
            await runtime.create_container(sid, container_config(["pwd"], working_dir=f"/proc/self/fd/{n}"))
    with pytest.raises(ValueError, match="/proc"):
        await runtime.create_container(sid, container_config(["pwd"], working_dir="/tmp/../proc/1/cwd"))
    # An image whose directory is a symlink into /proc.
    evil = tmp_path / "evil-layer"
    (evil / "app").mkdir(parents=True)
    os.symlink("/proc/self/fd/7", evil / "app" / "here")
    os.symlink("../../proc/self/fd/8", evil / "rel")

    class EvilImages(FakeImages):
        def layer_dirs(self, image_id: str) -> list[str]:
            return [str(busybox_layer), str(evil)]

    rt = RuncRuntime(runtime.state_dir, EvilImages(busybox_layer), None)
    for wd in ("/app/here", "/rel", "/app/here/.."):
        with pytest.raises(ValueError, match="/proc"):
            await rt.create_container(sid, container_config(["pwd"], working_dir=wd))
    # Nothing was left behind by the refused creations.
    assert await runtime.list_containers() == []
    assert f"{runtime.state_dir}/containers/" not in mountinfo()


async def test_mounts_do_not_follow_symlinks_out_of_the_rootfs(runtime: RuncRuntime, cgroup_parent: str,
                                                               tmp_path: Path, busybox_layer: Path) -> None:
    """A volume mounted at a path that is a symlink in the image to a host directory lands inside the
    container's rootfs, never on the host path the symlink names."""
    host_dir = tmp_path / "host-target"
    host_dir.mkdir()
    evil = tmp_path / "evil-layer"
    (evil / "data").mkdir(parents=True)
    os.symlink(str(host_dir), evil / "data" / "link")
    volume = tmp_path / "volume"
    volume.mkdir()
    (volume / "marker").write_text("volume\n")

    class EvilImages(FakeImages):
        def layer_dirs(self, image_id: str) -> list[str]:
            return [str(busybox_layer), str(evil)]

    rt = RuncRuntime(runtime.state_dir, EvilImages(busybox_layer), None)
    sid = await rt.run_pod_sandbox(sandbox_config(cgroup_parent, tmp_path))
    cid = await rt.create_container(sid, container_config(
        ["sh", "-c", "cat /data/link/marker && touch /data/link/written"],
        mounts=[cri.Mount(host_path=str(volume), container_path="/data/link")]))
    await rt.start_container(cid)

    async def exited() -> cri.ContainerStatus | None:
        st = await rt.container_status(cid)
        return st if st.state == "exited" else None

    st = await wait_for(exited)
    assert st.exit_code == 0  # type: ignore[union-attr]
    assert list(host_dir.iterdir()) == []  # nothing mounted over or written to the host directory
    assert (volume / "written").exists()
    assert str(host_dir) not in mountinfo()


async def test_a_lost_monitor_is_reported_and_its_container_can_be_stopped(
        runtime: RuncRuntime, cgroup_parent: str, tmp_path: Path) -> None:
    sid = await runtime.run_pod_sandbox(sandbox_config(cgroup_parent, tmp_path))
    cid = await runtime.create_container(sid, container_config(["sleep", "1000"]))
    await runtime.start_container(cid)
    started = json.loads(read_text(Path(runtime.state_dir) / "containers" / cid / "started.json"))
    os.kill(started["monitor_pid"], signal.SIGKILL)

    async def unknown() -> bool:
        return (await runtime.container_status(cid)).state == "unknown"

    await wait_for(unknown)
    pid = started["pid"]
    await runtime.stop_container(cid, 5)
    st = await runtime.container_status(cid)
    assert (st.state, st.exit_code, st.reason) == ("exited", 137, "Error")
    await wait_for(lambda: not _running(pid))


def _running(pid: int) -> bool:
    try:
        return read_text(f"/proc/{pid}/stat").rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False
