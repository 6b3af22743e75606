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
        old_spec = f.as_dict(old.get("spec"))
        for key in ("volumeMode",):
            causes += f.immutable(f"spec.{key}", spec.get(key), old_spec.get(key))
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
        old_spec = f.as_dict(old.get("spec"))
        # Binding may fill volumeName once; resources (expansion) and the attributes class may change.
        mutable = {"resources", "volumeAttributesClassName"} | (
            {"volumeName"} if not old_spec.get("volumeName") else set()
        )
        if {k: v for k, v in spec.items() if k not in mutable} != {
            k: v for k, v in old_spec.items() if k not in mutable
        }:
            causes.append(
                f.forbidden(
                    "spec",
                    "spec is immutable after creation except resources.requests "
                    "and volumeAttributesClassName for bound claims",
                )
            )
    return causes
