"""exec, exec_sync, attach and port-forward against real runc containers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

from pyk8s.kubelet.runtime import RuncRuntime
from tests.kubelet.runtime.conftest import (
    container_config,
    needs_root,
    read_text,
    sandbox_config,
    wait_for,
)

pytestmark = needs_root


async def collect(it: AsyncIterator[bytes]) -> bytes:
    return b"".join([c async for c in it])


async def read_until(it: AsyncIterator[bytes], needle: bytes, timeout: float = 10) -> bytes:  # noqa: ASYNC109
    buf = b""

    async def go() -> bytes:
        nonlocal buf
        async for chunk in it:
            buf += chunk
            if needle in buf:
                return buf
        raise AssertionError(f"stream ended before {needle!r}: {buf!r}")

    return await asyncio.wait_for(go(), timeout)


async def running(runtime: RuncRuntime, sid: str, args: list[str], **kw: object) -> str:
    cid = await runtime.create_container(sid, container_config(args, **kw))
    await runtime.start_container(cid)
    return cid


async def test_exec_sync_and_exec(runtime: RuncRuntime, cgroup_parent: str, tmp_path: Path) -> None:
    sid = await runtime.run_pod_sandbox(sandbox_config(cgroup_parent, tmp_path))
    cid = await running(runtime, sid, ["sleep", "1000"], env=[("GREETING", "hello")])
    res = await runtime.exec_sync(cid, ["sh", "-c", "echo $GREETING; echo oops >&2; exit 4"], 10)
    assert (res.exit_code, res.stdout, res.stderr) == (4, b"hello\n", b"oops\n")

    # Timeout: the command is killed inside the container.
    try:
        await runtime.exec_sync(cid, ["sleep", "1000"], 0.3)
        raise AssertionError("exec_sync did not time out")
    except TimeoutError:
        pass

    async def only_the_main_sleep() -> bool:
        res = await runtime.exec_sync(cid, ["sh", "-c", "ps -o args | grep -cx 'sleep 1000'"], 10)
        return res.stdout.strip() == b"1"

    await wait_for(only_the_main_sleep)

    # exec with stdin: the command sees our bytes and its exit code comes back.
    stream = await runtime.exec(cid, ["sh", "-c", "tr a-z A-Z; exit 5"], stdin=True, tty=False)
    await stream.write_stdin(b"shout\n")
    await stream.close_stdin()
    out = await collect(stream.stdout())
    assert out == b"SHOUT\n" and await stream.wait() == 5

    # exec with a tty: a terminal inside, its size follows resize.
    stream = await runtime.exec(cid, ["sh"], stdin=True, tty=True)
    await stream.resize(123, 45)
    out_stream = stream.stdout()
    await read_until(out_stream, b"# ")  # the prompt: the shell reads from here on
    await stream.write_stdin(b"tty; stty size; exit 9\n")
    out = await read_until(out_stream, b"45 123")
    assert b"/dev/pts/" in out
    assert await stream.wait() == 9


async def test_attach(runtime: RuncRuntime, cgroup_parent: str, tmp_path: Path) -> None:
    sid = await runtime.run_pod_sandbox(sandbox_config(cgroup_parent, tmp_path))
    cid = await running(runtime, sid, ["sh", "-c", "echo ready; while read l; do echo got-$l; done; exit 3"],
                        stdin=True, log_path="a/0.log")
    stream = await runtime.attach(cid, stdin=True, tty=False)
    await stream.write_stdin(b"one\n")
    out = stream.stdout()
    await read_until(out, b"got-one")
    await stream.close_stdin()
    assert await asyncio.wait_for(stream.wait(), 10) == 3
    st = await runtime.container_status(cid)
    assert st.exit_code == 3
    assert "stdout F got-one" in read_text(st.log_path)

    # With a tty: the container's terminal echoes and its output arrives.
    tid = await running(runtime, sid, ["sh"], stdin=True, tty=True, name="t", log_path="t/0.log")
    stream = await runtime.attach(tid, stdin=True, tty=True)
    await stream.resize(100, 30)
    await stream.write_stdin(b"stty size; exit 6\n")
    await read_until(stream.stdout(), b"30 100")
    assert await asyncio.wait_for(stream.wait(), 10) == 6


async def test_port_forward_to_httpd(runtime: RuncRuntime, cgroup_parent: str, tmp_path: Path) -> None:
    sid = await runtime.run_pod_sandbox(sandbox_config(cgroup_parent, tmp_path))
    cid = await running(runtime, sid, ["httpd", "-f", "-p", "8080", "-h", "/www"])

    async def get() -> bytes | None:
        try:
            send, received = await runtime.port_forward(sid, 8080)
            await send(b"GET /index.html HTTP/1.0\r\nHost: x\r\n\r\n")
            return await collect(received)
        except OSError:  # refused or reset: httpd not listening yet
            return None

    body = await wait_for(get)
    assert isinstance(body, bytes) and b"200 OK" in body and b"hello from the pod" in body
    # The port is inside the pod's namespace only.
    try:
        _, w = await asyncio.open_connection("127.0.0.1", 8080)
        w.close()
        reachable_on_host = True
    except OSError:
        reachable_on_host = False
    assert not reachable_on_host
    await runtime.stop_container(cid, 0)
