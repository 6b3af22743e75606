"""User impersonation (`kubectl --as`, `--as-group`, `--as-uid`), as Kubernetes' impersonation filter:
the caller is authenticated first, then every requested identity is authorized with the `impersonate`
verb — users, groups, serviceaccounts (by namespace and name), uids and userextras/<key> — and the
request proceeds as the impersonated user. Wraps an authenticator, so it needs no hook in the core."""

from __future__ import annotations

from urllib.parse import unquote

from aiohttp import web

from pyk8s.api.errors import StatusError, bad_request
from pyk8s.apiserver.auth.tokens import service_account_groups, split_service_account_username
from pyk8s.apiserver.auth.union import ANONYMOUS, AUTHENTICATED, UNAUTHENTICATED
from pyk8s.apiserver.interfaces import Attributes, Authenticator, Authorizer, UserInfo

USER, GROUP, UID, EXTRA_PREFIX = (
    "Impersonate-User",
    "Impersonate-Group",
    "Impersonate-Uid",
    "Impersonate-Extra-",
)
AUTHN = "authentication.k8s.io"


def _forbidden(
    caller: UserInfo, resource: str, group: str, name: str, namespace: str = "", subresource: str = ""
) -> StatusError:
    qualified = f"{resource}.{group}" if group else resource
    full = f"{resource}/{subresource}" if subresource else resource
    scope = f'in the namespace "{namespace}"' if namespace else "at the cluster scope"
    return StatusError(
        403,
        "Forbidden",
        f'{qualified} "{name}" is forbidden: User "{caller.name}" cannot impersonate resource '
        f'"{full}" in API group "{group}" {scope}',
        {"name": name, "group": group, "kind": resource} if group else {"name": name, "kind": resource},
    )


class ImpersonatingAuthenticator:
    def __init__(self, inner: Authenticator, authorizer: Authorizer) -> None:
        self._inner = inner
        self._authorizer = authorizer

    async def _check(
        self,
        caller: UserInfo,
        resource: str,
        group: str,
        name: str,
        namespace: str = "",
        subresource: str = "",
    ) -> None:
        decision = await self._authorizer.authorize(
            Attributes(
                user=caller,
                verb="impersonate",
                is_resource_request=True,
                api_group=group,
                api_version="v1",
                namespace=namespace,
                resource=resource,
                subresource=subresource,
                name=name,
            )
        )
        if not decision.allowed:
            raise _forbidden(caller, resource, group, name, namespace, subresource)

    async def authenticate(self, request: web.Request) -> UserInfo | None:
        caller = await self._inner.authenticate(request)
        headers = request.headers
        extra_keys = [k for k in headers if k.lower().startswith(EXTRA_PREFIX.lower())]
        if USER not in headers and GROUP not in headers and UID not in headers and not extra_keys:
            return caller
        if caller is None:
            return None  # the core answers 401 before anything is impersonated
        name = headers.get(USER, "")
        if not name:
            raise bad_request("requested impersonation of groups, uid or extra without impersonating a user")

        sa = split_service_account_username(name)
        if sa is not None:
            await self._check(caller, "serviceaccounts", "", sa[1], namespace=sa[0])
        else:
            await self._check(caller, "users", "", name)
        groups: list[str] = []
        for group in headers.getall(GROUP, []):
            await self._check(caller, "groups", "", group)
            groups.append(group)
        uid = headers.get(UID, "")
        if uid:
            await self._check(caller, "uids", AUTHN, uid)
        extra: dict[str, tuple[str, ...]] = {}
        for header in dict.fromkeys(extra_keys):
            key = unquote(header[len(EXTRA_PREFIX) :]).lower()
            values = tuple(headers.getall(header))
            for value in values:
                await self._check(caller, "userextras", AUTHN, value, subresource=key)
            extra[key] = values

        if sa is not None and not groups:
            groups = list(service_account_groups(sa[0]))  # a service account's groups are fixed
        if name == ANONYMOUS.name:
            if UNAUTHENTICATED not in groups:
                groups.append(UNAUTHENTICATED)
        elif AUTHENTICATED not in groups and UNAUTHENTICATED not in groups:
            groups.append(AUTHENTICATED)
        return UserInfo(name=name, uid=uid, groups=tuple(groups), extra=extra)
