"""pods/log, exec, attach and portforward through the API server to a real kubelet HTTPS server (its
runtime's exec is a host process), with aiohttp and the official Python client's `stream`."""

from __future__ import annotations

import asyncio
import json
import struct
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from kubernetes import client as k8s
from kubernetes.stream import portforward as k8s_portforward
from kubernetes.stream import stream as k8s_stream

from pyk8s.api.catalog import require
from pyk8s.apiserver.app import APIServer, APIServerConfig
from pyk8s.kubelet.server import KubeletServer, KubeletServerConfig
from pyk8s.store.memory import MemoryStore
from tests.apiserver.conftest import start_server
from tests.kubelet._streamfakes import CertAuthority, StreamRuntime, echo_server


@dataclass
class Env:
    url: str
    api: APIServer
    runtime: StreamRuntime
    session: aiohttp.ClientSession


def _pod(name: str, node: str, containers: list[str], waiting: bool = False) -> dict[str, Any]:
    state = {"waiting": {"reason": "ContainerCreating"}} if waiting else {"running": {}}
    return {"metadata": {"name": name, "namespace": "default"},
            "spec": {"nodeName": node, "containers": [{"name": c, "image": "busybox"} for c in containers]},
            "status": {"phase": "Running",
                       "containerStatuses": [{"name": c, "state": state} for c in containers]}}


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[Env]:
    ca = CertAuthority()
    log_dir = tmp_path / "logs"
    log_dir.mkdir()
    (log_dir / "1.log").write_bytes(b"2024-01-01T00:00:01.000000000Z stdout F hello from app\n")
    runtime = StreamRuntime(log_dir)
    kubelet = KubeletServer(KubeletServerConfig(node_name="n1", runtime=runtime, ca_pem=ca.pem,  # type: ignore[arg-type]
                                                cert_dir=str(tmp_path / "pki"), host="127.0.0.1", port=0))
    await kubelet.start()
    cert = ca.client(tmp_path, "kube-apiserver-kubelet-client", ["system:masters"])
    store = MemoryStore()
    test_server, api = await start_server(APIServerConfig(store=store, kubelet_client_cert=cert))
    nodes, pods = require("", "Node"), require("", "Pod")
    await api.create_object(nodes, {"metadata": {"name": "n1"}, "status": {
        "addresses": [{"type": "InternalIP", "address": "127.0.0.1"}, {"type": "Hostname", "address": "n1"}],
        "daemonEndpoints": {"kubeletEndpoint": {"Port": kubelet.port}}}})
    url = str(test_server.make_url("")).rstrip("/")
    try:
        async with aiohttp.ClientSession() as session:
            for pod in (_pod("web", "n1", ["app"]), _pod("two", "n1", ["a", "b"]),
                        _pod("starting", "n1", ["app"], waiting=True), _pod("unbound", "", ["app"])):
                status = pod["status"]
                created = await api.create_object(pods, pod)
                created["status"] = status
                name = pod["metadata"]["name"]
                path = f"/api/v1/namespaces/default/pods/{name}/status"
                async with session.put(url + path, json=created) as r:
                    assert r.status == 200, await r.text()
            yield Env(url, api, runtime, session)
    finally:
        await test_server.close()
        await store.close()
        await kubelet.stop()
        for s in runtime.streams:
            if s.proc.returncode is None:
                s.proc.kill()
                await s.proc.wait()


async def test_log_through_the_api(env: Env) -> None:
    async with env.session.get(env.url + "/api/v1/namespaces/default/pods/web/log") as r:
        assert r.status == 200 and await r.read() == b"hello from app\n"
    async with env.session.get(env.url + "/api/v1/namespaces/default/pods/web/log",
                               params={"container": "app", "timestamps": "true"}) as r:
        assert await r.read() == b"2024-01-01T00:00:01.000000000Z hello from app\n"


@pytest.mark.parametrize(("pod", "query", "message"), [
    ("two", {}, "a container name must be specified for pod two, choose one of: [a b]"),
    ("web", {"container": "x"}, "container x is not valid for pod web"),
    ("starting", {}, 'container "app" in pod "starting" is waiting to start: ContainerCreating'),
    ("unbound", {}, "pod unbound does not have a host assigned"),
])
async def test_log_errors_as_kubernetes_words_them(env: Env, pod: str, query: dict[str, str],
                                                    message: str) -> None:
    async with env.session.get(f"{env.url}/api/v1/namespaces/default/pods/{pod}/log", params=query) as r:
        body = await r.json()
    assert r.status == 400 and body["reason"] == "BadRequest" and body["message"] == message


