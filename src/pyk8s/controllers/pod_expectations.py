"""Pods of a controller that counts its creates and deletes in ControllerExpectations (DaemonSet, Job).

The informer's handlers observe an expectation and queue the owner's key for each event of a pod it owns;
PodControl (Kubernetes' RealPodControl) creates and deletes the pods, observing the expectation itself
when a write fails (no event will come for it) and recording SuccessfulCreate/FailedCreate and
SuccessfulDelete/FailedDelete on the owner.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable

from pyk8s.api.errors import StatusError
from pyk8s.api.resource import ResourceInfo
from pyk8s.client.cache import DeletedFinalStateUnknown
from pyk8s.client.client import Client, Obj
from pyk8s.client.events import NORMAL, WARNING, EventRecorder
from pyk8s.client.expectations import ControllerExpectations
from pyk8s.client.informer import SharedInformer
from pyk8s.client.workqueue import WorkQueue


def handle_owned_pods(pods: SharedInformer, owner_key: Callable[[Obj], str | None],
                      expectations: ControllerExpectations, queue: WorkQueue[str]) -> None:
    """Register on `pods` the handlers for the pods whose controller `owner_key` names (None: not ours)."""

    def added(pod: Obj) -> None:
        if key := owner_key(pod):
            expectations.creation_observed(key)
            queue.add(key)

    def updated(old: Obj, new: Obj) -> None:
        key = owner_key(new)
        if key is None:
            return
        if new["metadata"].get("deletionTimestamp") and not old["metadata"].get("deletionTimestamp"):
            expectations.deletion_observed(key)  # a graceful delete has begun: that is what we asked
        queue.add(key)

    def deleted(obj: Obj | DeletedFinalStateUnknown) -> None:
        pod = obj.obj if isinstance(obj, DeletedFinalStateUnknown) else obj
        if key := owner_key(pod):
            if not pod["metadata"].get("deletionTimestamp"):
                expectations.deletion_observed(key)
            queue.add(key)

    pods.add_handler(added, updated, deleted)


class PodControl:
    def __init__(self, client: Client, pods: ResourceInfo, recorder: EventRecorder,
                 expectations: ControllerExpectations) -> None:
        self.client, self.pods, self.recorder, self.expectations = client, pods, recorder, expectations

    async def create(self, owner: Obj, key: str, new_pod: Callable[[], Obj]) -> None:
        try:
            pod = await self.client.create(self.pods, new_pod())
        except StatusError as e:
            self.expectations.creation_observed(key)
            self.recorder.record(owner, WARNING, "FailedCreate", f"Error creating: {e.message}")
            raise
        self.recorder.record(owner, NORMAL, "SuccessfulCreate", f"Created pod: {pod['metadata']['name']}")

    async def delete(self, owner: Obj, key: str, pod: Obj) -> None:
        name = pod["metadata"]["name"]
        try:
            await self.client.delete(self.pods, name, pod["metadata"]["namespace"])
        except StatusError as e:
            self.expectations.deletion_observed(key)
            if e.code == 404:
                return
            self.recorder.record(owner, WARNING, "FailedDelete", f"Error deleting: {e.message}")
            raise
        self.recorder.record(owner, NORMAL, "SuccessfulDelete", f"Deleted pod: {name}")


async def run_all(writes: Iterable[Awaitable[None]]) -> None:
    """Run every write to its end, then raise the first failure, if any."""
    for r in await asyncio.gather(*writes, return_exceptions=True):
        if isinstance(r, BaseException):
            raise r
