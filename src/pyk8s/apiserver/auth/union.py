"""Tries each authenticator in turn, as Kubernetes' union authenticator: the first to name a user wins;
credentials nobody accepts, or none at all, are a 401. Every authenticated user is also in
`system:authenticated`."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from aiohttp import web

from pyk8s.api.errors import StatusError, unauthorized
from pyk8s.apiserver.interfaces import Authenticator, UserInfo

AUTHENTICATED = "system:authenticated"
UNAUTHENTICATED = "system:unauthenticated"
ANONYMOUS = UserInfo(name="system:anonymous", groups=(UNAUTHENTICATED,))
# Kubernetes lets anonymous callers read these (system:public-info-viewer); pass them as
# `anonymous_paths` to allow that — by default every anonymous request is refused.
PUBLIC_INFO_PATHS = ("/healthz", "/livez", "/readyz", "/version", "/version/")


def with_authenticated(user: UserInfo) -> UserInfo:
    if AUTHENTICATED in user.groups or user.name == ANONYMOUS.name:
        return user
    return UserInfo(name=user.name, uid=user.uid, groups=(*user.groups, AUTHENTICATED), extra=user.extra)


class UnionAuthenticator:
    def __init__(self, authenticators: Sequence[Authenticator], *,
                 anonymous_paths: Iterable[str] = ()) -> None:
        self._authenticators = tuple(authenticators)
        self._anonymous_paths = frozenset(anonymous_paths)

    async def authenticate(self, request: web.Request) -> UserInfo:
        error: StatusError | None = None
        for authenticator in self._authenticators:
            try:
                user = await authenticator.authenticate(request)
            except StatusError as e:
                if e.code != 401:
                    raise
                error = error or e
                continue
            if user is not None:
                return with_authenticated(user)
        if error is not None:
            raise error
        if request.path in self._anonymous_paths and "Authorization" not in request.headers:
            return ANONYMOUS
        raise unauthorized()
