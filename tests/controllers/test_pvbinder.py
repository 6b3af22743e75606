"""persistentvolume-binder: claims bound to the smallest fitting volume, both sides Bound; pre-bound
claims and volumes; release; never two claims on one volume."""

from __future__ import annotations

from typing import Any

from pyk8s.api.resource import ResourceInfo
from pyk8s.client.client import Client
from pyk8s.controllers.manager import REGISTRY
from pyk8s.controllers.pvbinder import PersistentVolumeBinder, fits
from tests.controllers._housekeeping import running, until
from tests.support.apiserver import api_server, info

PVS = info("", "persistentvolumes")
PVCS = info("", "persistentvolumeclaims")


def _pv(name: str, size: str, cls: str = "manual", modes: tuple[str, ...] = ("ReadWriteOnce",),
        **spec: Any) -> dict[str, Any]:
    return {"metadata": {"name": name, "labels": {"size": size}}, "spec": {
        "capacity": {"storage": size}, "accessModes": list(modes), "storageClassName": cls,
        "hostPath": {"path": f"/srv/{name}"}, **spec}}


def _pvc(name: str, size: str, cls: str = "manual", modes: tuple[str, ...] = ("ReadWriteOnce",),
         **spec: Any) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": "default"}, "spec": {
        "accessModes": list(modes), "resources": {"requests": {"storage": size}}, "storageClassName": cls,
        **spec}}


async def _phase(client: Client, info_: ResourceInfo, name: str, ns: str | None = None) -> str:
    obj = await client.get(info_, name, ns)
    return str((obj.get("status") or {}).get("phase"))


def test_fits() -> None:
    assert fits(_pv("a", "2Gi"), _pvc("c", "1Gi"))
    assert not fits(_pv("a", "512Mi"), _pvc("c", "1Gi"))
    assert not fits(_pv("a", "2Gi", cls="fast"), _pvc("c", "1Gi"))
    assert not fits(_pv("a", "2Gi"), _pvc("c", "1Gi", modes=("ReadWriteMany",)))
    assert fits(_pv("a", "2Gi", modes=("ReadWriteOnce", "ReadOnlyMany")),
                _pvc("c", "1Gi", modes=("ReadOnlyMany",)))
    assert not fits(_pv("a", "2Gi"), _pvc("c", "1Gi", selector={"matchLabels": {"size": "9Gi"}}))
    assert "persistentvolume-binder" in REGISTRY


async def test_binds_smallest_fitting_volume_both_sides() -> None:
    async with api_server() as srv, running(srv, PersistentVolumeBinder) as (client, _):
        for pv in (_pv("big", "10Gi"), _pv("small", "1Gi"), _pv("medium", "2Gi"),
                   _pv("other", "1Gi", "fast")):
            await client.create(PVS, pv)
        await until(lambda: _all_available(client), what="volumes Available")
        await client.create(PVCS, _pvc("claim", "1500Mi"))
        await until(lambda: _is_bound(client, "claim", "medium"), what="claim bound to medium")
        pv = await client.get(PVS, "medium")
        claim = await client.get(PVCS, "claim", "default")
        assert pv["spec"]["claimRef"]["uid"] == claim["metadata"]["uid"]
        assert pv["status"]["phase"] == "Bound"
        assert claim["status"] == {"phase": "Bound", "accessModes": ["ReadWriteOnce"],
                                   "capacity": {"storage": "2Gi"}}
        assert claim["metadata"]["annotations"]["pv.kubernetes.io/bind-completed"] == "yes"

        # Two claims, one fitting volume left of their class: exactly one gets it.
        await client.create(PVCS, _pvc("x", "5Gi"))
        await client.create(PVCS, _pvc("y", "5Gi"))
        await until(lambda: _phase_is(client, "big", "Bound"), what="big bound")
        await until(lambda: _one_of(client, "x", "y"), what="one claim of x, y bound")

        # Deleting the claim releases the volume (Retain).
        await client.delete(PVCS, "claim", "default")
        await until(lambda: _phase_is(client, "medium", "Released"), what="medium Released")


async def test_pre_bound_claim_and_volume() -> None:
    async with api_server() as srv, running(srv, PersistentVolumeBinder) as (client, _):
        await client.create(PVS, _pv("a", "1Gi"))
        await client.create(PVS, _pv("b", "1Gi", claimRef={"name": "wants-b", "namespace": "default"}))
        await client.create(PVCS, _pvc("named", "1Gi", volumeName="a"))
        await until(lambda: _is_bound(client, "named", "a"), what="named claim bound to a")
        await client.create(PVCS, _pvc("wants-b", "1Gi"))
        await until(lambda: _is_bound(client, "wants-b", "b"), what="pre-bound volume b taken by its claim")


async def _all_available(client: Client) -> bool:
    items = (await client.list(PVS))["items"]
    return bool(items) and all((i.get("status") or {}).get("phase") == "Available" for i in items)


async def _is_bound(client: Client, claim: str, volume: str) -> bool:
    pvc = await client.get(PVCS, claim, "default")
    return (pvc.get("status") or {}).get("phase") == "Bound" and pvc["spec"].get("volumeName") == volume


async def _phase_is(client: Client, pv: str, phase: str) -> bool:
    return await _phase(client, PVS, pv) == phase


async def _one_of(client: Client, a: str, b: str) -> bool:
    phases = [await _phase(client, PVCS, n, "default") for n in (a, b)]
    return sorted(phases) == ["Bound", "Pending"]
