"""The control-plane components `pyk8s server` runs beside its API server: the controller manager, the
scheduler and the cluster DNS, each an API client over the loopback socket with an identity of its own
(run in a child process by `pyk8s.server.supervisor`).

The three share one informer factory: one list+watch per resource for the process. With a factory each,
the server sent every pod event to this process twice (the scheduler's watch and the manager's), and
the process indexed it twice. The shared watches are the controller manager's requests; each component
waits only for its own informers' first list."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from pathlib import Path

from pyk8s.apiserver.auth.loopback import GROUP_HEADER, USER_HEADER
from pyk8s.client.client import Client
from pyk8s.client.events import EventRecorder
from pyk8s.client.informer import SharedInformerFactory
from pyk8s.client.transport import HTTPTransport
from pyk8s.controllers.manager import ControllerContext, ControllerManager, ControllerOptions
from pyk8s.dns import ClusterDNS
from pyk8s.scheduler.scheduler import Scheduler
from pyk8s.util.tasks import cancel_and_wait

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


async def run_components(socket: Path, options: ControllerOptions, leader_election: bool = True,
                         dns_address: str = "", dns_port: int = 53) -> None:
    """Run the controller manager, the scheduler and (with `dns_address`) the cluster DNS until cancelled."""
    cm_client = loopback_client(socket, "system:kube-controller-manager")
    sched_client = loopback_client(socket, "system:kube-scheduler")
    informers = SharedInformerFactory(cm_client)
    manager = ControllerManager(ControllerContext(cm_client, informers, options),
                                leader_election=leader_election)
    recorder = EventRecorder(sched_client, "default-scheduler")
    scheduler = Scheduler(sched_client, informers, recorder, leader_election=leader_election)
    tasks = [asyncio.create_task(manager.run(), name="controller-manager"),
             asyncio.create_task(scheduler.run(), name="scheduler")]
    dns_client = loopback_client(socket, "system:kube-dns")
    try:
        if dns_address:
            dns = ClusterDNS(dns_client, informers=informers)
            try:
                await dns.serve(dns_address, dns_port)
                tasks.append(asyncio.create_task(dns.run(), name="dns"))
            except OSError as e:  # the control plane works without it; pods then resolve nothing in-cluster
                log.warning("cluster DNS on %s:%d: %s", dns_address, dns_port, e)
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        for t in done:
            if not t.cancelled() and t.exception() is not None:
                log.error("%s stopped", t.get_name(), exc_info=t.exception())
    finally:
        await cancel_and_wait(tasks)
        await informers.stop()
        await recorder.close()
        await cm_client.close()
        await sched_client.close()
        await dns_client.close()
