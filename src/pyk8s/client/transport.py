"""How the client reaches an API server: the small `Transport` protocol and its HTTP implementation.

A transport moves bytes; it knows nothing of kinds. `HTTPTransport` (aiohttp, a pooled connector) speaks
HTTPS to a remote API server, or plain HTTP over `pyk8s server`'s loopback Unix socket for the
components inside it. A transport raises `StatusError` for a non-2xx answer to `stream` (so a watch that
is refused fails like any request) and returns every answer of `request` as a `Response` (the client
decides what is an error).
"""

from __future__ import annotations

import base64
import contextlib
import os
import ssl
import tempfile
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import aiohttp
import orjson
import yaml

from pyk8s.api.errors import StatusError

__all__ = ["HTTPTransport", "Response", "Transport", "iter_lines", "status_error"]

Query = Mapping[str, str]

# Kubernetes' StatusReason for a code, when the body is not a Status (a proxy or a crash answered).
_REASONS = {
    400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound", 405: "MethodNotAllowed",
    406: "NotAcceptable", 409: "Conflict", 410: "Expired", 413: "RequestEntityTooLarge",
    415: "UnsupportedMediaType", 422: "Invalid", 429: "TooManyRequests", 500: "InternalError",
    503: "ServiceUnavailable", 504: "Timeout",
}


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""

    def json(self) -> Any:
        return orjson.loads(self.body) if self.body else None


class Transport(Protocol):
    """The three operations the client needs from a connection to one API server.

    `path` is the URL path (`/api/v1/namespaces/default/pods`), `query` the decoded query parameters.
    """

    async def request(self, method: str, path: str, *, query: Query | None = None, body: bytes | None = None,
                      content_type: str | None = None) -> Response:
        """One request; every answer (also 4xx/5xx) is returned. Connection failures raise OSError or
        aiohttp.ClientError."""
        ...

    def stream(self, method: str, path: str, query: Query | None = None) -> AsyncIterator[bytes]:
        """A long-lived response (a watch) as its lines without the trailing newline. Raises
        StatusError when the answer is not 2xx. Closing the iterator (`aclose()`) ends the request;
        the iterator ends when the server ends the response."""
        ...

    async def close(self) -> None:
        ...


def status_error(status: int, body: bytes) -> StatusError:
    """The StatusError a non-2xx answer stands for: rebuilt from its Status body when it has one."""
    try:
        data = orjson.loads(body) if body else None
    except orjson.JSONDecodeError:
        data = None
    if isinstance(data, dict) and data.get("kind") == "Status":
        return status_error_from_object(data, status)
    text = body.decode("utf-8", "replace").strip()
    return StatusError(status, _REASONS.get(status, "Unknown"), text or f"the server answered {status}")


def status_error_from_object(obj: Mapping[str, Any], status: int = 500) -> StatusError:
    """A StatusError from a Status object (an answer's body or a watch ERROR event)."""
    code = obj.get("code") or status
    details = obj.get("details")
    return StatusError(int(code), str(obj.get("reason") or _REASONS.get(int(code), "Unknown")),
                       str(obj.get("message") or ""), dict(details) if isinstance(details, dict) else {})


