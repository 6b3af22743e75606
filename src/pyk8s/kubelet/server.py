"""The kubelet's HTTPS API (port 10250): container logs, exec, attach, port-forward, /pods, /stats/summary
and /healthz.

Clients authenticate with a certificate issued by the cluster CA. Members of `system:masters` (the API
server's kubelet client certificate) are allowed everything; anyone else is authorised by a
SubjectAccessReview on `nodes/<subresource>` of this node, as Kubernetes' kubelet webhook authorizer does
(`/stats` → stats, `/logs` → log, `/spec` → spec, everything else → proxy). The serving certificate is
self-signed per node, as the kubelet's default; the API server does not verify it."""

from __future__ import annotations

import datetime as dt
import ipaddress
import logging
import os
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from pyk8s.api import catalog
from pyk8s.client.client import Client
from pyk8s.kubelet import cri
from pyk8s.kubelet.kubelet import Kubelet
from pyk8s.kubelet.streaming import channels, spdyserve, stats, upgrade
from pyk8s.kubelet.streaming.logs import LogOptions, parse_rfc3339, read_logs

__all__ = ["KubeletServer", "KubeletServerConfig", "ensure_serving_cert", "serve_kubelet"]

log = logging.getLogger(__name__)
Obj = dict[str, Any]

_VERBS = {"GET": "get", "HEAD": "get", "POST": "create", "PUT": "update", "PATCH": "patch",
          "DELETE": "delete"}
SUBJECT_ACCESS_REVIEWS = catalog.require("authorization.k8s.io", "SubjectAccessReview")
_SUBRESOURCE_BY_PREFIX = (("/stats", "stats"), ("/metrics", "metrics"), ("/logs", "log"), ("/spec", "spec"))


@dataclass
class KubeletServerConfig:
    node_name: str
    runtime: cri.RuntimeService
    ca_pem: bytes  # the cluster CA: client certificates must chain to it
    cert_dir: str  # where the self-signed serving certificate lives
    host: str = "0.0.0.0"
    port: int = 10250
    pods: Callable[[], list[Obj]] = field(default=lambda: [])  # the pods bound to this node
    client: Client | None = None  # for SubjectAccessReviews; None: only system:masters is let in
    node_ips: list[str] = field(default_factory=list)  # extra SANs of the serving certificate


def ensure_serving_cert(cert_dir: str, node_name: str, ips: list[str] | None = None) -> tuple[str, str]:
    """A self-signed serving certificate for this node (kept across restarts); (cert, key) paths."""
    d = Path(cert_dir)
    cert_file, key_file = d / "kubelet.crt", d / "kubelet.key"
    if cert_file.exists() and key_file.exists():
        return str(cert_file), str(key_file)
    d.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{node_name}@{int(time.time())}")])
    sans: list[x509.GeneralName] = [x509.DNSName(node_name), x509.DNSName("localhost")]
    sans += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in {"127.0.0.1", *(ips or [])}]
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=365))
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(key_pem)
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return str(cert_file), str(key_file)


def _peer(request: web.Request) -> tuple[str, list[str]] | None:
    """(CN, [O…]) of the verified client certificate, None without one."""
    cert = request.transport.get_extra_info("peercert") if request.transport is not None else None
    if not cert:
        return None
    cn, orgs = "", []
    for rdn in cert.get("subject", ()):
        for key, value in rdn:
            if key == "commonName":
                cn = value
            elif key == "organizationName":
                orgs.append(value)
    return cn, orgs


def _true(query: Mapping[str, str], name: str) -> bool:
    """A boolean query parameter, as the kubelet reads them ("true" or "1")."""
    return query.get(name) in ("true", "1")


def _status(code: int, reason: str, message: str) -> web.Response:
    body = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message,
            "reason": reason, "code": code}
    return web.json_response(body, status=code)


