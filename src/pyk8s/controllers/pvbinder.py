"""A minimal PersistentVolume binder (the binding half of Kubernetes' persistentvolume-binder).

A pending claim is bound to the smallest Available volume that fits it: same storageClassName, every
access mode the claim asks for, enough capacity, the same volumeMode, the claim's selector; a claim that
names its volume (spec.volumeName) or a volume pre-bound to a claim (spec.claimRef) is honoured. Binding
writes the volume first (claimRef, then phase Bound), then the claim (volumeName, then phase Bound with the
volume's capacity and access modes) — each write conditional on the resourceVersion this controller saw,
so two claims can never take one volume. New volumes become Available; a volume whose claim is gone is
Released (reclaim policy Retain or Recycle) or Failed (Delete: pyk8s has no deleter for hostPath or local
volumes, as Kubernetes has none).

No dynamic provisioning, no WaitForFirstConsumer: binding is immediate.
"""

from __future__ import annotations

from typing import Any

from pyk8s.api.catalog import require
from pyk8s.api.errors import StatusError
from pyk8s.api.labels import selector_from_label_selector
from pyk8s.api.quantity import parse_quantity
from pyk8s.client.cache import DeletedFinalStateUnknown
from pyk8s.client.controller import Controller
from pyk8s.controllers.manager import ControllerContext

__all__ = ["PersistentVolumeBinder"]

Obj = dict[str, Any]

BIND_COMPLETED = "pv.kubernetes.io/bind-completed"
BOUND_BY_CONTROLLER = "pv.kubernetes.io/bound-by-controller"


PVS = require("", "PersistentVolume")
PVCS = require("", "PersistentVolumeClaim")


def _storage(resources: Obj | None) -> Any:
    return parse_quantity(((resources or {}).get("storage")) or "0")


def fits(pv: Obj, pvc: Obj) -> bool:
    """Whether volume `pv` can serve claim `pvc` (ignoring who holds it)."""
    vs, cs = pv.get("spec") or {}, pvc.get("spec") or {}
    if (vs.get("storageClassName") or "") != (cs.get("storageClassName") or ""):
        return False
    if (vs.get("volumeMode") or "Filesystem") != (cs.get("volumeMode") or "Filesystem"):
        return False
    if not set(cs.get("accessModes") or []) <= set(vs.get("accessModes") or []):
        return False
    if _storage(vs.get("capacity")) < _storage((cs.get("resources") or {}).get("requests")):
        return False
    selector = cs.get("selector")
    if selector:
        labels = (pv.get("metadata") or {}).get("labels") or {}
        if not selector_from_label_selector(selector).matches(labels):
            return False
    return True