async def test_exec_websocket_relayed_with_the_kubelets_subprotocol(env: Env) -> None:
    url = (env.url + "/api/v1/namespaces/default/pods/web/exec?command=sh&command=-c"
           "&command=cat%3B+exit+7&stdin=true&stdout=true&stderr=true")
    frames: dict[int, bytes] = {}
    async with env.session.ws_connect(url, protocols=("v5.channel.k8s.io", "v4.channel.k8s.io")) as ws:
        assert ws.protocol == "v5.channel.k8s.io"
        await ws.send_bytes(b"\x00through the proxy\n")
        await ws.send_bytes(b"\xff\x00")
        async with asyncio.timeout(10):
            async for msg in ws:
                frames[msg.data[0]] = frames.get(msg.data[0], b"") + msg.data[1:]
    assert frames[1] == b"through the proxy\n"
    assert json.loads(frames[3])["details"]["causes"] == [{"reason": "ExitCode", "message": "7"}]


async def test_refused_upgrade_is_an_error_not_a_websocket(env: Env) -> None:
    # no command: the kubelet refuses the upgrade with 400, which the client receives
    url = env.url + "/api/v1/namespaces/default/pods/web/exec?stdout=true"
    with pytest.raises(aiohttp.WSServerHandshakeError) as e:
        await env.session.ws_connect(url, protocols=("v4.channel.k8s.io",))
    assert e.value.status == 400


async def test_portforward_through_the_api(env: Env) -> None:
    async with echo_server(bytes.upper) as port:
        url = f"{env.url}/api/v1/namespaces/default/pods/web/portforward?ports={port}"
        async with env.session.ws_connect(url, protocols=("v4.channel.k8s.io",)) as ws:
            async with asyncio.timeout(10):
                assert await ws.receive_bytes() == b"\x00" + struct.pack("<H", port)
                assert await ws.receive_bytes() == b"\x01" + struct.pack("<H", port)
                await ws.send_bytes(b"\x00abc")
                assert await ws.receive_bytes() == b"\x00ABC"


async def test_official_python_client_stream(env: Env) -> None:
    config = k8s.Configuration(host=env.url)
    api = k8s.CoreV1Api(k8s.ApiClient(config))

    def run() -> tuple[str, int | None]:
        out = k8s_stream(api.connect_get_namespaced_pod_exec, "web", "default",
                         command=["sh", "-c", "echo out; echo err >&2"], stderr=True, stdin=False,
                         stdout=True, tty=False)
        resp = k8s_stream(api.connect_get_namespaced_pod_exec, "web", "default",
                          command=["sh", "-c", "read x; echo got $x; exit 4"], stderr=True, stdin=True,
                          stdout=True, tty=False, _preload_content=False)
        resp.write_stdin("line\n")
        resp.run_forever(timeout=10)
        return out, resp.returncode

    async with asyncio.timeout(30):
        out, code = await asyncio.to_thread(run)
    assert out == "out\nerr\n"  # the client's preloaded output joins stdout and stderr
    assert code == 4


async def test_nodes_proxy(env: Env) -> None:
    async with env.session.get(env.url + "/api/v1/nodes/n1/proxy/pods") as r:
        assert r.status == 200 and (await r.json())["kind"] == "PodList"
    async with env.session.get(env.url + "/api/v1/nodes/n1/proxy/containerLogs/default/web/app",
                               params={"tailLines": "1"}) as r:
        assert await r.read() == b"hello from app\n"
    async with env.session.get(env.url + "/api/v1/nodes/nope/proxy/pods") as r:
        assert r.status == 404


async def test_official_python_client_portforward(env: Env) -> None:
    async with echo_server(lambda data: b"pf:" + data) as port:
        api = k8s.CoreV1Api(k8s.ApiClient(k8s.Configuration(host=env.url)))

        def run() -> bytes:
            pf = k8s_portforward(api.connect_get_namespaced_pod_portforward, "web", "default",
                                 ports=str(port))
            sock = pf.socket(port)
            sock.settimeout(10)
            try:
                sock.sendall(b"hello")
                got = b""
                while len(got) < len(b"pf:hello"):
                    chunk = sock.recv(1024)
                    if not chunk:
                        break
                    got += chunk
                return got
            finally:
                pf.close()

        async with asyncio.timeout(30):
            assert await asyncio.to_thread(run) == b"pf:hello"


async def test_refused_spdy_upgrade_returns_the_kubelets_answer(env: Env) -> None:
    headers = {"Connection": "Upgrade", "Upgrade": "SPDY/3.1",
               "X-Stream-Protocol-Version": "v4.channel.k8s.io"}
    async with env.session.post(env.url + "/api/v1/namespaces/default/pods/web/exec?stdout=true",
                                headers=headers) as r:  # no command: the kubelet says 400
        body = await r.json()
    assert r.status == 400 and body["message"] == "you must specify at least 1 command"
