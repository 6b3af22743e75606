"""A real API server (MemoryStore, with TokenRequest signed by a real service-account key), a Client, and a
VolumeManager rooted in a temporary directory that every test leaves without mounts."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from pyk8s.apiserver.auth.stack import build_auth_stack
from pyk8s.apiserver.auth.tokens import ServiceAccountTokens
from pyk8s.client.client import Client
from pyk8s.client.transport import HTTPTransport
from pyk8s.kubelet.volumes import VolumeManager, mounts
from pyk8s.server.pki import ensure_pki
from tests.kubelet.runtime.conftest import busybox_layer, cgroup_parent, runtime  # noqa: F401 (fixtures)
from tests.support.apiserver import PODS, Server, info, start_server

SERVICEACCOUNTS = info("", "serviceaccounts")
SECRETS = info("", "secrets")
CONFIGMAPS = info("", "configmaps")
PVS = info("", "persistentvolumes")
PVCS = info("", "persistentvolumeclaims")


@dataclass
class Env:
    server: Server
    client: Client
    tokens: ServiceAccountTokens
    volumes: VolumeManager
    root: Path
    now: list[float]  # the VolumeManager's clock; tests move it forward
    audit: list[dict[str, Any]]  # every request the API server answered

    def token_requests(self) -> int:
        return sum(1 for e in self.audit if e.get("verb") == "create"
                   and (e.get("objectRef") or {}).get("subresource") == "token")


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[Env]:
    pki = ensure_pki(tmp_path / "data")
    holder: dict[str, Server] = {}
    stack = build_auth_stack(
        sa_private_key=pki.sa_key.read_bytes(),
        sa_public_key=pki.sa_pub.read_bytes(),
        get_object=lambda i, ns, name: holder["s"].api.get_object(i, ns, name),
        lister=lambda i: holder["s"].api.list_objects(i),
    )
    audit: list[dict[str, Any]] = []
    server = await start_server(virtual_creates=stack.virtual_creates, audit=audit.append)
    holder["s"] = server
    await server.api.create_object(SERVICEACCOUNTS, {"metadata": {"name": "default", "namespace": "default"}})
    client = Client(HTTPTransport(server.url))
    root = tmp_path / "kubelet"
    now = [1_000_000.0]
    manager = VolumeManager(client, str(root), clock=lambda: now[0])
    try:
        yield Env(server, client, stack.tokens, manager, root, now, audit)
    finally:
        for uid in manager.pod_uids_on_disk():
            await manager.teardown(uid)
        leaked = mounts.mounts_under(str(tmp_path))
        for point in leaked:
            mounts.unmount(point)
        await client.close()
        await server.stop()
        await server.store.close()
        assert not leaked, f"mounts left behind: {leaked}"


async def make_pod(env: Env, name: str, volumes: list[dict[str, Any]],
                   containers: list[dict[str, Any]] | None = None, **spec: Any) -> dict[str, Any]:
    """A pod created through the API (TokenRequest binds tokens to a pod that exists)."""
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "default", "labels": {"app": name}},
        "spec": {
            "nodeName": "node-1",
            "containers": containers or [{"name": "c", "image": "busybox"}],
            "volumes": volumes,
            **spec,
        },
    }
    return await env.client.create(PODS, pod)


# Plain file reads for the async tests (local, instant; kept out of the coroutines for the linter).
def read(*parts: str | Path) -> str:
    return Path(*parts).read_text()


def write(path: str | Path, text: str) -> None:
    Path(path).write_text(text)


def exists(path: str | Path) -> bool:
    return os.path.lexists(path)


def is_dir(path: str | Path) -> bool:
    return os.path.isdir(path)


def visible(directory: str | Path) -> list[str]:
    """The names a container sees in an API volume (not the `..` internals)."""
    return sorted(n for n in os.listdir(directory) if not n.startswith(".."))
