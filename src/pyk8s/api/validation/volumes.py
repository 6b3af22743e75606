"""Pod volumes: names, exactly one source, and the rules of the common sources (ValidateVolumes)."""

from __future__ import annotations

from typing import Any

from pyk8s.api.errors import Cause
from pyk8s.api.validation import _field as f
from pyk8s.api.validation.resources import quantity

Obj = dict[str, Any]

HOST_PATH_TYPES = (
    "",
    "DirectoryOrCreate",
    "Directory",
    "FileOrCreate",
    "File",
    "Socket",
    "CharDevice",
    "BlockDevice",
)
# In the order Kubernetes' validateVolumeSource looks at them: the first one found is the volume's source.
VOLUME_SOURCES = (
    "emptyDir", "hostPath", "gitRepo", "gcePersistentDisk", "awsElasticBlockStore", "secret", "nfs", "iscsi",
    "glusterfs", "flexVolume", "persistentVolumeClaim", "rbd", "cinder", "cephfs", "flocker", "downwardAPI",
    "fc", "azureFile", "vsphereVolume", "quobyte", "azureDisk", "photonPersistentDisk", "projected",
    "portworxVolume", "scaleIO", "storageos", "configMap", "csi", "ephemeral", "image",
)  # fmt: skip
_MODE_ERROR = "must be a number between 0 and 0777 (octal), both inclusive"


# --- volumes --------------------------------------------------------------------------------------


def _validate_mode(value: Any, path: str) -> list[Cause]:
    if value is None:
        return []
    if not f.is_int(value) or not 0 <= value <= 0o777:
        return [f.invalid(path, value, _MODE_ERROR)]
    return []


def _validate_key_paths(items: Any, path: str) -> list[Cause]:
    causes: list[Cause] = []
    for i, item in enumerate(f.as_list(items)):
        item = f.as_dict(item)
        p = f"{path}[{i}]"
        if not item.get("key"):
            causes.append(f.required(f"{p}.key", ""))
        item_path = item.get("path")
        if not item_path:
            causes.append(f.required(f"{p}.path", ""))
        elif str(item_path).startswith("/"):
            causes.append(f.invalid(f"{p}.path", item_path, "must be a relative path"))
        elif ".." in str(item_path).split("/"):
            causes.append(f.invalid(f"{p}.path", item_path, "must not contain '..'"))
        causes += _validate_mode(item.get("mode"), f"{p}.mode")
    return causes


def _validate_source(kind: str, src: Any, path: str) -> list[Cause]:
    src = f.as_dict(src)
    causes: list[Cause] = []
    if kind == "hostPath":
        if not src.get("path"):
            causes.append(f.required(f"{path}.path", ""))
        if src.get("type") is not None and src["type"] not in HOST_PATH_TYPES:
            causes.append(f.not_supported(f"{path}.type", src["type"], HOST_PATH_TYPES))
    elif kind == "emptyDir":
        if src.get("medium") not in (None, "", "Memory", "HugePages") and not str(src["medium"]).startswith(
            "HugePages-"
        ):
            causes.append(f.not_supported(f"{path}.medium", src["medium"], ["", "Memory", "HugePages"]))
        if src.get("sizeLimit") is not None:
            causes += quantity(f"{path}.sizeLimit", src["sizeLimit"])[1]
    elif kind == "secret":
        if not src.get("secretName"):
            causes.append(f.required(f"{path}.secretName", ""))
        causes += _validate_mode(src.get("defaultMode"), f"{path}.defaultMode")
        causes += _validate_key_paths(src.get("items"), f"{path}.items")
    elif kind == "configMap":
        if not src.get("name"):
            causes.append(f.required(f"{path}.name", ""))
        causes += _validate_mode(src.get("defaultMode"), f"{path}.defaultMode")
        causes += _validate_key_paths(src.get("items"), f"{path}.items")
    elif kind == "persistentVolumeClaim":
        if not src.get("claimName"):
            causes.append(f.required(f"{path}.claimName", ""))
    elif kind == "nfs":
        if not src.get("server"):
            causes.append(f.required(f"{path}.server", ""))
        if not src.get("path"):
            causes.append(f.required(f"{path}.path", ""))
        elif not str(src["path"]).startswith("/"):
            causes.append(f.invalid(f"{path}.path", src["path"], "must be an absolute path"))
    elif kind in ("downwardAPI", "projected"):
        causes += _validate_mode(src.get("defaultMode"), f"{path}.defaultMode")
    elif kind == "csi":
        if not src.get("driver"):
            causes.append(f.required(f"{path}.driver", ""))
    elif kind == "image" and not src.get("reference"):
        causes.append(f.required(f"{path}.reference", ""))
    return causes


def validate_volume_sources(vol: Obj, path: str, sources: tuple[str, ...] = VOLUME_SOURCES) -> list[Cause]:
    """Exactly one source: none is `Required: must specify a volume type`, a second is Forbidden."""
    present = [k for k in sources if vol.get(k) is not None]
    if not present:
        return [f.required(path, "must specify a volume type")]
    causes = [f.forbidden(f"{path}.{k}", "may not specify more than 1 volume type") for k in present[1:]]
    return causes + _validate_source(present[0], vol[present[0]], f"{path}.{present[0]}")


def validate_volumes(volumes: Any, path: str) -> tuple[set[str], list[Cause]]:
    causes: list[Cause] = []
    names: set[str] = set()
    for i, vol in enumerate(f.as_list(volumes)):
        p = f"{path}[{i}]"
        if not isinstance(vol, dict):
            causes += f.type_check(p, vol, dict, "an object")
            continue
        causes += f.unique_label_name(f"{p}.name", vol.get("name"), names)
        causes += validate_volume_sources(vol, p)
    return names, causes
