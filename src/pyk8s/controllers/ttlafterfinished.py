"""Cleaning up finished Jobs (Kubernetes' ttl-after-finished controller).

A Job with `spec.ttlSecondsAfterFinished` whose Complete or Failed condition is True is deleted once that
many seconds have passed since it finished. Before deleting, the Job is read again from the API server, as
Kubernetes does, so a TTL changed meanwhile is honoured; the delete is conditional on the Job's uid and
uses foreground propagation (as Kubernetes'), so its pods go before the Job does.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from pyk8s.api.catalog import require
from pyk8s.api.errors import StatusError
from pyk8s.client.cache import split_key
from pyk8s.client.controller import Controller
from pyk8s.controllers.manager import ControllerContext
from pyk8s.controllers.timestamps import epoch

__all__ = ["TTLAfterFinishedController", "expire_at"]

log = logging.getLogger(__name__)


JOBS = require("batch", "Job")

Obj = dict[str, Any]


def expire_at(job: Obj) -> float | None:
    """When the Job's TTL runs out (epoch seconds); None if it has no TTL, is not finished, or is being
    deleted already."""
    ttl = (job.get("spec") or {}).get("ttlSecondsAfterFinished")
    if ttl is None or (job.get("metadata") or {}).get("deletionTimestamp"):
        return None
    finished = None
    for c in (job.get("status") or {}).get("conditions") or []:
        if c.get("type") in ("Complete", "Failed") and c.get("status") == "True":
            finished = epoch(c.get("lastTransitionTime"))
            if finished is None:  # a finish without a time: the Job's own completion time, or now
                finished = epoch((job.get("status") or {}).get("completionTime")) or time.time()
            break
    if finished is None:
        return None
    return finished + float(ttl)


def _seconds_left(job: Obj) -> float | None:
    """Seconds until `job` expires (<= 0: it is due); None when it does not expire."""
    at = expire_at(job)
    return None if at is None else at - time.time()


class TTLAfterFinishedController(Controller):
    name = "ttl-after-finished"

    def __init__(self, ctx: ControllerContext) -> None:
        super().__init__(workers=min(ctx.options.workers, 5))
        self.client = ctx.client
        inf = ctx.informers.informer(JOBS)
        self.jobs = inf.lister
        inf.add_handler(self._maybe_enqueue, lambda _old, new: self._maybe_enqueue(new))

    def _maybe_enqueue(self, job: Obj) -> None:
        if expire_at(job) is not None:
            self.enqueue(job)

    async def reconcile(self, key: str) -> float | None:
        ns, name = split_key(key)
        job = self.jobs.get(name, ns)
        if job is None:
            return None
        left = _seconds_left(job)
        if left is None or left > 0:
            return left
        try:
            fresh = await self.client.get(JOBS, name, ns)
        except StatusError as e:
            if e.code == 404:
                return None
            raise
        left = _seconds_left(fresh)
        if left is None or left > 0:
            return left
        uid = (fresh.get("metadata") or {}).get("uid")
        log.info("ttl-after-finished: deleting job %s", key)
        try:
            await self.client.delete(JOBS, name, ns, propagation_policy="Foreground",
                                     preconditions={"uid": uid} if uid else None)
        except StatusError as e:
            if e.code not in (404, 409):
                raise
        return None
