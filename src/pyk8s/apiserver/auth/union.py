"""Tries each authenticator in turn, as Kubernetes' union authenticator: the first to name a user wins.
Credentials that nobody accepts are a 401; a request with no credentials at all yields None, and the
HTTP core answers 401 (or treats it as system:anonymous on its public health paths). Every authenticated
user is also in `system:authenticated`."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from aiohttp import web

from pyk8s.api.errors import StatusError, unauthorized
from pyk8s.apiserver.interfaces import Authenticator, UserInfo

AUTHENTICATED = "system:authenticated"
UNAUTHENTICATED = "system:unauthenticated"
ANONYMOUS = UserInfo(name="system:anonymous", groups=(UNAUTHENTICATED,))
# The paths Kubernetes lets anonymous callers read (system:public-info-viewer); pass them as
# `anonymous_paths` to answer there with system:anonymous instead of None.
PUBLIC_INFO_PATHS = ("/healthz", "/livez", "/readyz", "/version", "/version/")


def with_authenticated(user: UserInfo) -> UserInfo:
    if AUTHENTICATED in user.groups or user.name == ANONYMOUS.name:
        return user
    return UserInfo(name=user.name, uid=user.uid, groups=(*user.groups, AUTHENTICATED), extra=user.extra)


class UnionAuthenticator:
    def __init__(
        self, authenticators: Sequence[Authenticator], *, anonymous_paths: Iterable[str] = ()
    ) -> None:
        self._authenticators = tuple(authenticators)
        self._anonymous_paths = frozenset(anonymous_paths)

    async def authenticate(self, request: web.Request) -> UserInfo | None:
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
        if "Authorization" in request.headers:
            raise unauthorized()  # a credential no authenticator recognises is not anonymous
        if request.path in self._anonymous_paths:
            return ANONYMOUS
        return None
