"""What configMap, secret, downwardAPI and projected volumes contain: relative path → file, as Kubernetes'
volume plugins compute it (keys or items, defaultMode and per-item modes, optional sources)."""

from __future__ import annotations

import asyncio
import base64
import json
import math
import time
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from pyk8s.api import catalog
from pyk8s.api.errors import StatusError
from pyk8s.api.quantity import parse_quantity
from pyk8s.api.resource import ResourceInfo
from pyk8s.client.client import Client
from pyk8s.kubelet.volumes.atomic_writer import FileProjection

Obj = dict[str, Any]
Payload = dict[str, FileProjection]

DEFAULT_MODE = 0o644
TOKEN_REFRESH_FRACTION = 0.8  # the kubelet renews a projected token after 80 % of its life …
TOKEN_MAX_AGE = 24 * 3600.0  # … or after 24 hours, whichever comes first


CONFIGMAPS = catalog.require("", "ConfigMap")
SECRETS = catalog.require("", "Secret")
SERVICEACCOUNTS = catalog.require("", "ServiceAccount")
NODES = catalog.require("", "Node")


class SourceError(Exception):
    """A volume's content cannot be computed; the message is Kubernetes' (after `MountVolume.SetUp
    failed for volume "x" : `)."""


@dataclass
class Token:
    token: str
    issued: float
    expires: float

    def due(self, now: float) -> bool:
        life = self.expires - self.issued
        return now >= self.issued + min(life * TOKEN_REFRESH_FRACTION, TOKEN_MAX_AGE)


# Reads in flight per client: concurrent reads of one object (the pods of a burst all mounting their
# namespace's kube-root-ca.crt) share one request, as the kubelet's configMap and secret managers do.
_INFLIGHT: weakref.WeakKeyDictionary[Client, dict[tuple[str, str, str], asyncio.Future[Obj | None]]] = \
    weakref.WeakKeyDictionary()


async def _fetch(client: Client, info: ResourceInfo, namespace: str, name: str) -> Obj | None:
    try:
        return await client.get(info, name, namespace)
    except StatusError as e:
        if e.code == 404:
            return None
        raise


async def _get(client: Client, info: ResourceInfo, namespace: str, name: str) -> Obj | None:
    """The object (None if it does not exist), from a request begun by this call or one still waiting
    for its answer when this call was made; callers must not change it (it may be shared)."""
    pending = _INFLIGHT.setdefault(client, {})
    key = (info.kind, namespace, name)
    future = pending.get(key)
    if future is None:
        future = pending[key] = asyncio.ensure_future(_fetch(client, info, namespace, name))
        def forget(done: asyncio.Future[Obj | None]) -> None:
            if pending.get(key) is done:
                del pending[key]
            if not done.cancelled():
                done.exception()  # raised to every caller still waiting; none may be left

        future.add_done_callback(forget)
    return await asyncio.shield(future)


def _keyed(data: dict[str, bytes], items: list[Obj] | None, mode: int, optional: bool,
           missing_key: str) -> Payload:
    """Kubernetes' MakePayload: every key as a file, or only `items` (key → path, mode)."""
    if not items:
        return {key: FileProjection(value, mode) for key, value in data.items()}
    out: Payload = {}
    for item in items:
        key = item.get("key", "")
        if key not in data:
            if optional:
                continue
            raise SourceError(f"{missing_key}: {key}")
        item_mode = item.get("mode")
        out[item.get("path") or key] = FileProjection(data[key], mode if item_mode is None else item_mode)
    return out


async def configmap_payload(client: Client, namespace: str, source: Obj, mode: int) -> Payload:
    name = source.get("name", "")
    optional = bool(source.get("optional"))
    cm = await _get(client, CONFIGMAPS, namespace, name)
    if cm is None:
        if optional:
            return {}
        raise SourceError(f'configmap "{name}" not found')
    data = {k: v.encode() for k, v in (cm.get("data") or {}).items()}
    data.update({k: base64.b64decode(v) for k, v in (cm.get("binaryData") or {}).items()})
    return _keyed(data, source.get("items"), mode, optional, "configmap references non-existent config key")


async def secret_payload(client: Client, namespace: str, source: Obj, mode: int, name_key: str) -> Payload:
    name = source.get(name_key, "")
    optional = bool(source.get("optional"))
    secret = await _get(client, SECRETS, namespace, name)
    if secret is None:
        if optional:
            return {}
        raise SourceError(f'secret "{name}" not found')
    data = {k: base64.b64decode(v) for k, v in (secret.get("data") or {}).items()}
    return _keyed(data, source.get("items"), mode, optional, "references non-existent secret key")


def _format_map(m: dict[str, str]) -> str:
    # Kubernetes' fieldpath.FormatMap: sorted `key="value"` lines (Go %q quoting), no final newline.
    return "\n".join(f"{k}={json.dumps(m[k], ensure_ascii=False)}" for k in sorted(m))


def field_value(pod: Obj, path: str) -> str:
    """A downward-API fieldRef of the pod."""
    meta = pod.get("metadata") or {}
    if path == "metadata.labels":
        return _format_map(meta.get("labels") or {})
    if path == "metadata.annotations":
        return _format_map(meta.get("annotations") or {})
    for prefix, field in (("metadata.labels['", "labels"), ("metadata.annotations['", "annotations")):
        if path.startswith(prefix) and path.endswith("']"):
            return str((meta.get(field) or {}).get(path[len(prefix):-2], ""))
    simple = {
        "metadata.name": meta.get("name"),
        "metadata.namespace": meta.get("namespace"),
        "metadata.uid": meta.get("uid"),
        "spec.nodeName": (pod.get("spec") or {}).get("nodeName"),
        "spec.serviceAccountName": (pod.get("spec") or {}).get("serviceAccountName"),
        "status.podIP": (pod.get("status") or {}).get("podIP"),
        "status.hostIP": (pod.get("status") or {}).get("hostIP"),
    }
    if path not in simple:
        raise SourceError(f"unsupported fieldPath: {path}")
    return str(simple[path] or "")


