"""pods/log, pods/exec, pods/attach and pods/portforward: the API server finds the pod's node and proxies
the request to that node's kubelet (status addresses + daemonEndpoints.kubeletEndpoint.Port) with its
kubelet client certificate. The kubelet's serving certificate is not verified, as Kubernetes does without
--kubelet-certificate-authority.

Logs stream through as plain HTTP. Exec, attach and port-forward are upgrades, and the backend connection
is always opened first: only when the kubelet accepts does the client's upgrade complete, else the
kubelet's answer is returned and the backend connection closed. WebSocket upgrades (kubectl 1.30+, the
Python client) are relayed message by message with the subprotocol the kubelet chose; `Upgrade: SPDY/3.1`
(older kubectl) is spliced byte for byte. nodes/{name}/proxy reaches the kubelet's API the same way."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Coroutine
from typing import Any
from urllib.parse import quote, urlencode

import aiohttp
from aiohttp import WSMsgType, web
from multidict import CIMultiDict
from yarl import URL

from pyk8s.api import catalog, errors
from pyk8s.util.rawupgrade import switch_protocols
from pyk8s.util.tasks import cancel_and_wait

__all__ = ["KubeletProxy"]

Obj = dict[str, Any]

_LOG_PARAMS = ("follow", "previous", "tailLines", "sinceSeconds", "sinceTime", "timestamps", "limitBytes")
_ADDRESS_ORDER = ("InternalIP", "ExternalIP", "Hostname", "InternalDNS", "ExternalDNS")


def _containers(pod: Obj) -> list[str]:
    spec = pod.get("spec") or {}
    return [c["name"] for key in ("initContainers", "containers", "ephemeralContainers")
            for c in spec.get(key) or []]


def _container_name(pod: Obj, requested: str) -> str:
    """The container to use, as Kubernetes' pod log/exec strategy picks it."""
    name = pod["metadata"]["name"]
    names = _containers(pod)
    if requested:
        if requested not in names:
            raise errors.bad_request(f'container {requested} is not valid for pod {name}')
        return requested
    regular = [c["name"] for c in (pod.get("spec") or {}).get("containers") or []]
    if len(regular) == 1:
        return str(regular[0])
    raise errors.bad_request(f"a container name must be specified for pod {name}, "
                             f"choose one of: [{' '.join(regular)}]")


def _waiting(pod: Obj, container: str) -> str:
    """Why the container has not started yet, "" once it has (or when the status does not say: the
    kubelet then answers for itself)."""
    status = pod.get("status") or {}
    for key in ("initContainerStatuses", "containerStatuses"):
        for cs in status.get(key) or []:
            if cs.get("name") == container:
                if "waiting" in (cs.get("state") or {}) and not cs.get("lastState"):
                    return cs["state"]["waiting"].get("reason") or "ContainerCreating"
                return ""
    return ""


async def _until_one_ends(*directions: Coroutine[Any, Any, None]) -> None:
    """Relay both directions until one ends (its side closed or failed); then the other is cancelled."""
    tasks = [asyncio.create_task(d) for d in directions]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        await cancel_and_wait(tasks)


