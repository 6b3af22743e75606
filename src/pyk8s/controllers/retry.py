"""Read-modify-write with a fresh read on each conflict (client-go's retry.RetryOnConflict around a Get)."""

from __future__ import annotations

from collections.abc import Callable

from pyk8s.api.errors import StatusError
from pyk8s.api.resource import ResourceInfo
from pyk8s.client.client import Client, Obj

ATTEMPTS = 5


async def update_fresh(client: Client, info: ResourceInfo, name: str, namespace: str | None,
                       mutate: Callable[[Obj], bool], *, what: str, subresource: str | None = None) -> bool:
    """Read the object, let `mutate` change it (it returns False when there is nothing to change), write
    it back; True once written. An object that is gone ends it quietly (False); `what` names the object
    in the error raised when every attempt conflicted."""
    for _ in range(ATTEMPTS):
        try:
            obj = await client.get(info, name, namespace)
        except StatusError as e:
            if e.code == 404:
                return False
            raise
        if not mutate(obj):
            return False
        try:
            await client.update(info, obj, namespace, subresource=subresource)
            return True
        except StatusError as e:
            if e.code == 404:
                return False
            if e.code != 409:
                raise
    raise RuntimeError(f"{what} kept conflicting")
