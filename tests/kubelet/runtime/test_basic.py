"""Containers under runc: exit codes and reasons, CRI logs, limits, the sandbox's files and namespaces."""

from __future__ import annotations

import os
import re
import socket
import time
from pathlib import Path

import pytest

from pyk8s.kubelet import cri
from pyk8s.kubelet.runtime import ContainerStartError, RuncRuntime
from tests.kubelet.runtime.conftest import (
    cmdlines,
    container_config,
    mountinfo,
    needs_root,
    read_text,
    sandbox_config,
    wait_for,
)

pytestmark = needs_root

LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z (stdout|stderr) (F|P) (.*)$")


async def run_to_exit(runtime: RuncRuntime, sid: str, cfg: cri.ContainerConfig) -> cri.ContainerStatus:
    cid = await runtime.create_container(sid, cfg)
    await runtime.start_container(cid)

    async def exited() -> cri.ContainerStatus | None:
        st = await runtime.container_status(cid)
        return st if st.state == "exited" else None

    return await wait_for(exited)  # type: ignore[return-value]


async def test_exit_codes_reasons_and_logs(runtime: RuncRuntime, cgroup_parent: str, tmp_path: Path) -> None:
    sid = await runtime.run_pod_sandbox(sandbox_config(cgroup_parent, tmp_path))
    ok = await run_to_exit(runtime, sid, container_config(
        ["sh", "-c", "echo out; echo err >&2; printf partial"], log_path="ok/0.log"))
    assert (ok.exit_code, ok.reason, ok.state) == (0, "Completed", "exited")
    assert ok.started_at > 0 and ok.finished_at >= ok.started_at
    lines = read_text(ok.log_path).splitlines()
    parsed = [LOG_LINE.match(line).groups() for line in lines]  # type: ignore[union-attr]
    assert ("stdout", "F", "out") in parsed and ("stderr", "F", "err") in parsed
    assert ("stdout", "F", "partial") in parsed  # the unterminated last line is flushed at exit

    bad = await run_to_exit(runtime, sid, container_config(["sh", "-c", "exit 3"], log_path="bad/0.log"))
    assert (bad.exit_code, bad.reason) == (3, "Error")
    with pytest.raises(RuntimeError, match="already started"):  # a container runs once
        await runtime.start_container(bad.id)
    assert (await runtime.container_status(bad.id)).exit_code == 3

    # A line longer than 16 KiB is split into P(artial) pieces and ends with F.
    long = await run_to_exit(runtime, sid, container_config(
        ["sh", "-c", "head -c 40000 /dev/zero | tr '\\0' x; echo"], log_path="long/0.log"))
    tags = [LOG_LINE.match(x).group(2) for x in read_text(long.log_path).splitlines()]  # type: ignore[union-attr]
    assert tags == ["P", "P", "F"]


async def test_container_cannot_run(runtime: RuncRuntime, cgroup_parent: str, tmp_path: Path) -> None:
    sid = await runtime.run_pod_sandbox(sandbox_config(cgroup_parent, tmp_path))
    cid = await runtime.create_container(sid, container_config(["/no/such/binary"]))
    with pytest.raises(ContainerStartError, match="no such file or directory"):
        await runtime.start_container(cid)
    st = await runtime.container_status(cid)
    assert (st.state, st.exit_code, st.reason) == ("exited", 128, "ContainerCannotRun")
    assert "/no/such/binary" in st.message


async def test_oom_killed(runtime: RuncRuntime, cgroup_parent: str, tmp_path: Path) -> None:
    sid = await runtime.run_pod_sandbox(sandbox_config(cgroup_parent, tmp_path))
    cfg = container_config(["sh", "-c", "x=$(head -c 200000000 /dev/zero | tr '\\0' a); echo done"],
                           resources=cri.LinuxResources(memory_limit=16 * 1024 * 1024))
    st = await run_to_exit(runtime, sid, cfg)
    assert (st.reason, st.exit_code) == ("OOMKilled", 137)


