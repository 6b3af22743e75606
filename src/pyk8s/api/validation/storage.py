"""PersistentVolumes and PersistentVolumeClaims."""

from __future__ import annotations

from typing import Any

from pyk8s.api.errors import Cause
from pyk8s.api.validation import _field as f
from pyk8s.api.validation import resources, volumes

Obj = dict[str, Any]

ACCESS_MODES = ("ReadOnlyMany", "ReadWriteMany", "ReadWriteOnce", "ReadWriteOncePod")
RECLAIM_POLICIES = ("Delete", "Recycle", "Retain")
# Volume sources a pod may use but a PersistentVolume may not.
_POD_ONLY_SOURCES = {"emptyDir", "secret", "configMap", "downwardAPI", "projected", "persistentVolumeClaim",
                     "gitRepo", "ephemeral", "image"}  # fmt: skip


# --- storage --------------------------------------------------------------------------------------


def _validate_access_modes(modes: Any, path: str, detail: str = "") -> list[Cause]:
    modes = f.as_list(modes)
    if not modes:
        return [f.required(path, detail)]
    causes = [f.not_supported(path, m, ACCESS_MODES) for m in modes if m not in ACCESS_MODES]
    if "ReadWriteOncePod" in modes and len(modes) > 1:
        causes.append(f.forbidden(path, "may not use ReadWriteOncePod with other access modes"))
    return causes


def validate_persistent_volume(obj: Obj, old: Obj | None) -> list[Cause]:
    spec = f.as_dict(obj.get("spec"))
    causes = _validate_access_modes(spec.get("accessModes"), "spec.accessModes")
    capacity = f.as_dict(spec.get("capacity"))
    if not capacity:
        causes.append(f.required("spec.capacity", ""))
    elif "storage" not in capacity or len(capacity) > 1:
        causes.append(f.not_supported("spec.capacity", sorted(capacity), ["storage"]))
    for name, value in capacity.items():
        causes += resources.quantity(f"spec.capacity[{name}]", value)[1]
    causes += f.one_of(
        "spec.persistentVolumeReclaimPolicy",
        spec.get("persistentVolumeReclaimPolicy"),
        RECLAIM_POLICIES,
        required_when_empty=False,
    )
    causes += f.one_of(
        "spec.volumeMode", spec.get("volumeMode"), ("Block", "Filesystem"), required_when_empty=False
    )
    sources = (*(s for s in volumes.VOLUME_SOURCES if s not in _POD_ONLY_SOURCES), "local")
    local = spec.get("local")
    causes += volumes.validate_volume_sources(spec, "spec", sources)
    if local is not None and not f.as_dict(local).get("path"):
        causes.append(f.required("spec.local.path", ""))
    if local is not None and spec.get("nodeAffinity") is None:
        causes.append(f.required("spec.nodeAffinity", "Local volume requires node affinity"))
    if old is not None:
        causes += _validate_persistent_volume_update(spec, f.as_dict(old.get("spec")), sources)
    return causes


def _validate_persistent_volume_update(spec: Obj, old_spec: Obj, sources: tuple[str, ...]) -> list[Cause]:
    """ValidatePersistentVolumeUpdate: the volume source and mode are fixed; node affinity once set."""
    causes: list[Cause] = []
    if {k: spec.get(k) for k in sources} != {k: old_spec.get(k) for k in sources}:
        causes.append(f.forbidden("spec.persistentvolumesource",
                                  "spec.persistentvolumesource is immutable after creation\n"))  # fmt: skip
    causes += f.immutable("volumeMode", spec.get("volumeMode"), old_spec.get("volumeMode"))  # sic: no "spec."
    if old_spec.get("nodeAffinity") is not None:
        causes += f.immutable("nodeAffinity", spec.get("nodeAffinity"), old_spec.get("nodeAffinity"))
    return causes


def validate_persistent_volume_claim(obj: Obj, old: Obj | None) -> list[Cause]:
    spec = f.as_dict(obj.get("spec"))
    causes = _validate_access_modes(
        spec.get("accessModes"), "spec.accessModes", "at least 1 access mode is required"
    )
    requests = f.as_dict(f.as_dict(spec.get("resources")).get("requests"))
    if "storage" not in requests:
        causes.append(f.required("spec.resources[storage]", ""))
    else:
        amount, errs = resources.quantity("spec.resources[storage]", requests["storage"])
        causes += errs
        if amount is not None and amount <= 0:
            causes.append(
                f.invalid("spec.resources[storage]", str(requests["storage"]), "must be greater than zero")
            )
    causes += f.validate_labels(
        f.as_dict(spec.get("selector")).get("matchLabels"), "spec.selector.matchLabels"
    )
    causes += f.one_of(
        "spec.volumeMode", spec.get("volumeMode"), ("Block", "Filesystem"), required_when_empty=False
    )
    if spec.get("storageClassName"):
        causes += f.check("spec.storageClassName", str(spec["storageClassName"]), f.dns1123_subdomain)
    if old is not None:
        causes += _validate_claim_update(spec, f.as_dict(old.get("spec")))
    return causes


_CLAIM_UPDATE_ERROR = (
    "spec is immutable after creation except resources.requests and volumeAttributesClassName "
    "for bound claims"
)


def _validate_claim_update(spec: Obj, old_spec: Obj) -> list[Cause]:
    """ValidatePersistentVolumeClaimUpdate: binding may set volumeName once; a bound claim may grow its
    storage request (never shrink it) and change its attributes class; the rest is fixed."""
    bound = bool(old_spec.get("volumeName"))
    mutable = {"resources", "volumeAttributesClassName"} if bound else {"volumeName"}
    if {k: v for k, v in spec.items() if k not in mutable} != {
        k: v for k, v in old_spec.items() if k not in mutable
    }:
        return [f.forbidden("spec", _CLAIM_UPDATE_ERROR)]
    if bound:
        new_size = f.as_dict(f.as_dict(spec.get("resources")).get("requests")).get("storage")
        old_size = f.as_dict(f.as_dict(old_spec.get("resources")).get("requests")).get("storage")
        new_amount = resources.quantity("", new_size)[0] if new_size is not None else None
        old_amount = resources.quantity("", old_size)[0] if old_size is not None else None
        if new_amount is not None and old_amount is not None and new_amount < old_amount:
            return [
                f.forbidden("spec.resources.requests.storage", "field can not be less than previous value")
            ]
    return []
