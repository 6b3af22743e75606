"""An HTTPS server on loopback that answers every GET with the user an authenticator finds (a 401 Status
when it finds none, as the HTTP core does), for tests of authentication over real TLS."""

from __future__ import annotations

import contextlib
import ssl
from collections.abc import AsyncIterator

from aiohttp import web

from pyk8s.api.errors import StatusError, unauthorized
from pyk8s.apiserver.interfaces import Authenticator


@contextlib.asynccontextmanager
async def whoami_server(authn: Authenticator, ssl_context: ssl.SSLContext) -> AsyncIterator[str]:
    """Yield the server's base URL (no trailing slash)."""

    async def whoami(request: web.Request) -> web.Response:
        try:
            user = await authn.authenticate(request)
            if user is None:
                raise unauthorized()
        except StatusError as e:
            return web.json_response(e.to_status(), status=e.code)
        return web.json_response(user.to_dict())

    app = web.Application()
    app.router.add_get("/{tail:.*}", whoami)
    runner = web.AppRunner(app)
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ssl_context).start()
        yield f"https://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()