async def test_sandbox_files_namespaces_and_security(runtime: RuncRuntime, cgroup_parent: str,
                                                     tmp_path: Path) -> None:
    cfg = sandbox_config(cgroup_parent, tmp_path, dns=cri.DNSConfig(servers=("10.43.0.10",),
                                                                     searches=("default.svc.cluster.local",)),
                         host_aliases=[("10.1.2.3", ["foo.local"])])
    sid = await runtime.run_pod_sandbox(cfg)
    status = await runtime.pod_sandbox_status(sid)
    assert status.state == "ready" and status.netns_path
    script = ("hostname; cat /etc/resolv.conf /etc/hosts; id -u; id -g; id -G; ls /sys/class/net; "
              "readlink /proc/self/ns/ipc; grep CapBnd /proc/self/status; grep Seccomp: /proc/self/status; "
              "cat /proc/self/oom_score_adj; touch /x 2>&1 || echo readonly-rootfs; pwd")
    sec = cri.SecurityConfig(run_as_user=1000, run_as_group=2000, supplemental_groups=(3000,),
                             read_only_rootfs=True, capabilities_drop=("ALL",),
                             capabilities_add=("NET_ADMIN",))
    one = await run_to_exit(runtime, sid, container_config(
        ["sh", "-c", script], security=sec, working_dir="/tmp", log_path="one/0.log",
        resources=cri.LinuxResources(oom_score_adj=500, cpu_shares=512, cpu_quota=50000, pids_limit=64)))
    two = await run_to_exit(runtime, sid, container_config(
        ["sh", "-c", "readlink /proc/self/ns/ipc"], log_path="two/0.log"))
    out = [LOG_LINE.match(x).group(3) for x in read_text(one.log_path).splitlines()]  # type: ignore[union-attr]
    assert one.exit_code == 0, out
    assert out[0] == "mypod"
    assert "nameserver 10.43.0.10" in out and "search default.svc.cluster.local" in out
    assert "10.1.2.3\tfoo.local" in out
    assert out[out.index("10.1.2.3\tfoo.local") + 1 : out.index("10.1.2.3\tfoo.local") + 4] == [
        "1000", "2000", "2000 3000"]
    assert "lo" in out and "eth0" not in out  # no PodNetwork: loopback only
    ipc = next(x for x in out if x.startswith("ipc:"))
    two_out = read_text(two.log_path)
    assert ipc in two_out  # both containers share the sandbox's IPC namespace
    assert "CapBnd:\t0000000000001000" in out  # NET_ADMIN only
    assert "Seccomp:\t2" in out
    assert "500" in out
    assert "readonly-rootfs" in out[-2] or any("Read-only" in x for x in out)
    assert out[-1] == "/tmp"
    # Limits reached the container's cgroup under the pod's.
    pod_cg = Path("/sys/fs/cgroup/cpu") / cfg.cgroup_parent
    assert pod_cg.is_dir()


async def test_stop_with_grace_and_cleanup(runtime: RuncRuntime, cgroup_parent: str, tmp_path: Path) -> None:
    cfg = sandbox_config(cgroup_parent, tmp_path)
    sid = await runtime.run_pod_sandbox(cfg)
    # sh as pid 1 ignores SIGTERM: stop must fall back to SIGKILL after the grace period.
    cid = await runtime.create_container(sid, container_config(["sleep", "1000"]))
    await runtime.start_container(cid)
    trapper = await runtime.create_container(sid, container_config(
        ["sh", "-c", "trap 'exit 7' TERM; echo trapping; while true; do sleep 0.1; done"], name="t",
        log_path="t/0.log"))
    await runtime.start_container(trapper)
    log = Path((await runtime.container_status(trapper)).log_path)
    await wait_for(lambda: log.exists() and "trapping" in log.read_text())  # the trap is set
    running = await runtime.container_status(cid)
    assert running.state == "running" and running.pid > 0
    await runtime.stop_container(trapper, 10)
    st = await runtime.container_status(trapper)
    assert (st.state, st.exit_code) == ("exited", 7)
    await runtime.stop_container(cid, 0.2)
    st = await runtime.container_status(cid)
    assert (st.state, st.exit_code, st.reason) == ("exited", 137, "Error")

    rootfs = Path(runtime.state_dir) / "containers" / cid / "rootfs"
    await runtime.stop_pod_sandbox(sid)
    assert (await runtime.pod_sandbox_status(sid)).state == "notready"
    await runtime.remove_pod_sandbox(sid)
    assert await runtime.list_pod_sandboxes() == [] and await runtime.list_containers() == []
    mounts = mountinfo()
    assert runtime.state_dir not in mounts and str(rootfs) not in mounts
    for ctrl in ("cpu", "memory", "pids", "freezer"):
        assert not (Path("/sys/fs/cgroup") / ctrl / cfg.cgroup_parent).exists()
    procs = cmdlines()
    assert not any(cid.encode() in c or sid.encode() in c for c in procs)
    await runtime.remove_pod_sandbox(sid)  # idempotent


