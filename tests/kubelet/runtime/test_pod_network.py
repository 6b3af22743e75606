"""Sandboxes wired by the real PodNetwork (CNI bridge + host-local), inside a node network namespace of
the network tests' making: pods get IPs and talk to each other by pod IP; nothing is left behind."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from pyk8s.kubelet.network import PodNetwork
from pyk8s.kubelet.runtime import RuncRuntime
from tests.kubelet.network.conftest import Node, net, node  # noqa: F401 - fixtures
from tests.kubelet.runtime.conftest import (
    FakeImages,
    container_config,
    mountinfo,
    needs_root,
    read_text,
    sandbox_config,
    wait_for,
)

pytestmark = needs_root


@pytest.fixture
async def net_runtime(tmp_path: Path, busybox_layer: Path, net: PodNetwork) -> AsyncIterator[RuncRuntime]:  # noqa: F811
    rt = RuncRuntime(str(tmp_path / "runtime"), FakeImages(busybox_layer), net)
    try:
        yield rt
    finally:
        for s in await rt.list_pod_sandboxes():
            await rt.remove_pod_sandbox(s.id)
        await rt.close()


async def test_pods_talk_by_pod_ip(net_runtime: RuncRuntime, node: Node, cgroup_parent: str,  # noqa: F811
                                   tmp_path: Path) -> None:
    rt = net_runtime
    server_sid = await rt.run_pod_sandbox(sandbox_config(cgroup_parent, tmp_path))
    client_sid = await rt.run_pod_sandbox(sandbox_config(cgroup_parent, tmp_path))
    server, client = await rt.pod_sandbox_status(server_sid), await rt.pod_sandbox_status(client_sid)
    prefix = node.cidr.rsplit(".", 1)[0] + "."
    assert server.ip.startswith(prefix) and client.ip.startswith(prefix) and server.ip != client.ip
    httpd = await rt.create_container(server_sid, container_config(["httpd", "-f", "-p", "80", "-h", "/www"]))
    await rt.start_container(httpd)
    shell = await rt.create_container(client_sid, container_config(["sleep", "1000"], name="client",
                                                                    log_path="client/0.log"))
    await rt.start_container(shell)

    async def fetched() -> bytes | None:
        res = await rt.exec_sync(shell, ["wget", "-q", "-O", "-", f"http://{server.ip}/index.html"], 10)
        return res.stdout if res.exit_code == 0 else None

    assert await wait_for(fetched) == b"hello from the pod\n"
    ip_out = await rt.exec_sync(shell, ["ip", "-4", "addr", "show", "eth0"], 10)
    assert client.ip.encode() in ip_out.stdout
    assert (await rt.exec_sync(shell, ["hostname"], 10)).stdout == b"mypod\n"
    hosts = await rt.exec_sync(shell, ["cat", "/etc/hosts"], 10)
    assert f"{client.ip}\tmypod\n".encode() in hosts.stdout  # the pod's own entry, as the kubelet writes it

    # Restart safety: a new runtime finds both sandboxes with their IPs.
    again = RuncRuntime(rt.state_dir, rt.images, rt.network)
    assert {(s.id, s.ip) for s in await again.list_pod_sandboxes()} == {
        (server_sid, server.ip), (client_sid, client.ip)}

    netns = server.netns_path
    await rt.remove_pod_sandbox(server_sid)
    await rt.remove_pod_sandbox(client_sid)
    assert netns not in mountinfo()
    assert not [x for x in read_text("/proc/net/dev").splitlines() if x.strip().startswith("veth")]
    assert await rt.list_containers() == [] and await rt.list_pod_sandboxes() == []
