"""The control-plane components `pyk8s server` runs beside its API server: the controller manager and the
scheduler, each an API client over the loopback socket with an identity of its own.

They run in a child process: Python runs one thread at a time, so in the API server's process they would
share its core; in their own they get the machine's other one. The parent restarts the child if it dies.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from pyk8s.apiserver.auth.loopback import GROUP_HEADER, USER_HEADER
from pyk8s.client.client import Client
from pyk8s.client.events import EventRecorder
from pyk8s.client.informer import SharedInformerFactory
from pyk8s.client.transport import HTTPTransport
from pyk8s.controllers.manager import ControllerContext, ControllerManager, ControllerOptions
from pyk8s.scheduler.scheduler import Scheduler

log = logging.getLogger(__name__)

# The components run inside the server's trust boundary (they could read its CA key), so they act as
# system:masters; their user names make their requests recognisable in audit logs and managedFields.
MASTERS = ("system:masters",)


def loopback_client(socket: Path, user: str, groups: Sequence[str] = MASTERS) -> Client:
    headers = {USER_HEADER: user}
    # aiohttp sends one header per key: several groups travel comma-joined and are split by the server.
    headers[GROUP_HEADER] = ",".join(groups)
    return Client(HTTPTransport("http://localhost", unix_socket=str(socket), headers=headers,
                                user_agent=f"pyk8s/{user}"))


async def run_components(socket: Path, options: ControllerOptions, *, leader_election: bool = True) -> None:
    """Run the controller manager and the scheduler until cancelled."""
    cm_client = loopback_client(socket, "system:kube-controller-manager")
    sched_client = loopback_client(socket, "system:kube-scheduler")
    manager = ControllerManager(ControllerContext(cm_client, SharedInformerFactory(cm_client), options),
                                leader_election=leader_election)
    recorder = EventRecorder(sched_client, "default-scheduler")
    scheduler = Scheduler(sched_client, SharedInformerFactory(sched_client), recorder,
                          leader_election=leader_election)
    tasks = [asyncio.create_task(manager.run(), name="controller-manager"),
             asyncio.create_task(scheduler.run(), name="scheduler")]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        for t in done:
            if not t.cancelled() and t.exception() is not None:
                log.error("%s stopped", t.get_name(), exc_info=t.exception())
    finally:
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(BaseException):
                await t
        await recorder.close()
        await cm_client.close()
        await sched_client.close()


def _child(socket: str, options: ControllerOptions) -> None:
    """The child process: components until SIGTERM."""
    from pyk8s.server.loop import run_loop

    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    async def main() -> None:
        task = asyncio.create_task(run_components(Path(socket), options))
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
        with contextlib.suppress(asyncio.CancelledError):
            await task

    run_loop(main())


class ComponentsProcess:
    def __init__(self, socket: Path, options: ControllerOptions, restart_delay: float = 1.0) -> None:
        self.socket = socket
        self.options = options
        self.restart_delay = restart_delay

    async def run(self) -> None:
        """Keep the child running until cancelled; then stop it (SIGTERM, SIGKILL after 10 s)."""
        loop = asyncio.get_running_loop()
        spawn = multiprocessing.get_context("spawn")
        while True:
            proc = spawn.Process(target=_child, args=(str(self.socket), self.options),
                                 name="pyk8s-components", daemon=True)
            proc.start()
            try:
                await loop.run_in_executor(None, proc.join)
            except asyncio.CancelledError:
                proc.terminate()
                await asyncio.shield(loop.run_in_executor(None, proc.join, 10))
                if proc.is_alive():
                    proc.kill()
                raise
            log.error("components process exited with %s; restarting in %.0fs", proc.exitcode,
                      self.restart_delay)
            await asyncio.sleep(self.restart_delay)
