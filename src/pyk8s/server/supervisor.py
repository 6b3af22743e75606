"""Child processes of `pyk8s server`, kept running.

Python runs one thread at a time: the controller manager and scheduler, and the node's kubelet, each run in
a process of their own so the API server keeps its core. The parent restarts a child that dies and stops
it (SIGTERM, then SIGKILL after 10 s) when the server stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import signal
import sys
from collections.abc import Callable, Coroutine
from typing import Any

log = logging.getLogger(__name__)

Target = Callable[..., Coroutine[Any, Any, None]]


def _child(target: Target, args: tuple[Any, ...]) -> None:
    from pyk8s.server.loop import run_loop

    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    async def main() -> None:
        task = asyncio.create_task(target(*args))
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
        with contextlib.suppress(asyncio.CancelledError):
            await task

    run_loop(main())


class Supervised:
    """`target(*args)` (a module-level coroutine function, so the spawned child can import it) in a child
    process, restarted after `restart_delay` seconds whenever it exits."""

    def __init__(self, name: str, target: Target, args: tuple[Any, ...], restart_delay: float = 1.0) -> None:
        self.name = name
        self.target = target
        self.args = args
        self.restart_delay = restart_delay

    async def run(self) -> None:
        """Keep the child running until cancelled; then stop it."""
        loop = asyncio.get_running_loop()
        spawn = multiprocessing.get_context("spawn")
        while True:
            proc = spawn.Process(target=_child, args=(self.target, self.args), name=f"pyk8s-{self.name}",
                                 daemon=True)
            proc.start()
            try:
                await loop.run_in_executor(None, proc.join)
            except asyncio.CancelledError:
                proc.terminate()
                await asyncio.shield(loop.run_in_executor(None, proc.join, 10))
                if proc.is_alive():
                    proc.kill()
                raise
            log.error("%s process exited with %s; restarting in %.0fs", self.name, proc.exitcode,
                      self.restart_delay)
            await asyncio.sleep(self.restart_delay)