async def test_cgroup_limits_privileged_and_log_reopen(runtime: RuncRuntime, cgroup_parent: str,
                                                       tmp_path: Path) -> None:
    cfg = sandbox_config(cgroup_parent, tmp_path)
    sid = await runtime.run_pod_sandbox(cfg)
    res = cri.LinuxResources(cpu_shares=512, cpu_quota=50000, cpu_period=100000,
                             memory_limit=64 * 1024 * 1024, pids_limit=64)
    cid = await runtime.create_container(sid, container_config(
        ["sh", "-c", "while true; do echo tick; sleep 0.05; done"], resources=res))
    await runtime.start_container(cid)
    cg = f"/sys/fs/cgroup/%s/{cfg.cgroup_parent}/{cid}/%s"
    assert read_text(cg % ("cpu", "cpu.shares")).strip() == "512"
    assert read_text(cg % ("cpu", "cpu.cfs_quota_us")).strip() == "50000"
    assert read_text(cg % ("memory", "memory.limit_in_bytes")).strip() == str(64 * 1024 * 1024)
    assert read_text(cg % ("pids", "pids.max")).strip() == "64"
    st = await runtime.container_status(cid)
    assert str(st.pid) in read_text(cg % ("pids", "cgroup.procs")).split()

    # Rotation: the kubelet renames the log, asks for a reopen, and new lines go to a new file.
    log = Path(st.log_path)
    await wait_for(lambda: log.exists() and "tick" in log.read_text())
    os.rename(log, f"{log}.1")
    await runtime.reopen_container_log(cid)
    await wait_for(lambda: log.exists() and "stdout F tick" in log.read_text())

    # Privileged: every capability this node may grant, the host's devices, no seccomp.
    priv = await runtime.create_container(sid, container_config(
        ["sh", "-c", "grep -E 'CapEff|Seccomp:' /proc/self/status; ls /dev/null /dev/loop-control 2>&1"],
        security=cri.SecurityConfig(privileged=True), name="p", log_path="p/0.log"))
    await runtime.start_container(priv)

    async def exited() -> cri.ContainerStatus | None:
        s = await runtime.container_status(priv)
        return s if s.state == "exited" else None

    pst = await wait_for(exited)
    assert isinstance(pst, cri.ContainerStatus)
    out = read_text(pst.log_path)
    own_bounding = next(x for x in read_text("/proc/self/status").splitlines() if x.startswith("CapBnd:"))
    assert "Seccomp:\t0" in out and "CapEff:\t" + own_bounding.split()[1] in out
    if "loop-control" in os.listdir("/dev"):  # a host device node, not among runc's defaults
        assert "No such file" not in out


async def test_host_network_sandbox(runtime: RuncRuntime, cgroup_parent: str, tmp_path: Path) -> None:
    sid = await runtime.run_pod_sandbox(sandbox_config(cgroup_parent, tmp_path, host_network=True))
    status = await runtime.pod_sandbox_status(sid)
    assert status.state == "ready" and status.netns_path == ""
    st = await run_to_exit(runtime, sid, container_config(
        ["sh", "-c", "readlink /proc/self/ns/net; readlink /proc/self/ns/uts; hostname"]))
    out = [LOG_LINE.match(x).group(3) for x in read_text(st.log_path).splitlines()]  # type: ignore[union-attr]
    assert out == [os.readlink("/proc/self/ns/net"), os.readlink("/proc/self/ns/uts"), socket.gethostname()]
    assert read_text(status.hostname_path).strip() == socket.gethostname()


