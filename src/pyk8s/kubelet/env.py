"""A container's environment and argv as the kubelet computes them: env and envFrom resolved (configMap,
secret, downward API fields and resources), `$(VAR)` expanded, command/args merged with the image's
entrypoint and cmd (Kubernetes' `kubecontainer.ExpandContainerCommandAndArgs`)."""

from __future__ import annotations

import base64
import math
import re
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from pyk8s.api.quantity import parse_quantity
from pyk8s.kubelet import cri

__all__ = ["EnvError", "container_argv", "container_env", "expand", "field_value", "merge_image_env",
           "resource_value", "service_env"]

Obj = dict[str, Any]
# name → object or None when it does not exist
Getter = Callable[[str], Awaitable[Obj | None]]

_LABEL_REF = re.compile(r"^metadata\.(labels|annotations)\['(.+)'\]$")


class EnvError(Exception):
    """The container cannot be configured (CreateContainerConfigError, with this message)."""


def expand(text: str, lookup: Callable[[str], str | None]) -> str:
    """`$(VAR)` → its value when defined, else left as written; `$$` → `$` (Kubernetes' expansion)."""
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c != "$" or i + 1 == n:
            out.append(c)
            i += 1
            continue
        nxt = text[i + 1]
        if nxt == "$":
            out.append("$")
            i += 2
        elif nxt == "(":
            end = text.find(")", i + 2)
            if end == -1:  # never closed: the rest stays as written
                out.append(text[i:])
                break
            value = lookup(text[i + 2:end])
            out.append(text[i:end + 1] if value is None else value)
            i = end + 1
        else:
            out.append(c + nxt)
            i += 2
    return "".join(out)


def field_value(pod: Obj, path: str) -> str:
    """A downward API fieldRef as the kubelet resolves it for env."""
    meta = pod.get("metadata") or {}
    spec = pod.get("spec") or {}
    status = pod.get("status") or {}
    m = _LABEL_REF.match(path)
    if m:
        return str((meta.get(m.group(1)) or {}).get(m.group(2), ""))
    simple = {
        "metadata.name": meta.get("name", ""),
        "metadata.namespace": meta.get("namespace", ""),
        "metadata.uid": meta.get("uid", ""),
        "spec.nodeName": spec.get("nodeName", ""),
        "spec.serviceAccountName": spec.get("serviceAccountName", ""),
        "status.podIP": status.get("podIP", ""),
        "status.hostIP": status.get("hostIP", ""),
        "status.podIPs": ",".join(p.get("ip", "") for p in status.get("podIPs") or []),
        "status.hostIPs": ",".join(p.get("ip", "") for p in status.get("hostIPs") or []),
    }
    if path not in simple:
        raise EnvError(f"unsupported fieldPath: {path}")
    return str(simple[path] or "")


def resource_value(container: Obj, resource: str, divisor: str | None,
                   allocatable: Mapping[str, str]) -> str:
    """A resourceFieldRef: the container's limit (the node's allocatable when unlimited) or request, over
    the divisor, rounded up."""
    kind, _, name = resource.partition(".")
    res = container.get("resources") or {}
    value = (res.get(kind) or {}).get(name)
    if value is None and kind == "limits":
        value = allocatable.get(name)
    if value is None and kind == "requests":
        value = (res.get("limits") or {}).get(name, "0")
    if value is None:
        raise EnvError(f"unsupported container resource: {resource}")
    div = parse_quantity(divisor or "1")
    if div == 0:
        raise EnvError(f"invalid divisor for resource {resource}")
    return str(math.ceil(parse_quantity(value) / div))


def _decode(secret: Obj, key: str) -> str:
    return base64.b64decode((secret.get("data") or {})[key]).decode("utf-8", "replace")


