"""`GET /cacerts`: the cluster CA certificate (PEM), served without authentication, as k3s serves it.

A joining agent fetches it over an unverified connection and trusts it only when its SHA-256 matches the
hash in the join token (`K10<hash>::<id>.<secret>`); from then on every connection verifies against it.
"""

from __future__ import annotations

from aiohttp import web

__all__ = ["add_routes"]


def add_routes(app: web.Application, ca_pem: bytes) -> None:
    async def cacerts(_: web.Request) -> web.Response:
        return web.Response(body=ca_pem, content_type="text/plain")

    app.router.add_get("/cacerts", cacerts)