class PersistentVolumeBinder(Controller):
    """Keys: `claim/<namespace>/<name>` and `volume/<name>`."""

    name = "persistentvolume-binder"

    def __init__(self, ctx: ControllerContext) -> None:
        super().__init__(workers=1)  # one worker: binding decisions never race each other
        self.client = ctx.client
        pv_inf = ctx.informers.informer(PVS)
        pvc_inf = ctx.informers.informer(PVCS)
        self.volumes = pv_inf.lister
        self.claims = pvc_inf.lister
        pvc_inf.add_handler(self._claim, lambda _o, n: self._claim(n), self._claim_deleted)
        pv_inf.add_handler(self._volume, lambda _o, n: self._volume(n), None)

    def _claim(self, obj: Obj | DeletedFinalStateUnknown) -> None:
        o = obj.obj if isinstance(obj, DeletedFinalStateUnknown) else obj
        meta = o.get("metadata") or {}
        self.queue.add(f"claim/{meta.get('namespace', '')}/{meta.get('name', '')}")

    def _claim_deleted(self, obj: Obj | DeletedFinalStateUnknown) -> None:
        o = obj.obj if isinstance(obj, DeletedFinalStateUnknown) else obj
        volume = (o.get("spec") or {}).get("volumeName")
        if volume:
            self.queue.add(f"volume/{volume}")

    def _volume(self, obj: Obj | DeletedFinalStateUnknown) -> None:
        o = obj.obj if isinstance(obj, DeletedFinalStateUnknown) else obj
        self.queue.add(f"volume/{(o.get('metadata') or {}).get('name', '')}")
        # A volume that appeared or was freed may serve a claim that waits.
        if (o.get("status") or {}).get("phase") in (None, "Pending", "Available"):
            for pvc in self.claims.list():
                if (pvc.get("status") or {}).get("phase", "Pending") == "Pending":
                    self._claim(pvc)

    async def reconcile(self, key: str) -> float | None:
        kind, _, rest = key.partition("/")
        try:
            if kind == "claim":
                namespace, _, name = rest.partition("/")
                await self._sync_claim(namespace, name)
            else:
                await self._sync_volume(rest)
        except StatusError as e:
            if e.code in (404, 409):
                return 0.2  # our cache lags behind a write: look again shortly
            raise
        return None

    async def _sync_volume(self, name: str) -> None:
        pv = self.volumes.get(name)
        if pv is None:
            return
        ref = (pv.get("spec") or {}).get("claimRef")
        phase = (pv.get("status") or {}).get("phase")
        if not ref:
            if phase != "Available":
                await self._volume_phase(pv, "Available")
            return
        claim = self.claims.get(ref.get("name", ""), ref.get("namespace", ""))
        alive = claim is not None and (not ref.get("uid") or
                                       (claim.get("metadata") or {}).get("uid") == ref.get("uid"))
        if alive or not ref.get("uid"):
            return  # bound, or pre-bound to a claim that is still to come: the claim's sync binds it
        if phase in ("Released", "Failed"):
            return
        policy = (pv.get("spec") or {}).get("persistentVolumeReclaimPolicy") or "Retain"
        if policy == "Delete":
            message = (f'error getting deleter volume plugin for volume "{name}": '
                       "no deletable volume plugin matched")
            await self._volume_phase(pv, "Failed", message)
        else:
            await self._volume_phase(pv, "Released")

    async def _volume_phase(self, pv: Obj, phase: str, message: str = "") -> Obj:
        status: Obj = {"phase": phase}
        if message:
            status["message"] = message
        return await self.client.update_status(PVS, {**pv, "status": status})

    async def _sync_claim(self, namespace: str, name: str) -> None:
        pvc = self.claims.get(name, namespace)
        if pvc is None or (pvc.get("metadata") or {}).get("deletionTimestamp"):
            return
        if (pvc.get("status") or {}).get("phase") == "Bound":
            return
        wanted = (pvc.get("spec") or {}).get("volumeName")
        if wanted:
            pv = self.volumes.get(wanted)
            if pv is None:
                return  # Kubernetes waits for the named volume to appear
            ref = (pv.get("spec") or {}).get("claimRef")
            if ref and (ref.get("name"), ref.get("namespace")) != (name, namespace):
                return  # it belongs to another claim: this one stays Pending
        else:
            pv = self._choose(pvc)
            if pv is None:
                return
        await self._bind(pv, pvc, by_controller=not wanted)

    def _choose(self, pvc: Obj) -> Obj | None:
        meta = pvc["metadata"]
        best: Obj | None = None
        for pv in self.volumes.list():
            ref = (pv.get("spec") or {}).get("claimRef")
            if ref:
                if (ref.get("name"), ref.get("namespace")) != (meta.get("name"), meta.get("namespace")):
                    continue
                if ref.get("uid") and ref["uid"] != meta.get("uid"):
                    continue
                return pv if fits(pv, pvc) else None  # pre-bound to this claim: that one or none
            if (pv.get("status") or {}).get("phase") not in (None, "Pending", "Available"):
                continue
            if (pv.get("metadata") or {}).get("deletionTimestamp") or not fits(pv, pvc):
                continue
            if best is None or _storage((pv.get("spec") or {}).get("capacity")) < \
                    _storage((best.get("spec") or {}).get("capacity")):
                best = pv
        return best

    async def _bind(self, pv: Obj, pvc: Obj, *, by_controller: bool) -> None:
        meta = pvc["metadata"]
        ref = {"kind": "PersistentVolumeClaim", "namespace": meta["namespace"], "name": meta["name"],
               "uid": meta.get("uid"), "apiVersion": "v1", "resourceVersion": meta.get("resourceVersion")}
        spec = pv.get("spec") or {}
        if (spec.get("claimRef") or {}).get("uid") != meta.get("uid"):
            pv_meta = {**pv["metadata"]}
            if by_controller:
                pv_meta["annotations"] = {**(pv_meta.get("annotations") or {}), BOUND_BY_CONTROLLER: "yes"}
            pv = await self.client.update(PVS, {**pv, "metadata": pv_meta, "spec": {**spec, "claimRef": ref}})
        if (pv.get("status") or {}).get("phase") != "Bound":
            pv = await self._volume_phase(pv, "Bound")
        annotations = {**(meta.get("annotations") or {}), BIND_COMPLETED: "yes"}
        if by_controller:
            annotations[BOUND_BY_CONTROLLER] = "yes"
        pvc = await self.client.update(PVCS, {
            **pvc, "metadata": {**meta, "annotations": annotations},
            "spec": {**pvc["spec"], "volumeName": pv["metadata"]["name"]},
        })
        await self.client.update_status(PVCS, {**pvc, "status": {
            "phase": "Bound",
            "accessModes": list((pv.get("spec") or {}).get("accessModes") or []),
            "capacity": dict((pv.get("spec") or {}).get("capacity") or {}),
        }})
