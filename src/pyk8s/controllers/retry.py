"""Conflicts: a read-modify-write retried with a fresh read (client-go's retry.RetryOnConflict around a Get),
and a sync that met a 409 Conflict run again shortly."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from pyk8s.api.errors import StatusError
from pyk8s.api.resource import ResourceInfo
from pyk8s.client.client import Client, Obj

log = logging.getLogger(__name__)

ATTEMPTS = 5
CONFLICT_RETRY = 0.05  # seconds before a sync that met a 409 Conflict runs again


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


async def requeue_on_conflict(controller: str, key: str, sync: Awaitable[float | None]) -> float | None:
    """Await a controller's sync of `key`; a 409 Conflict asks for the key again in CONFLICT_RETRY seconds."""
    try:
        return await sync
    except StatusError as e:
        if e.code != 409:
            raise
        # A write based on a cache that had not yet caught up: normal right after our own writes.
        log.debug("%s: %s: %s; retrying", controller, key, e.message)
        return CONFLICT_RETRY