async def container_env(pod: Obj, container: Obj, *, configmap: Getter, secret: Getter,
                        allocatable: Mapping[str, str] | None = None,
                        service_env: Mapping[str, str] | None = None) -> list[tuple[str, str]]:
    """envFrom, then env (later names win), each env value expanded with the variables before it."""
    ns = (pod.get("metadata") or {}).get("namespace", "")
    env: dict[str, str] = dict(service_env or {})
    allocatable = allocatable or {}

    for source in container.get("envFrom") or []:
        prefix = source.get("prefix") or ""
        if "configMapRef" in source:
            ref, kind, get = source["configMapRef"], "configmap", configmap
        elif "secretRef" in source:
            ref, kind, get = source["secretRef"], "secret", secret
        else:
            continue
        obj = await get(ref["name"])
        if obj is None:
            if ref.get("optional"):
                continue
            raise EnvError(f'{kind} "{ref["name"]}" not found')
        for k, v in (obj.get("data") or {}).items():
            env[prefix + k] = v if kind == "configmap" else _decode(obj, k)

    for var in container.get("env") or []:
        name = var["name"]
        if "valueFrom" not in var:
            env[name] = expand(var.get("value") or "", env.get)
            continue
        src = var["valueFrom"]
        if "fieldRef" in src:
            env[name] = field_value(pod, src["fieldRef"]["fieldPath"])
        elif "resourceFieldRef" in src:
            ref = src["resourceFieldRef"]
            target = container
            if ref.get("containerName"):
                spec = pod.get("spec") or {}
                found = [c for c in [*(spec.get("containers") or []), *(spec.get("initContainers") or [])]
                         if c["name"] == ref["containerName"]]
                target = found[0] if found else container
            env[name] = resource_value(target, ref["resource"], ref.get("divisor"), allocatable)
        elif "configMapKeyRef" in src or "secretKeyRef" in src:
            if "configMapKeyRef" in src:
                ref, kind, get = src["configMapKeyRef"], "ConfigMap", configmap
            else:
                ref, kind, get = src["secretKeyRef"], "Secret", secret
            obj = await get(ref["name"])
            if obj is None:
                if ref.get("optional"):
                    continue
                raise EnvError(f'{kind.lower()} "{ref["name"]}" not found')
            if ref["key"] not in (obj.get("data") or {}):
                if ref.get("optional"):
                    continue
                raise EnvError(f"couldn't find key {ref['key']} in {kind} {ns}/{ref['name']}")
            env[name] = obj["data"][ref["key"]] if kind == "ConfigMap" else _decode(obj, ref["key"])
    return list(env.items())


def merge_image_env(image: cri.ImageConfig, env: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The image's ENV first, the pod's values overriding it (as containerd merges them)."""
    merged: dict[str, str] = {}
    for item in image.env:
        k, _, v = item.partition("=")
        merged[k] = v
    merged.update(env)
    return list(merged.items())


def container_argv(container: Obj, image: cri.ImageConfig, env: list[tuple[str, str]]) -> list[str]:
    """command replaces the entrypoint (and drops the image's cmd); args replace cmd; `$(VAR)` expanded."""
    lookup = dict(env).get
    command = [expand(a, lookup) for a in container.get("command") or []]
    args = [expand(a, lookup) for a in container.get("args") or []]
    if command:
        return command + args
    if args:
        return list(image.entrypoint) + args
    return list(image.entrypoint) + list(image.cmd)


def service_env(services: list[Obj]) -> dict[str, str]:
    """Docker-links-style variables for services (the kubelet's getServiceEnvVarMap): FOO_SERVICE_HOST,
    FOO_SERVICE_PORT[_NAME], FOO_PORT, FOO_PORT_<port>_<proto>[_PROTO|_PORT|_ADDR]."""
    env: dict[str, str] = {}
    for svc in services:
        spec = svc.get("spec") or {}
        ip = spec.get("clusterIP") or ""
        ports = spec.get("ports") or []
        if not ip or ip == "None" or not ports:
            continue
        name = svc["metadata"]["name"].upper().replace("-", "_")
        env[f"{name}_SERVICE_HOST"] = ip
        env[f"{name}_SERVICE_PORT"] = str(ports[0]["port"])
        for p in ports:
            if p.get("name"):
                env[f"{name}_SERVICE_PORT_{p['name'].upper().replace('-', '_')}"] = str(p["port"])
        for i, p in enumerate(ports):
            proto = (p.get("protocol") or "TCP")
            url = f"{proto.lower()}://{ip}:{p['port']}"
            if i == 0:
                env[f"{name}_PORT"] = url
            prefix = f"{name}_PORT_{p['port']}_{proto.upper()}"
            env[prefix] = url
            env[f"{prefix}_PROTO"] = proto.lower()
            env[f"{prefix}_PORT"] = str(p["port"])
            env[f"{prefix}_ADDR"] = ip
    return env
