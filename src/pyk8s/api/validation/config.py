"""ConfigMaps and Secrets: key names, the 1 MiB limit, secret types, immutability."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from pyk8s.api.errors import Cause
from pyk8s.api.validation import _field as f

Obj = dict[str, Any]

MAX_DATA_SIZE = 1024 * 1024  # core.MaxSecretSize, the limit for configmaps too
IMMUTABLE_WHEN_SET = "field is immutable when `immutable` is set"


# --- configmaps and secrets -----------------------------------------------------------------------


def _immutable_data(obj: Obj, old: Obj | None, keys: tuple[str, ...]) -> list[Cause]:
    if old is None or old.get("immutable") is not True:
        return []
    causes = [f.forbidden(k, IMMUTABLE_WHEN_SET) for k in keys if obj.get(k) != old.get(k)]
    if obj.get("immutable") is not True:
        causes.append(f.forbidden("immutable", IMMUTABLE_WHEN_SET))
    return causes


def validate_config_map(obj: Obj, old: Obj | None) -> list[Cause]:
    """ValidateConfigMap: key names, no key in both maps, at most 1 MiB in all."""
    data, binary = obj.get("data"), obj.get("binaryData")
    causes = f.type_check("data", data, dict, "a map of strings")
    causes += f.type_check("binaryData", binary, dict, "a map of base64 strings")
    data, binary = f.as_dict(data), f.as_dict(binary)
    size = 0
    for key, value in data.items():
        causes += f.check(f"data[{key}]", key, f.config_map_key)
        causes += f.type_check(f"data[{key}]", value, str, "a string")
        if key in binary:
            causes.append(f.invalid(f"data[{key}]", key, "duplicate of key present in binaryData"))
        size += len(str(value).encode())
    for key, value in binary.items():
        causes += f.check(f"binaryData[{key}]", key, f.config_map_key)
        causes += _base64_errors(f"binaryData[{key}]", value)
        size += len(_decoded(value))
    if size > MAX_DATA_SIZE:
        causes.append(f.too_long("", MAX_DATA_SIZE))  # "" as Kubernetes: the whole object is too big
    return causes + _immutable_data(obj, old, ("data", "binaryData"))


def _decoded(value: Any) -> bytes:
    try:
        return base64.b64decode(str(value), validate=True)
    except (binascii.Error, ValueError):
        return b""


def _base64_errors(path: str, value: Any) -> list[Cause]:
    """[]byte fields travel as base64; Kubernetes' decoder refuses anything else (there as a 400)."""
    try:
        base64.b64decode(str(value), validate=True)
    except (binascii.Error, ValueError):
        return [f.invalid(path, "<secret contents redacted>", "illegal base64 data")]
    return []


def _json_errors(path: str, value: bytes) -> list[Cause]:
    try:
        json.loads(value)
    except ValueError as err:
        return [f.invalid(path, "<secret contents redacted>", str(err))]
    return []


def validate_secret(obj: Obj, old: Obj | None) -> list[Cause]:
    """ValidateSecret: key names, at most 1 MiB, and the keys each well-known type needs."""
    raw = obj.get("data")
    causes = f.type_check("data", raw, dict, "a map of base64 strings")
    for key, value in f.as_dict(raw).items():
        causes += f.check(f"data[{key}]", key, f.config_map_key)
        causes += _base64_errors(f"data[{key}]", value)
    data = {k: _decoded(v) for k, v in f.as_dict(raw).items()}
    if sum(len(v) for v in data.values()) > MAX_DATA_SIZE:
        causes.append(f.too_long("data", MAX_DATA_SIZE))
    secret_type = obj.get("type") or "Opaque"
    annotations = f.as_dict(f.as_dict(obj.get("metadata")).get("annotations"))
    if secret_type == "kubernetes.io/service-account-token":
        if not annotations.get("kubernetes.io/service-account.name"):
            causes.append(f.required("metadata.annotations[kubernetes.io/service-account.name]", ""))
    elif secret_type in ("kubernetes.io/dockercfg", "kubernetes.io/dockerconfigjson"):
        key = ".dockercfg" if secret_type == "kubernetes.io/dockercfg" else ".dockerconfigjson"
        if key not in data:
            causes.append(f.required(f"data[{key}]", ""))
        else:
            causes += _json_errors(f"data[{key}]", data[key])
    elif secret_type == "kubernetes.io/basic-auth":
        if "username" not in data and "password" not in data:
            causes += [f.required("data[username]", ""), f.required("data[password]", "")]
    elif secret_type == "kubernetes.io/ssh-auth":
        if not data.get("ssh-privatekey"):
            causes.append(f.required("data[ssh-privatekey]", ""))
    elif secret_type == "kubernetes.io/tls":
        causes += [f.required(f"data[{key}]", "") for key in ("tls.crt", "tls.key") if key not in data]
    if old is not None:
        causes += f.immutable("type", secret_type, old.get("type") or "Opaque")
        causes += _immutable_data(obj, old, ("data",))
    return causes
