"""The components process: the controller manager and the scheduler over one set of informers."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import aiohttp
from aiohttp import web

from pyk8s.client.client import Client
from pyk8s.client.transport import HTTPTransport
from pyk8s.controllers.manager import ControllerOptions
from pyk8s.controllers.replicaset import REPLICASETS
from pyk8s.server.components import run_components
from tests.scheduler.conftest import NODES, PODS, node
from tests.support.apiserver import Server, api_server
from tests.support.poll import until


async def _watchers(srv: Server, resource: str) -> float:
    async with aiohttp.ClientSession() as session, session.get(srv.url + "/metrics") as resp:
        text = await resp.text()
    prefix = f'apiserver_registered_watchers{{group="",resource="{resource}"}}'
    return next((float(line.split()[-1]) for line in text.splitlines() if line.startswith(prefix)), 0.0)


async def test_the_scheduler_and_the_controllers_share_one_watch_per_resource(tmp_path: Path) -> None:
    async with api_server() as srv:
        socket = tmp_path / "api.sock"
        assert srv.test_server.runner is not None
        await web.UnixSite(srv.test_server.runner, str(socket)).start()
        task = asyncio.create_task(run_components(socket, ControllerOptions(), leader_election=False))
        client = Client(HTTPTransport(srv.url))
        try:
            await client.create(NODES, node("n1"))
            rs = {"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": "web"},
                  "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
                           "template": {"metadata": {"labels": {"app": "web"}},
                                        "spec": {"containers": [{"name": "c", "image": "busybox"}]}}}}
            await client.create(REPLICASETS, rs, "default")

            async def placed() -> bool:  # the controller made the pods, the scheduler bound them
                items = (await client.list(PODS, "default"))["items"]
                return len(items) == 2 and all(p["spec"].get("nodeName") == "n1" for p in items)

            await until(placed, what="the ReplicaSet's pods created and bound")
            # Both watch pods and nodes: one watch each for the process.
            for resource in ("pods", "nodes"):
                assert await _watchers(srv, resource) == 1.0, resource
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await client.close()
