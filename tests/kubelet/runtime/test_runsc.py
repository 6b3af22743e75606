"""The same bundles under gVisor (handler runsc)."""

from __future__ import annotations

import shutil
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

pytestmark = [needs_root, pytest.mark.skipif(shutil.which("runsc") is None, reason="needs runsc")]


async def test_runsc_runs_a_container(runtime: RuncRuntime, cgroup_parent: str, tmp_path: Path) -> None:
    assert "runsc" in runtime.handlers()
    cfg = sandbox_config(cgroup_parent, tmp_path, runtime_handler="runsc")
    sid = await runtime.run_pod_sandbox(cfg)
    assert (await runtime.pod_sandbox_status(sid)).runtime_handler == "runsc"
    done = await runtime.create_container(sid, container_config(
        ["sh", "-c", "hostname; cat /etc/resolv.conf >/dev/null; exit 3"], name="done", log_path="d/0.log"))
    await runtime.start_container(done)

    async def exited() -> cri.ContainerStatus | None:
        st = await runtime.container_status(done)
        return st if st.state == "exited" else None

    st = await wait_for(exited, 30)
    assert isinstance(st, cri.ContainerStatus)
    assert (st.exit_code, st.reason) == (3, "Error")
    assert "stdout F mypod" in read_text(st.log_path)

    # A binary that is not there: ContainerCannotRun, and the half-made gVisor sandbox is gone.
    bad = await runtime.create_container(sid, container_config(["/no/such/binary"], name="bad",
                                                               log_path="b/0.log"))
    with pytest.raises(ContainerStartError):
        await runtime.start_container(bad)
    st = await runtime.container_status(bad)
    assert (st.state, st.reason, st.exit_code) == ("exited", "ContainerCannotRun", 128)
    await wait_for(lambda: not [c for c in cmdlines() if bad.encode() in c])  # the monitor exits too

    live = await runtime.create_container(sid, container_config(
        ["httpd", "-f", "-p", "8081", "-h", "/www"], name="live", log_path="l/0.log"))
    await runtime.start_container(live)
    assert (await runtime.container_status(live)).state == "running"
    # One gVisor kernel per pod: the pod's containers share it (and its boot id), the host does not.
    other = await runtime.create_container(sid, container_config(["sleep", "1000"], name="other",
                                                                 log_path="o/0.log"))
    await runtime.start_container(other)
    boot_ids = {(await runtime.exec_sync(c, ["cat", "/proc/sys/kernel/random/boot_id"], 30)).stdout
                for c in (live, other)}
    assert len(boot_ids) == 1 and read_text("/proc/sys/kernel/random/boot_id").encode() not in boot_ids
    # dmesg inside shows gVisor's kernel, not the host's.
    res = await runtime.exec_sync(live, ["dmesg"], 30)
    assert res.exit_code == 0 and b"Starting gVisor" in res.stdout
    stream = await runtime.exec(live, ["sh", "-c", "echo via-exec; exit 4"], stdin=False, tty=True)
    out = b"".join([c async for c in stream.stdout()])
    assert b"via-exec" in out and await stream.wait() == 4
    # The pod's network namespace is the container's: port-forward reaches httpd.

    async def get() -> bytes | None:
        try:
            send, received = await runtime.port_forward(sid, 8081)
            await send(b"GET /index.html HTTP/1.0\r\n\r\n")
            return b"".join([c async for c in received])
        except OSError:  # refused, or reset by gVisor's netstack, while httpd is not listening yet
            return None

    body = await wait_for(get, 30)
    assert isinstance(body, bytes) and b"hello from the pod" in body

    await runtime.stop_container(live, 1)
    assert (await runtime.container_status(live)).state == "exited"
    await runtime.remove_pod_sandbox(sid)
    assert await runtime.list_containers() == []
    procs = cmdlines()
    assert not any(c_id.encode() in c for c in procs for c_id in (live, done, other, sid))
    assert runtime.state_dir not in mountinfo()
    assert not list((Path(runtime.state_dir) / "runsc-root").glob(f"*{live}*"))
    assert not any((Path("/sys/fs/cgroup") / ctrl / cfg.cgroup_parent).exists() for ctrl in ("cpu", "memory"))