class KubeletServer:
    """`await start()`, `await stop()`; `url` once started."""

    def __init__(self, config: KubeletServerConfig) -> None:
        self.config = config
        self.runtime = config.runtime
        self._runner: web.AppRunner | None = None
        self.port = config.port
        self.app = web.Application(middlewares=[self._authn])
        r = self.app.router
        r.add_get("/healthz", self._healthz)
        r.add_get("/pods", self._pods)
        r.add_get("/stats/summary", self._summary)
        r.add_get("/containerLogs/{namespace}/{pod}/{container}", self._logs)
        for verb in ("exec", "attach"):
            for path in (f"/{verb}/{{namespace}}/{{pod}}/{{container}}",
                         f"/{verb}/{{namespace}}/{{pod}}/{{uid}}/{{container}}"):
                r.add_route("GET", path, self._exec if verb == "exec" else self._attach)
                r.add_route("POST", path, self._exec if verb == "exec" else self._attach)
        for path in ("/portForward/{namespace}/{pod}", "/portForward/{namespace}/{pod}/{uid}"):
            r.add_route("GET", path, self._portforward)
            r.add_route("POST", path, self._portforward)

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def ssl_context(self) -> ssl.SSLContext:
        cert, key = ensure_serving_cert(self.config.cert_dir, self.config.node_name, self.config.node_ips)
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(cert, key)
        ctx.load_verify_locations(cadata=self.config.ca_pem.decode())
        ctx.verify_mode = ssl.CERT_OPTIONAL  # /healthz answers anyone; the rest checks the certificate
        return ctx

    async def start(self) -> None:
        self._runner = web.AppRunner(self.app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.config.host, self.config.port, ssl_context=self.ssl_context())
        await site.start()
        server = site._server  # the bound port when 0 was asked for
        if server is not None and server.sockets:  # type: ignore[attr-defined]
            self.port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # --- authentication and authorisation ---------------------------------------------------------

    @web.middleware
    async def _authn(self, request: web.Request,
                     handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
        if request.path == "/healthz":
            return await handler(request)
        peer = _peer(request)
        if peer is None:
            return _status(401, "Unauthorized", "Unauthorized")
        cn, orgs = peer
        if "system:masters" not in orgs:
            sub = next((s for p, s in _SUBRESOURCE_BY_PREFIX if request.path.startswith(p)), "proxy")
            verb = _VERBS.get(request.method, request.method.lower())
            if not await self._review(cn, orgs, verb, sub):
                return _status(403, "Forbidden", f"Forbidden (user={cn}, verb={verb}, resource=nodes, "
                                                 f"subresource={sub})")
        return await handler(request)

    async def _review(self, user: str, groups: list[str], verb: str, subresource: str) -> bool:
        client = self.config.client
        if client is None:
            return False
        review = {"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
                  "spec": {"user": user, "groups": [*groups, "system:authenticated"],
                           "resourceAttributes": {"verb": verb, "resource": "nodes",
                                                  "subresource": subresource, "name": self.config.node_name}}}
        try:
            out = await client.create(SUBJECT_ACCESS_REVIEWS, review)
        except Exception as e:
            log.warning("kubelet server: SubjectAccessReview failed: %s", e)
            return False
        return bool((out.get("status") or {}).get("allowed"))

    # --- lookups ----------------------------------------------------------------------------------

    async def _sandbox(self, namespace: str, pod: str) -> cri.SandboxStatus | None:
        found = [s for s in await self.runtime.list_pod_sandboxes()
                 if s.namespace == namespace and s.name == pod]
        found.sort(key=lambda s: (s.state == "ready", s.created_at), reverse=True)
        return found[0] if found else None

    async def _containers(self, namespace: str, pod: str, container: str) -> list[cri.ContainerStatus]:
        """The container's instances in this pod, newest attempt first."""
        sandbox = await self._sandbox(namespace, pod)
        if sandbox is None:
            return []
        found = [c for c in await self.runtime.list_containers(sandbox.id) if c.name == container]
        found.sort(key=lambda c: (c.attempt, c.created_at), reverse=True)
        return found

    async def _running(self, request: web.Request) -> cri.ContainerStatus:
        m = request.match_info
        found = await self._containers(m["namespace"], m["pod"], m["container"])
        if not found or found[0].state != "running":
            raise web.HTTPNotFound(text=f'container "{m["container"]}" in pod "{m["pod"]}" is not running')
        return found[0]

    # --- endpoints ----------------------------------------------------------------------------------

    async def _healthz(self, request: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def _pods(self, request: web.Request) -> web.Response:
        body = {"kind": "PodList", "apiVersion": "v1", "metadata": {}, "items": self.config.pods()}
        return web.json_response(body)

    async def _summary(self, request: web.Request) -> web.Response:
        summary = await stats.summary(self.config.node_name, self.runtime, self.config.pods())
        return web.json_response(summary)

    async def _logs(self, request: web.Request) -> web.StreamResponse:
        m, q = request.match_info, request.query
        found = await self._containers(m["namespace"], m["pod"], m["container"])
        previous = _true(q, "previous")
        if previous and len(found) < 2:
            return _status(400, "BadRequest", f'previous terminated container "{m["container"]}" in pod '
                                               f'"{m["pod"]}" not found')
        if not found:
            return _status(404, "NotFound", f'container "{m["container"]}" in pod "{m["pod"]}" not found')
        target = found[1] if previous else found[0]
        try:
            opts = LogOptions(follow=_true(q, "follow") and not previous,
                              timestamps=_true(q, "timestamps"))
            if "tailLines" in q:
                opts.tail_lines = max(0, int(q["tailLines"]))
            if "limitBytes" in q:
                opts.limit_bytes = max(1, int(q["limitBytes"]))
            if "sinceSeconds" in q:
                opts.since = time.time() - int(q["sinceSeconds"])
            elif "sinceTime" in q:
                opts.since = parse_rfc3339(q["sinceTime"])
        except ValueError as e:
            return _status(400, "BadRequest", f"invalid log options: {e}")

        async def running() -> bool:
            try:
                return (await self.runtime.container_status(target.id)).state == "running"
            except Exception:
                return False

        resp = web.StreamResponse(headers={"Content-Type": "text/plain"})
        await resp.prepare(request)
        async for chunk in read_logs(target.log_path, opts, running):
            await resp.write(chunk)
        await resp.write_eof()
        return resp

    def _flags(self, request: web.Request) -> tuple[bool, bool]:
        q = request.query
        return _true(q, "stdin"), _true(q, "tty")

    async def _exec(self, request: web.Request) -> web.StreamResponse:
        command = request.query.getall("command", [])
        if not command:
            return _status(400, "BadRequest", "you must specify at least 1 command")
        container = await self._running(request)
        stdin, tty = self._flags(request)
        return await self._remotecommand(
            request, lambda: self.runtime.exec(container.id, list(command), stdin=stdin, tty=tty), command)

    async def _attach(self, request: web.Request) -> web.StreamResponse:
        container = await self._running(request)
        stdin, tty = self._flags(request)
        return await self._remotecommand(request,
                                         lambda: self.runtime.attach(container.id, stdin=stdin, tty=tty))

    async def _remotecommand(self, request: web.Request, open_stream: Callable[[], Awaitable[cri.Stream]],
                             command: list[str] | None = None) -> web.StreamResponse:
        """WebSocket (kubectl 1.30+, the Python client) or a SPDY upgrade (older kubectl)."""
        if not upgrade.is_spdy_upgrade(request):
            return await channels.serve_remotecommand(request, open_stream, command)
        accepted = await upgrade.accept_upgrade(request, spdyserve.REMOTECOMMAND_PROTOCOLS)
        if accepted is None:
            return _status(403, "Forbidden", "unable to upgrade: unable to negotiate protocol")
        conn, protocol = accepted
        q = request.query
        stdin, tty = self._flags(request)
        try:
            await spdyserve.spdy_remotecommand(
                conn.send, conn.chunks(), protocol or "channel.k8s.io", open_stream, stdin=stdin,
                stdout=_true(q, "stdout"), stderr=_true(q, "stderr"), tty=tty,
                status=lambda code: channels.exit_status(code, command), failure=channels.failure_status)
        finally:
            conn.close()
        assert conn.response is not None
        return conn.response

    async def _portforward(self, request: web.Request) -> web.StreamResponse:
        m = request.match_info
        sandbox = await self._sandbox(m["namespace"], m["pod"])
        if sandbox is None or sandbox.state != "ready":
            return _status(404, "NotFound", f'pod "{m["pod"]}" not found on this node')
        try:
            ports = channels.parse_ports(request.query.getall("ports", []) + request.query.getall("port", []))
        except ValueError as e:
            return _status(400, "BadRequest", str(e))

        async def dial(port: int) -> tuple[Callable[[bytes], Awaitable[None]], AsyncIterator[bytes]]:
            return await self.runtime.port_forward(sandbox.id, port)

        if upgrade.is_spdy_upgrade(request):
            accepted = await upgrade.accept_upgrade(request, ("portforward.k8s.io",))
            if accepted is None:
                return _status(403, "Forbidden", "unable to upgrade: unable to negotiate protocol")
            conn, _ = accepted
            try:
                await spdyserve.spdy_portforward(conn.send, conn.chunks(), dial)
            finally:
                conn.close()
            assert conn.response is not None
            return conn.response
        return await channels.serve_portforward(request, ports, dial)


async def serve_kubelet(kubelet: Kubelet, *, ca_pem: bytes, client: Client | None, host: str = "0.0.0.0",
                        port: int = 10250) -> KubeletServer:
    """Start the HTTPS API for `kubelet` (before its `run()`: the Node it registers then names the port
    actually bound, which matters when 0 asked for any free one)."""
    server = KubeletServer(KubeletServerConfig(
        node_name=kubelet.node_name, runtime=kubelet.runtime, ca_pem=ca_pem,
        cert_dir=os.path.join(kubelet.data_dir, "agent", "pki"), host=host, port=port,
        pods=lambda: [w.pod for w in list(kubelet.pods.workers.values())], client=client,
        node_ips=[kubelet.node.node_ip] if kubelet.node.node_ip else []))
    await server.start()
    kubelet.node.kubelet_port = server.port
    return server
