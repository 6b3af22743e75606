"""Authentication of the components inside `pyk8s server` (scheduler, controllers) on the API's Unix socket.

The socket lives in the data dir (0700) with mode 0600, so only a process that could read the CA key
can connect. Only on that socket, the caller names itself with X-Remote-User / X-Remote-Group, as
Kubernetes' request-header authentication trusts its front proxy; on TCP those headers mean nothing.
"""

from __future__ import annotations

import socket

from aiohttp import web

from pyk8s.api.errors import unauthorized
from pyk8s.apiserver.interfaces import UserInfo

USER_HEADER = "X-Remote-User"
GROUP_HEADER = "X-Remote-Group"


def _is_unix(request: web.Request) -> bool:
    transport = request.transport
    sock = transport.get_extra_info("socket") if transport is not None else None
    return sock is not None and sock.family == socket.AF_UNIX


class LoopbackAuthenticator:
    async def authenticate(self, request: web.Request) -> UserInfo | None:
        if not _is_unix(request):
            return None
        name = request.headers.get(USER_HEADER, "")
        if not name:
            raise unauthorized(f"requests on the loopback socket must name their user in {USER_HEADER}")
        groups = (g.strip() for value in request.headers.getall(GROUP_HEADER, ()) for g in value.split(","))
        return UserInfo(name=name, groups=tuple(g for g in groups if g))
