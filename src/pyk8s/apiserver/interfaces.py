"""The seams between the request pipeline and its pluggable parts: authentication, authorization,
admission, and the special create-only endpoints (TokenRequest, TokenReview, access reviews).

The HTTP core (`pyk8s.apiserver.app`) calls these; `pyk8s.apiserver.auth` and friends implement them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from aiohttp import web

from pyk8s.api.resource import ResourceInfo

Obj = dict[str, Any]


@dataclass(frozen=True, slots=True)
class UserInfo:
    name: str
    uid: str = ""
    groups: tuple[str, ...] = ()
    extra: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def to_dict(self) -> Obj:
        out: Obj = {"username": self.name, "groups": list(self.groups)}
        if self.uid:
            out["uid"] = self.uid
        if self.extra:
            out["extra"] = {k: list(v) for k, v in self.extra.items()}
        return out


@dataclass(frozen=True, slots=True)
class RequestInfo:
    """What a request asks for, parsed from its method and path as Kubernetes' RequestInfoFactory does."""

    path: str
    # get, list, watch, create, update, patch, delete, deletecollection; or the HTTP verb lowercased
    verb: str
    is_resource_request: bool
    api_prefix: str = ""  # "api" or "apis"
    api_group: str = ""
    api_version: str = ""
    namespace: str = ""
    resource: str = ""
    subresource: str = ""
    name: str = ""


@dataclass(frozen=True, slots=True)
class Attributes:
    """What the authorizer decides on."""

    user: UserInfo
    verb: str
    is_resource_request: bool
    path: str = ""
    api_group: str = ""
    api_version: str = ""
    namespace: str = ""
    resource: str = ""
    subresource: str = ""
    name: str = ""


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    reason: str = ""
    denied: bool = False  # an explicit deny stops the authorizer chain


class Authenticator(Protocol):
    async def authenticate(self, request: web.Request) -> UserInfo | None:
        """The caller's identity, or None when the request carries no credentials this authenticator
        recognises. Raise StatusError(401) for credentials that are present but invalid."""
        ...


class Authorizer(Protocol):
    async def authorize(self, attributes: Attributes) -> Decision: ...


@dataclass(frozen=True, slots=True)
class AdmissionRequest:
    operation: str  # CREATE, UPDATE, DELETE, CONNECT
    resource: ResourceInfo
    subresource: str
    namespace: str
    name: str
    obj: Obj | None  # the incoming object (mutating plugins may change it in place)
    old: Obj | None
    user: UserInfo
    dry_run: bool


class AdmissionPlugin(Protocol):
    name: str

    async def admit(self, request: AdmissionRequest) -> None:
        """Mutate request.obj in place if this is a mutating plugin; raise StatusError to refuse."""
        ...

    async def validate(self, request: AdmissionRequest) -> None:
        """Refuse with StatusError; never mutate."""
        ...


# A create-only endpoint whose result is computed, not stored (TokenReview, SubjectAccessReview,
# serviceaccounts/token …). Called with the user, the namespace and name from the URL, and the body.
VirtualCreate = Callable[[UserInfo, str, str, Obj], Awaitable[Obj]]

# Read access to the watch cache for components inside the API server (RBAC reads roles and bindings):
# resource → its current objects.
ObjectLister = Callable[[ResourceInfo], Iterable[Obj]]