async def test_state_on_tmpfs_writable_layer_on_disk(runtime: RuncRuntime, cgroup_parent: str,
                                                     tmp_path: Path) -> None:
    """A sandbox's and a container's files are on a tmpfs of their own; what the container writes to its
    root filesystem is on disk (rw/<id>); removal leaves neither a mount nor a directory."""
    sid = await runtime.run_pod_sandbox(sandbox_config(cgroup_parent, tmp_path))
    cid = await runtime.create_container(sid, container_config(["sh", "-c", "echo hi > /written; sleep 60"]))
    await runtime.start_container(cid)
    sdir = Path(runtime.sandbox_root) / sid
    cdir = Path(runtime.container_root) / cid
    rw = Path(runtime.state_dir) / "rw" / cid
    mounts = {line.split()[4]: line.split(" - ")[1].split()[0] for line in mountinfo().splitlines()}
    assert mounts[str(sdir)] == "tmpfs" and mounts[str(cdir)] == "tmpfs"
    assert mounts[str(cdir / "rootfs")] == "overlay"
    assert (sdir / "sandbox.json").is_file() and (cdir / "config.json").is_file()
    await wait_for(lambda: (rw / "upper" / "written").is_file())
    assert read_text(rw / "upper" / "written") == "hi\n"

    await runtime.stop_pod_sandbox(sid)
    await runtime.remove_pod_sandbox(sid)
    assert str(tmp_path) not in mountinfo()
    assert not sdir.exists() and not cdir.exists() and not rw.exists()


async def test_directories_left_by_a_reboot_are_swept(runtime: RuncRuntime, cgroup_parent: str,
                                                      tmp_path: Path) -> None:
    """After a reboot the sandboxes' and containers' tmpfs are gone: their empty directories and the
    containers' writable layers go when the sandboxes are listed; fresh or recorded ones stay."""
    live = await runtime.run_pod_sandbox(sandbox_config(cgroup_parent, tmp_path))
    old = time.time() - 3600
    left = {Path(runtime.sandbox_root) / "gone-sandbox", Path(runtime.container_root) / "gone-container",
            Path(runtime.rw_root) / "gone-container" / "upper"}
    for d in left:
        d.mkdir(parents=True)
    for d in [*left, Path(runtime.rw_root) / "gone-container"]:
        os.utime(d, (old, old))
    fresh = Path(runtime.container_root) / "being-created"
    fresh.mkdir()
    assert [s.id for s in await runtime.list_pod_sandboxes()] == [live]
    assert not any(d.exists() for d in left) and not (Path(runtime.rw_root) / "gone-container").exists()
    assert fresh.is_dir() and (Path(runtime.sandbox_root) / live / "sandbox.json").is_file()
    fresh.rmdir()


async def test_sandbox_records_follow_their_file(runtime: RuncRuntime, cgroup_parent: str,
                                                 tmp_path: Path) -> None:
    """A runtime keeps sandbox records parsed while their file stays the same: what another runtime on
    the same state directory (a restarted kubelet) writes or removes is seen at once."""
    sid = await runtime.run_pod_sandbox(sandbox_config(cgroup_parent, tmp_path, host_network=True))
    assert (await runtime.pod_sandbox_status(sid)).state == "ready"
    assert [s.id for s in await runtime.list_pod_sandboxes()] == [sid]
    other = RuncRuntime(runtime.state_dir, runtime.images, None)
    await other.stop_pod_sandbox(sid)
    assert (await runtime.pod_sandbox_status(sid)).state == "notready"
    assert [s.state for s in await runtime.list_pod_sandboxes()] == ["notready"]
    await other.remove_pod_sandbox(sid)
    with pytest.raises(KeyError):
        await runtime.pod_sandbox_status(sid)
    assert await runtime.list_pod_sandboxes() == []