class KubeletProxy:
    def __init__(self, api: Any, cert_file: str, key_file: str) -> None:
        """`api` is the APIServer (its get_object reads pods and nodes)."""
        self.api = api
        self.ssl = ssl.create_default_context()
        self.ssl.check_hostname = False
        self.ssl.verify_mode = ssl.CERT_NONE
        self.ssl.load_cert_chain(cert_file, key_file)
        self._session: aiohttp.ClientSession | None = None

    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=self.ssl),
                                                  timeout=aiohttp.ClientTimeout(total=None, connect=10))
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def _kubelet(self, pod: Obj) -> str:
        node_name = (pod.get("spec") or {}).get("nodeName")
        if not node_name:
            raise errors.bad_request(f'pod {pod["metadata"]["name"]} does not have a host assigned')
        return await self._node_url(node_name)

    async def _node_url(self, node_name: str) -> str:
        """https://address:port of a node's kubelet."""
        info = catalog.lookup("", "v1", "nodes")
        assert info is not None
        node = await self.api.get_object(info, "", node_name)
        if node is None:
            raise errors.not_found("nodes", node_name)
        status = node.get("status") or {}
        addresses = {a.get("type"): a.get("address") for a in status.get("addresses") or []}
        host = next((addresses[t] for t in _ADDRESS_ORDER if addresses.get(t)), "")
        if not host:
            raise errors.StatusError(503, "ServiceUnavailable", f"node {node_name} has no address")
        port = ((status.get("daemonEndpoints") or {}).get("kubeletEndpoint") or {}).get("Port") or 10250
        return f"https://{f'[{host}]' if ':' in host else host}:{port}"

    async def handle(self, request: web.Request, namespace: str, name: str, sub: str) -> web.StreamResponse:
        info = catalog.lookup("", "v1", "pods")
        assert info is not None
        pod = await self.api.registry.get(info, namespace, name)  # current, not the watch cache's view
        base = await self._kubelet(pod)
        q = request.query
        ns, pn = quote(namespace, safe=""), quote(name, safe="")
        if sub == "portforward":
            return await self._upgrade(request, f"{base}/portForward/{ns}/{pn}?{request.query_string}")
        container = _container_name(pod, q.get("container", ""))
        waiting = _waiting(pod, container)
        if sub == "log":
            if waiting and q.get("previous") not in ("true", "1"):
                raise errors.bad_request(
                    f'container "{container}" in pod "{name}" is waiting to start: {waiting}')
            query = urlencode([(k, q[k]) for k in _LOG_PARAMS if k in q])
            url = f"{base}/containerLogs/{ns}/{pn}/{quote(container, safe='')}?{query}"
            return await self._stream(request, url)
        if waiting:
            raise errors.bad_request(f'unable to upgrade connection: container not found ("{container}")')
        path = "exec" if sub == "exec" else "attach"
        return await self._upgrade(request, f"{base}/{path}/{ns}/{pn}/{quote(container, safe='')}"
                                            f"?{request.query_string}")

    async def handle_node(self, request: web.Request, name: str) -> web.StreamResponse:
        """nodes/{name}/proxy/{path}: the node's kubelet API at {path} (GET, or a WebSocket upgrade)."""
        base = await self._node_url(name)
        marker = f"/nodes/{name}/proxy"
        rest = request.path[request.path.index(marker) + len(marker):] or "/"
        url = base + quote(rest) + (f"?{request.query_string}" if request.query_string else "")
        if request.headers.get("Upgrade", "").lower() == "websocket":
            return await self._upgrade(request, url)
        if request.method not in ("GET", "HEAD"):
            raise errors.method_not_allowed("only GET and WebSocket upgrades are proxied to nodes")
        return await self._stream(request, url)

    async def _stream(self, request: web.Request, url: str) -> web.StreamResponse:
        try:
            backend = await self.session().get(url)
        except aiohttp.ClientError as e:
            raise errors.StatusError(500, "InternalError", f"error dialing backend: {e}") from e
        try:
            if backend.status != 200:
                body = await backend.read()
                return web.Response(status=backend.status, body=body,
                                    content_type=backend.content_type or "application/json")
            content_type = backend.headers.get("Content-Type", "text/plain")
            resp = web.StreamResponse(headers={"Content-Type": content_type})
            await resp.prepare(request)
            async for chunk in backend.content.iter_any():
                await resp.write(chunk)
            await resp.write_eof()
            return resp
        finally:
            backend.release()

    async def _upgrade(self, request: web.Request, url: str) -> web.StreamResponse:
        if request.headers.get("Upgrade", "").lower().startswith("spdy/"):
            return await self._raw_upgrade(request, url)
        if request.headers.get("Upgrade", "").lower() != "websocket":
            raise errors.bad_request("Upgrade request required")
        offered = request.headers.get("Sec-WebSocket-Protocol", "")
        protocols = [p.strip() for p in offered.split(",") if p.strip()]
        try:
            backend = await self.session().ws_connect(url, protocols=protocols, max_msg_size=0, autoping=True)
        except aiohttp.WSServerHandshakeError as e:
            raise errors.StatusError(e.status if e.status >= 400 else 500, "InternalError",
                                     f"error: unable to upgrade connection: {e.message}") from e
        except aiohttp.ClientError as e:
            raise errors.StatusError(500, "InternalError", f"error dialing backend: {e}") from e
        if protocols and backend.protocol not in protocols:
            await backend.close()  # the kubelet agreed on no subprotocol the client offered
            raise errors.bad_request("unable to upgrade connection: no common subprotocol")
        ws = web.WebSocketResponse(protocols=(backend.protocol,) if backend.protocol else (), max_msg_size=0)
        try:
            await ws.prepare(request)
        except Exception:
            await backend.close()
            raise

        async def relay(src: Any, dst: Any) -> None:
            async for msg in src:
                if msg.type == WSMsgType.BINARY:
                    await dst.send_bytes(msg.data)
                elif msg.type == WSMsgType.TEXT:
                    await dst.send_str(msg.data)
            await dst.close()

        try:
            await _until_one_ends(relay(ws, backend), relay(backend, ws))
        finally:
            with contextlib.suppress(Exception):
                await backend.close()
            with contextlib.suppress(Exception):
                await ws.close()
        return ws

    async def _raw_upgrade(self, request: web.Request, url: str) -> web.StreamResponse:
        """`Upgrade: SPDY/3.1` (older kubectl): the kubelet answers first; on its 101 the client gets the
        same 101 and the two connections are spliced byte for byte, else its answer is returned and the
        backend connection closed."""
        target = URL(url)
        try:
            reader, writer = await asyncio.open_connection(target.host, target.port, ssl=self.ssl)
        except OSError as e:
            raise errors.StatusError(500, "InternalError", f"error dialing backend: {e}") from e
        try:
            head = [f"{request.method} {target.raw_path_qs} HTTP/1.1", f"Host: {target.host}:{target.port}",
                    "Connection: Upgrade", f"Upgrade: {request.headers['Upgrade']}", "Content-Length: 0"]
            versions = request.headers.getall("X-Stream-Protocol-Version", [])
            head += [f"X-Stream-Protocol-Version: {v}" for v in versions]
            writer.write(("\r\n".join(head) + "\r\n\r\n").encode())
            raw = await reader.readuntil(b"\r\n\r\n")
            lines = raw.decode("latin-1").split("\r\n")
            code = int(lines[0].split()[1])
            headers: CIMultiDict[str] = CIMultiDict()
            for line in lines[1:]:
                name, sep, value = line.partition(":")
                if sep:
                    headers.add(name.strip(), value.strip())
        except (OSError, ValueError, IndexError, asyncio.IncompleteReadError, asyncio.LimitOverrunError) as e:
            writer.close()
            raise errors.StatusError(500, "InternalError", f"error: unable to upgrade connection: {e}") from e
        if code != 101:
            try:
                length = int(headers.get("Content-Length", "0"))
                body = await reader.readexactly(length) if length else b""
            except (OSError, ValueError, asyncio.IncompleteReadError):
                body = b""
            finally:
                writer.close()
            return web.Response(status=code, body=body, content_type=headers.get("Content-Type", "text/plain")
                                .split(";")[0])
        answer = {"Connection": "Upgrade", "Upgrade": headers.get("Upgrade", request.headers["Upgrade"])}
        if "X-Stream-Protocol-Version" in headers:
            answer["X-Stream-Protocol-Version"] = headers["X-Stream-Protocol-Version"]
        try:
            client = await switch_protocols(request, answer)
        except Exception:
            writer.close()
            raise

        async def upstream() -> None:
            async for chunk in client.chunks():
                writer.write(chunk)
                await writer.drain()

        async def downstream() -> None:
            while data := await reader.read(65536):
                await client.send(data)

        try:
            await _until_one_ends(upstream(), downstream())
        finally:
            writer.close()
            client.close()
        assert client.response is not None
        return client.response

