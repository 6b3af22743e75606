"""Supervised children: started with their arguments, restarted when they die, stopped on cancel, and
gone when the server is SIGKILLed."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from pathlib import Path

from pyk8s.server.supervisor import Supervised
from tests.support.poll import eventually

TARGET = "tests.server._supervised_target:run"


def pids(record: Path) -> list[int]:
    return [int(line.split()[0]) for line in record.read_text().splitlines()] if record.exists() else []


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with contextlib.suppress(OSError):  # a zombie is not alive
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    return False


async def test_a_child_is_restarted_and_stopped(tmp_path: Path) -> None:
    record = tmp_path / "record"
    child = Supervised("test", TARGET, (record, b"hello"), restart_delay=0.1)
    task = asyncio.create_task(child.run())
    try:
        await eventually(lambda: len(pids(record)) == 1, within=30)
        first = pids(record)[0]
        assert record.read_text().split() == [str(first), "hello"]
        os.kill(first, signal.SIGKILL)
        await eventually(lambda: len(pids(record)) == 2, within=30)
        second = pids(record)[1]
        assert second != first and alive(second)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    assert not alive(second)


async def test_a_child_runs_at_its_niceness(tmp_path: Path) -> None:
    records = {n: tmp_path / f"record-{n}" for n in (0, 5)}
    children = [Supervised("test", TARGET, (r, b"x"), nice=n) for n, r in records.items()]
    tasks = [asyncio.create_task(child.run()) for child in children]
    try:
        await eventually(lambda: all(pids(r) for r in records.values()), within=30)
        ours = os.nice(0)
        niceness = {n: os.getpriority(os.PRIO_PROCESS, pids(r)[0]) for n, r in records.items()}
        assert niceness == {0: ours, 5: min(ours + 5, 19)}
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


PARENT = """
import asyncio, sys
from pathlib import Path
from pyk8s.server.supervisor import Supervised
asyncio.run(Supervised("test", sys.argv[1], (Path(sys.argv[2]), b"x")).run())
"""


async def test_children_die_with_a_killed_server(tmp_path: Path) -> None:
    record = tmp_path / "record"
    parent = await asyncio.create_subprocess_exec(sys.executable, "-c", PARENT, TARGET, str(record))
    try:
        await eventually(lambda: len(pids(record)) == 1, within=30)
    finally:
        parent.kill()
        await parent.wait()
    await eventually(lambda: not alive(pids(record)[0]), within=10)
