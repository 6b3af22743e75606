"""The Priority admission plugin: alone on requests, and in a real API server's chain."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pytest

from pyk8s.api import catalog
from pyk8s.api.errors import StatusError
from pyk8s.api.resource import ResourceInfo
from pyk8s.apiserver.admission_priority import PriorityAdmission
from pyk8s.apiserver.interfaces import AdmissionPlugin, AdmissionRequest, UserInfo
from pyk8s.client.client import Client
from pyk8s.client.transport import HTTPTransport
from tests.support.apiserver import start_server

PODS = catalog.lookup("", "v1", "pods")
PCS = catalog.lookup("scheduling.k8s.io", "v1", "priorityclasses")
assert PODS is not None and PCS is not None


def _pc(name: str, value: int, default: bool = False, policy: str | None = None) -> dict[str, Any]:
    pc: dict[str, Any] = {
        "apiVersion": "scheduling.k8s.io/v1",
        "kind": "PriorityClass",
        "metadata": {"name": name},
        "value": value,
        "globalDefault": default,
    }
    if policy:
        pc["preemptionPolicy"] = policy
    return pc


def _plugin(*classes: dict[str, Any]) -> AdmissionPlugin:
    def lister(info: ResourceInfo) -> Iterable[dict[str, Any]]:
        assert info is PCS
        return classes

    return PriorityAdmission(lister)


def _req(
    obj: dict[str, Any],
    operation: str = "CREATE",
    old: dict[str, Any] | None = None,
    resource: ResourceInfo = PODS,
    name: str = "p",
) -> AdmissionRequest:  # type: ignore[assignment]
    return AdmissionRequest(operation, resource, "", "default", name, obj, old, UserInfo("u"), False)


def _pod(**spec: Any) -> dict[str, Any]:
    return {"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "busybox"}], **spec}}


async def test_class_name_resolves_priority_and_policy() -> None:
    plugin = _plugin(_pc("high", 1000, policy="Never"))
    pod = _pod(priorityClassName="high")
    await plugin.admit(_req(pod))
    assert (pod["spec"]["priority"], pod["spec"]["preemptionPolicy"]) == (1000, "Never")


async def test_default_class_or_zero() -> None:
    pod = _pod()
    await _plugin().admit(_req(pod))
    assert (
        pod["spec"].get("priorityClassName"),
        pod["spec"]["priority"],
        pod["spec"]["preemptionPolicy"],
    ) == (None, 0, "PreemptLowerPriority")
    pod = _pod()
    await _plugin(_pc("low", 5), _pc("dflt", 100, default=True)).admit(_req(pod))
    assert (pod["spec"]["priorityClassName"], pod["spec"]["priority"]) == ("dflt", 100)


async def test_built_in_system_classes() -> None:
    pod = _pod(priorityClassName="system-node-critical")
    await _plugin().admit(_req(pod))
    assert pod["spec"]["priority"] == 2000001000
    pod = _pod(priorityClassName="system-cluster-critical")
    await _plugin().admit(_req(pod))
    assert pod["spec"]["priority"] == 2000000000


async def test_refusals_with_kubernetes_messages() -> None:
    with pytest.raises(StatusError) as e:
        await _plugin().admit(_req(_pod(priorityClassName="nope")))
    assert e.value.code == 403
    assert e.value.message == 'pods "p" is forbidden: no PriorityClass with name nope was found'
    with pytest.raises(StatusError) as e:
        await _plugin(_pc("high", 1000)).admit(_req(_pod(priorityClassName="high", priority=7)))
    assert e.value.message == (
        'pods "p" is forbidden: the integer value of priority (7) must not be provided in pod spec; priority '
        "admission controller computed 1000 from the given PriorityClass name"
    )
    # A matching value is allowed.
    ok = _pod(priorityClassName="high", priority=1000)
    await _plugin(_pc("high", 1000)).admit(_req(ok))


async def test_update_keeps_priority() -> None:
    old = _pod(priority=50, preemptionPolicy="Never")
    new = _pod()
    await _plugin().admit(_req(new, "UPDATE", old))
    assert (new["spec"]["priority"], new["spec"]["preemptionPolicy"]) == (50, "Never")


async def test_only_one_global_default() -> None:
    plugin = _plugin(_pc("dflt", 100, default=True))
    with pytest.raises(StatusError) as e:
        await plugin.validate(_req(_pc("other", 1, default=True), resource=PCS, name="other"))
    assert e.value.message == (
        'priorityclasses.scheduling.k8s.io "other" is forbidden: PriorityClass dflt is '
        "already marked as default. Only one default can exist"
    )
    await plugin.validate(_req(_pc("dflt", 200, default=True), "UPDATE", resource=PCS, name="dflt"))
    await plugin.validate(_req(_pc("other", 1), resource=PCS, name="other"))


async def test_in_the_api_server() -> None:
    holder: list[Any] = []
    plugin = PriorityAdmission(lambda info: holder[0].list_objects(info))
    server = await start_server(admission=[plugin])
    holder.append(server.api)
    client = Client(HTTPTransport(server.url))
    try:
        await client.create(PCS, _pc("high", 1000))
        created = await client.create(
            PODS, {**_pod(priorityClassName="high"), "metadata": {"name": "p"}}, "default"
        )
        assert created["spec"]["priority"] == 1000
        with pytest.raises(StatusError) as e:
            await client.create(
                PODS, {**_pod(priorityClassName="missing"), "metadata": {"name": "q"}}, "default"
            )
        assert (e.value.code, e.value.message) == (
            403,
            'pods "q" is forbidden: no PriorityClass with name missing was found',
        )
    finally:
        await client.close()
        await server.stop()
        await server.store.close()