async def resource_value(client: Client, pod: Obj, ref: Obj) -> str:
    """A resourceFieldRef: the container's request or limit over the divisor, rounded up; an unset limit
    is the node's allocatable, as Kubernetes' MergeContainerResourceLimits."""
    resource = ref.get("resource", "")
    containers = list((pod.get("spec") or {}).get("containers") or [])
    containers += list((pod.get("spec") or {}).get("initContainers") or [])
    name = ref.get("containerName") or (containers[0].get("name") if containers else "")
    container = next((c for c in containers if c.get("name") == name), None)
    if container is None:
        raise SourceError(f"container {name} not found")
    kind, _, res = resource.partition(".")
    value = ((container.get("resources") or {}).get(kind) or {}).get(res)
    if value is None and kind == "limits":
        node = await _get(client, NODES, "", (pod.get("spec") or {}).get("nodeName") or "")
        value = (((node or {}).get("status") or {}).get("allocatable") or {}).get(res)
    amount = parse_quantity(value) if value is not None else Decimal(0)
    divisor = parse_quantity(ref.get("divisor") or "1")
    if divisor == 0:
        divisor = Decimal(1)
    return str(math.ceil(amount / divisor))


async def downward_payload(client: Client, pod: Obj, items: list[Obj], mode: int) -> Payload:
    out: Payload = {}
    for item in items:
        item_mode = item.get("mode")
        if item.get("fieldRef"):
            text = field_value(pod, item["fieldRef"].get("fieldPath", ""))
        elif item.get("resourceFieldRef"):
            text = await resource_value(client, pod, item["resourceFieldRef"])
        else:
            continue
        out[item.get("path", "")] = FileProjection(text.encode(), mode if item_mode is None else item_mode)
    return out


TokenSource = Callable[[Obj, str, int], Awaitable[Token]]


async def request_token(client: Client, pod: Obj, audience: str, expiration: int, now: float) -> Token:
    """TokenRequest for the pod's service account, bound to the pod; `now` is when it was asked for."""
    meta = pod.get("metadata") or {}
    sa = (pod.get("spec") or {}).get("serviceAccountName") or "default"
    body = {
        "apiVersion": "authentication.k8s.io/v1",
        "kind": "TokenRequest",
        "spec": {
            "audiences": [audience] if audience else [],
            "expirationSeconds": expiration,
            "boundObjectRef": {"apiVersion": "v1", "kind": "Pod", "name": meta.get("name"),
                               "uid": meta.get("uid")},
        },
    }
    answer = await client.create_subresource(SERVICEACCOUNTS, sa, "token", body, meta.get("namespace"))
    status = answer.get("status") or {}
    expires = datetime.strptime(status["expirationTimestamp"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    # The life the server granted, placed on the caller's clock.
    return Token(status["token"], now, now + (expires.timestamp() - time.time()))


def fs_user(pod: Obj) -> int | None:
    """Kubernetes' FsUserFrom: the runAsUser every container of the pod shares, or None."""
    spec = pod.get("spec") or {}
    pod_user = (spec.get("securityContext") or {}).get("runAsUser")
    users = {(c.get("securityContext") or {}).get("runAsUser", pod_user)
             for c in (spec.get("initContainers") or []) + (spec.get("containers") or [])}
    if len(users) != 1:
        return None
    (user,) = users
    return user if isinstance(user, int) else None


async def projected_payload(client: Client, pod: Obj, source: Obj, token: TokenSource) -> Payload:
    mode = source.get("defaultMode")
    mode = DEFAULT_MODE if mode is None else mode
    namespace = (pod.get("metadata") or {}).get("namespace", "")
    # As the kubelet: with an fsGroup or a common runAsUser the token is private to that user (0600),
    # owned by it; fsGroup ownership then opens it to the group.
    user = fs_user(pod)
    has_group = ((pod.get("spec") or {}).get("securityContext") or {}).get("fsGroup") is not None
    token_mode = 0o600 if user is not None or has_group else mode

    async def one(s: Obj) -> Payload:
        if s.get("configMap") is not None:
            return await configmap_payload(client, namespace, s["configMap"], mode)
        if s.get("secret") is not None:
            return await secret_payload(client, namespace, s["secret"], mode, "name")
        if s.get("downwardAPI") is not None:
            return await downward_payload(client, pod, s["downwardAPI"].get("items") or [], mode)
        if s.get("serviceAccountToken") is not None:
            sat = s["serviceAccountToken"]
            tok = await token(pod, sat.get("audience") or "", int(sat.get("expirationSeconds") or 3600))
            return {sat.get("path") or "token": FileProjection(tok.token.encode(), token_mode,
                                                               uid=-1 if user is None else user)}
        return {}

    # The sources are independent API reads (a TokenRequest, a ConfigMap …): ask for them at once.
    out: Payload = {}
    for part in await asyncio.gather(*(one(s) for s in source.get("sources") or [])):
        out.update(part)
    return out