async def iter_lines(chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """Split a byte stream on newlines; lines may be any length (a watch event can be a 1 MiB object)."""
    parts: list[bytes] = []  # the line begun in earlier chunks, joined once it ends
    async for chunk in chunks:
        if b"\n" not in chunk:
            parts.append(chunk)
            continue
        if parts:
            parts.append(chunk)
            chunk = b"".join(parts)
            parts.clear()
        *lines, rest = chunk.split(b"\n")
        for line in lines:
            if line.strip():
                yield line
        if rest:
            parts.append(rest)
    rest = b"".join(parts)
    if rest.strip():
        yield rest


def _b64_to_file(data: str, directory: str, name: str) -> str:
    path = os.path.join(directory, name)
    with open(path, "wb") as f:
        f.write(base64.b64decode(data))
    return path


class HTTPTransport:
    """HTTP(S) to one API server with a pooled aiohttp session (created on first use, in the running loop).

    Credentials: a bearer `token`, or a client certificate (`cert_file` + `key_file`). The server is
    verified against `ca_file`/`ca_data` (PEM); plain `http://` URLs are accepted for tests. With
    `unix_socket`, requests go over that socket (`pyk8s server`'s components use its loopback socket,
    naming themselves in `headers`).
    """

    def __init__(self, server_url: str, *, ca_file: str | None = None, ca_data: str | bytes | None = None,
                 cert_file: str | None = None, key_file: str | None = None, token: str | None = None,
                 insecure_skip_verify: bool = False, pool_size: int = 100,
                 user_agent: str = "pyk8s-client", unix_socket: str | None = None,
                 headers: Mapping[str, str] | None = None) -> None:
        self.server_url = server_url.rstrip("/")
        self._unix_socket = unix_socket
        self._headers = {"User-Agent": user_agent, "Accept": "application/json", **(headers or {})}
        if token:
            self._headers["Authorization"] = f"Bearer {token}"
        self._ssl: ssl.SSLContext | None = None
        if self.server_url.startswith("https://"):
            cadata = ca_data.decode() if isinstance(ca_data, bytes) else ca_data
            ctx = ssl.create_default_context(cafile=ca_file, cadata=cadata)
            if insecure_skip_verify:
                ctx.check_hostname = False
                ctx.verify_mode = ssl.CERT_NONE
            if cert_file:
                ctx.load_cert_chain(cert_file, key_file)
            self._ssl = ctx
        self._pool_size = pool_size
        self._session: aiohttp.ClientSession | None = None

    @classmethod
    def from_kubeconfig(cls, path: str, context: str | None = None) -> HTTPTransport:
        """The cluster and user of `context` (default: current-context) of a kubeconfig file."""
        with open(path, "rb") as f:
            cfg = yaml.safe_load(f) or {}
        base = os.path.dirname(os.path.abspath(path))

        def named(section: str, name: str) -> dict[str, Any]:
            for item in cfg.get(section) or []:
                if item.get("name") == name:
                    return dict(item.get(section[:-1]) or {})
            raise ValueError(f"kubeconfig: no {section[:-1]} named {name!r}")

        ctx = named("contexts", context or cfg.get("current-context") or "")
        cluster = named("clusters", ctx.get("cluster", ""))
        user = named("users", ctx["user"]) if ctx.get("user") else {}

        def rel(p: str | None) -> str | None:
            return os.path.join(base, p) if p else None

        token = user.get("token")
        if not token and user.get("tokenFile"):
            with open(rel(user["tokenFile"]) or "", encoding="utf-8") as tf:
                token = tf.read().strip()
        ca_data = cluster.get("certificate-authority-data")
        # ssl loads a client certificate only from files: inline data goes through a private temp dir
        # that is removed as soon as the context holds the key.
        with tempfile.TemporaryDirectory() as tmp:
            cert = rel(user.get("client-certificate"))
            key = rel(user.get("client-key"))
            if user.get("client-certificate-data"):
                cert = _b64_to_file(user["client-certificate-data"], tmp, "cert.pem")
            if user.get("client-key-data"):
                key = _b64_to_file(user["client-key-data"], tmp, "key.pem")
            return cls(cluster["server"], ca_file=rel(cluster.get("certificate-authority")),
                       ca_data=base64.b64decode(ca_data) if ca_data else None, cert_file=cert, key_file=key,
                       token=token, insecure_skip_verify=bool(cluster.get("insecure-skip-tls-verify")))

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector: aiohttp.BaseConnector
            if self._unix_socket:
                connector = aiohttp.UnixConnector(self._unix_socket, limit=self._pool_size)
            else:
                connector = aiohttp.TCPConnector(limit=self._pool_size, ssl=self._ssl if self._ssl else True)
            self._session = aiohttp.ClientSession(connector=connector, headers=self._headers,
                                                  json_serialize=lambda o: orjson.dumps(o).decode())
        return self._session

    async def request(self, method: str, path: str, *, query: Query | None = None, body: bytes | None = None,
                      content_type: str | None = None) -> Response:
        headers = {"Content-Type": content_type} if content_type else {}
        async with self._client().request(method, self.server_url + path, params=query, data=body,
                                          headers=headers) as resp:
            data = await resp.read()
            return Response(resp.status, dict(resp.headers), data)

    async def stream(self, method: str, path: str, query: Query | None = None) -> AsyncIterator[bytes]:
        # A watch lasts as long as the server keeps it: no total or read timeout, only a connect timeout.
        timeout = aiohttp.ClientTimeout(total=None, sock_read=None, connect=30)
        async with self._client().request(method, self.server_url + path, params=query,
                                          timeout=timeout) as resp:
            if resp.status >= 300:
                raise status_error(resp.status, await resp.read())
            async for line in iter_lines(resp.content.iter_any()):
                yield line

    async def close(self) -> None:
        if self._session is not None:
            with contextlib.suppress(Exception):
                await self._session.close()
            self._session = None
