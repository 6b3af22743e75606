"""Child processes of `pyk8s server`, kept running.

Python runs one thread at a time: the controller manager and scheduler, and the node's kubelet, each run in
a process of their own so the API server keeps its core. The parent restarts a child that dies and stops
it (SIGTERM, then SIGKILL after 10 s) when the server stops; a child whose parent dies gets SIGTERM.
A child may run at a lower CPU priority (`nice`): see `server.main` for which and why.

A child is a fresh interpreter (`python -m pyk8s.server.supervisor`) that imports only its target, named
"module:function", and reads the arguments pickled on its stdin. multiprocessing's spawn would also start
a resource-tracker interpreter and re-import the parent's main module in every child (~7 MB each, idle),
and the parent would import every child's code to hand over a function object.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import importlib
import logging
import os
import pickle
import signal
import sys
from typing import Any

log = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1


def _die_with_parent(parent: int) -> None:
    """SIGTERM when the server dies, even by SIGKILL: an orphaned kubelet would race the next server's."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent:  # it died before the request took effect
        os.kill(os.getpid(), signal.SIGTERM)


def _child() -> None:
    target_name, args, parent, nice = pickle.load(sys.stdin.buffer)
    if nice:
        os.nice(nice)
    from pyk8s.server.loop import run_loop

    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    module, _, function = target_name.partition(":")
    target = getattr(importlib.import_module(module), function)

    async def main() -> None:
        task = asyncio.create_task(target(*args))
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
        _die_with_parent(parent)
        with contextlib.suppress(asyncio.CancelledError):
            await task

    run_loop(main())


class Supervised:
    """`target(*args)` in a child process, restarted after `restart_delay` seconds whenever it exits.
    `target` names a module-level coroutine function as "module:function"; `args` must pickle. The child
    runs at niceness `nice` (0: the server's own priority)."""

    def __init__(self, name: str, target: str, args: tuple[Any, ...], restart_delay: float = 1.0,
                 nice: int = 0) -> None:
        self.name = name
        self.target = target
        self.args = args
        self.restart_delay = restart_delay
        self.nice = nice

    async def run(self) -> None:
        """Keep the child running until cancelled; then stop it."""
        payload = pickle.dumps((self.target, self.args, os.getpid(), self.nice))
        while True:
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "pyk8s.server.supervisor", self.name, stdin=asyncio.subprocess.PIPE)
            try:
                assert proc.stdin is not None
                proc.stdin.write(payload)
                with contextlib.suppress(ConnectionError):
                    await proc.stdin.drain()
                proc.stdin.close()
                code = await proc.wait()
            except asyncio.CancelledError:
                with contextlib.suppress(ProcessLookupError):
                    proc.terminate()
                try:
                    await asyncio.shield(asyncio.wait_for(proc.wait(), 10))
                except TimeoutError:
                    with contextlib.suppress(ProcessLookupError):
                        proc.kill()
                    await asyncio.shield(proc.wait())
                raise
            log.error("%s process exited with %s; restarting in %.0fs", self.name, code, self.restart_delay)
            await asyncio.sleep(self.restart_delay)


if __name__ == "__main__":  # the child; argv[1] is the child's name, for ps
    _child()
