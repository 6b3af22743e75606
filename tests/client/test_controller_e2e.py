"""The pieces together, in the shape of DESIGN.md's controller: informers feed a queue, reconcile reads
listers and indexes, expectations cover its own creates. The controller keeps, for every ConfigMap
labelled `mirror=yes`, an owned copy `<name>-copy`."""

from __future__ import annotations

import asyncio
from typing import Any

from pyk8s.api.errors import StatusError
from pyk8s.client.cache import OWNER_UID_INDEX, DeletedFinalStateUnknown, owner_uid_index, split_key
from pyk8s.client.client import Client
from pyk8s.client.controller import Controller
from pyk8s.client.expectations import ControllerExpectations
from pyk8s.client.informer import SharedInformerFactory
from tests.client.conftest import CONFIGMAPS, cm, eventually


class Mirror(Controller):
    name = "mirror"

    def __init__(self, client: Client, factory: SharedInformerFactory) -> None:
        super().__init__(workers=2)
        self.client = client
        self.sources = factory.informer(CONFIGMAPS, "default", label_selector="mirror=yes")
        self.copies = factory.informer(CONFIGMAPS, "default", label_selector="copy=yes")
        self.copies.add_index(OWNER_UID_INDEX, owner_uid_index)
        self.expectations = ControllerExpectations()
        self.creates = 0
        self.sources.add_handler(self.enqueue, lambda old, new: self.enqueue(new), self.enqueue)
        self.copies.add_handler(self._copy_added, None, self._copy_deleted)

    def _owner_key(self, obj: dict[str, Any] | DeletedFinalStateUnknown) -> str | None:
        o = obj.obj if isinstance(obj, DeletedFinalStateUnknown) else obj
        refs = o["metadata"].get("ownerReferences") or []
        return f"{o['metadata']['namespace']}/{refs[0]['name']}" if refs else None

    def _copy_added(self, obj: dict[str, Any]) -> None:
        if key := self._owner_key(obj):
            self.expectations.creation_observed(key)
            self.queue.add(key)

    def _copy_deleted(self, obj: dict[str, Any] | DeletedFinalStateUnknown) -> None:
        if key := self._owner_key(obj):
            self.queue.add(key)

    async def reconcile(self, key: str) -> float | None:
        ns, name = split_key(key)
        source = self.sources.lister.get(name, ns)
        if source is None or not self.expectations.satisfied(key):
            return None
        if self.copies.lister.by_index(OWNER_UID_INDEX, source["metadata"]["uid"]):
            return None
        copy = cm(f"{name}-copy", copy="yes")
        copy["metadata"]["ownerReferences"] = [  # type: ignore[index]
            {"apiVersion": "v1", "kind": "ConfigMap", "name": name, "uid": source["metadata"]["uid"]}]
        self.expectations.expect_creations(key, 1)
        try:
            await self.client.create(CONFIGMAPS, copy)
        except StatusError:
            self.expectations.lower_expectations(key, 1, 0)
            raise
        self.creates += 1
        return None


async def test_mirror_controller(client: Client) -> None:
    factory = SharedInformerFactory(client)
    ctrl = Mirror(client, factory)
    await client.create(CONFIGMAPS, cm("one", mirror="yes"))
    factory.start()
    run = asyncio.create_task(ctrl.run())
    try:
        async with asyncio.timeout(5):
            await factory.wait_for_sync()
        await client.create(CONFIGMAPS, cm("two", mirror="yes"))
        await client.create(CONFIGMAPS, cm("ignored"))
        for i in range(5):  # updates of a source while its copy is being made must not make a second one
            await client.patch(CONFIGMAPS, "two", {"data": {"k": str(i)}}, "merge", "default")

        def names() -> set[str]:
            return {o["metadata"]["name"] for o in ctrl.copies.lister.list()}

        await eventually(lambda: names() == {"one-copy", "two-copy"}, what="both copies")
        assert ctrl.creates == 2

        await client.delete(CONFIGMAPS, "one-copy", "default")
        await eventually(lambda: ctrl.creates == 3 and names() == {"one-copy", "two-copy"},
                         what="the deleted copy made again")
        listed = await client.list(CONFIGMAPS, "default", label_selector="copy=yes")
        assert sorted(o["metadata"]["name"] for o in listed["items"]) == ["one-copy", "two-copy"]
    finally:
        ctrl.shutdown()
        async with asyncio.timeout(5):
            await run
        await factory.stop()
