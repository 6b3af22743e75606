"""Pods with their own IPs through the real CNI plugins: the whole test runs inside a network namespace of
its own (the "node"), so the bridge, the NAT rules and the 10.88.x.0/24 range never touch the machine's
network. Two pods talk by pod IP, and an httpGet readiness probe reaches a pod's IP from the kubelet."""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import ipaddress
import os
import random
import secrets
import shutil
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from pyk8s.client.client import Client
from pyk8s.client.events import EventRecorder
from pyk8s.client.transport import HTTPTransport
from pyk8s.kubelet.images import ImageStore, ensure_seed_image
from pyk8s.kubelet.network import PodNetwork
from pyk8s.kubelet.pods import PodsConfig
from pyk8s.kubelet.runtime import RuncRuntime
from tests.kubelet._harness import NODE, Env, conditions, running, state
from tests.kubelet.runtime.conftest import remove_cgroups
from tests.support.apiserver import api_server

CNI_BIN = "/usr/lib/cni"
pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("runc") is None or not os.path.exists(f"{CNI_BIN}/bridge"),
    reason="needs root, runc and the CNI plugins")

_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
_CLONE_NEWNET = 0x40000000


def _setns(fd: int) -> None:
    if _libc.setns(fd, _CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


@pytest.fixture
def node_netns() -> Iterator[tuple[str, str]]:
    """This thread enters a fresh netns with loopback up; (bridge name, pod CIDR) for the node in it."""
    suffix = secrets.token_hex(3)
    name = f"pyk8s-kl-{suffix}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True)
    home = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    target = os.open(f"/run/netns/{name}", os.O_RDONLY)
    try:
        _setns(target)
        yield f"pk{suffix}", f"10.88.{random.randint(1, 254)}.0/24"
    finally:
        _setns(home)
        os.close(home)
        os.close(target)
        subprocess.run(["ip", "netns", "del", name], check=False)


@contextlib.asynccontextmanager
async def kubelet_with_network(tmp: Path, bridge: str, cidr: str) -> AsyncIterator[Env]:
    root = f"/pyk8s-test-{secrets.token_hex(4)}"
    async with api_server() as srv:
        client = Client(HTTPTransport(srv.url))
        recorder = EventRecorder(client, "kubelet", NODE)
        images = ImageStore(str(tmp / "images"))
        await ensure_seed_image(images)
        network = PodNetwork(str(tmp / "cni"), CNI_BIN, bridge)
        network.set_pod_cidr(cidr)
        runtime = RuncRuntime(str(tmp / "runtime"), images, network)
        gateway = str(ipaddress.ip_network(cidr)[1])
        cfg = PodsConfig(node_name=NODE, node_ip=gateway, log_root=str(tmp / "logs"), cgroup_root=root,
                         relist_period=0.1, error_resync=0.2, probe_time_scale=0.2)
        try:
            async with running(srv, client, cfg, runtime, images, recorder) as env:
                yield env
        finally:
            for s in await runtime.list_pod_sandboxes():
                await runtime.stop_pod_sandbox(s.id)
                for c in await runtime.list_containers(s.id):
                    await runtime.remove_container(c.id)
                await runtime.remove_pod_sandbox(s.id)
            network.cleanup_all()
            await recorder.close()
            await client.close()
            remove_cgroups(root.strip("/"))


def bb(name: str, script: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "image": "busybox", "imagePullPolicy": "IfNotPresent",
            "command": ["sh", "-c", script], **extra}


def pod(name: str, *containers: dict[str, Any], restart: str = "Always") -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "default"},
            "spec": {"nodeName": NODE, "restartPolicy": restart, "terminationGracePeriodSeconds": 1,
                     "containers": list(containers)}}


async def test_two_pods_talk_by_pod_ip_and_http_readiness(node_netns: tuple[str, str],
                                                          tmp_path: Path) -> None:
    bridge, cidr = node_netns
    async with kubelet_with_network(tmp_path, bridge, cidr) as env:
        ready = {"httpGet": {"port": 8080, "path": "/index.html"}, "periodSeconds": 1}
        server = bb("web", "mkdir -p /www && echo pong > /www/index.html && exec httpd -f -p 8080 -h /www",
                    readinessProbe=ready, ports=[{"containerPort": 8080}])
        await env.create(pod("server", server))
        s = await env.wait("server", lambda p: conditions(p).get("Ready") == "True", within=30)
        ip = s["status"]["podIP"]
        assert ipaddress.ip_address(ip) in ipaddress.ip_network(cidr)
        await env.create(pod("client", bb("c", f"wget -qO- http://{ip}:8080/index.html | grep -q pong"),
                             restart="Never"))
        c = await env.wait("client", lambda p: p["status"].get("phase") in ("Succeeded", "Failed"), within=30)
        assert c["status"]["phase"] == "Succeeded", state(c, "c")
        assert c["status"]["podIP"] != ip
