"""ServiceAccount admission: every new pod runs as a service account and, unless it opts out, gets the
`kube-api-access-<random>` projected volume (a bound token, the cluster CA, the namespace) mounted at
`/var/run/secrets/kubernetes.io/serviceaccount` in each container — as Kubernetes' plugin of that name.

A pod without `serviceAccountName` gets `default`; a missing account refuses the pod (403, Kubernetes'
message). The account's `automountServiceAccountToken: false` stops the volume unless the pod asks for it;
the account's imagePullSecrets become the pod's when it names none. Mirror pods are left alone.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from pyk8s.api import errors
from pyk8s.apiserver.auth import resources
from pyk8s.apiserver.auth.resources import GetObject
from pyk8s.apiserver.interfaces import AdmissionRequest, Obj
from pyk8s.util.ids import random_string

__all__ = ["API_ACCESS_VOLUME_PREFIX", "TOKEN_MOUNT_PATH", "ServiceAccountAdmission", "token_volume_source"]

DEFAULT_SERVICE_ACCOUNT = "default"
API_ACCESS_VOLUME_PREFIX = "kube-api-access-"
TOKEN_MOUNT_PATH = "/var/run/secrets/kubernetes.io/serviceaccount"
MIRROR_POD_ANNOTATION = "kubernetes.io/config.mirror"
# Kubernetes' bound-token default: a little over an hour, so a kubelet refreshing at 80 % is visible.
TOKEN_EXPIRATION_SECONDS = 3607
_RAND_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"  # Kubernetes' utilrand alphabet: no vowels, no 0/1/3


def token_volume_source() -> Obj:
    """The projected source of a `kube-api-access-*` volume, exactly as Kubernetes writes it."""
    return {
        "defaultMode": 0o644,
        "sources": [
            {"serviceAccountToken": {"expirationSeconds": TOKEN_EXPIRATION_SECONDS, "path": "token"}},
            {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
            {"downwardAPI": {"items": [{
                "path": "namespace", "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}},
        ],
    }


class ServiceAccountAdmission:
    name = "ServiceAccount"

    def __init__(self, get_object: GetObject, *, lookup_grace: float = 1.0) -> None:
        """`get_object` reads service accounts (watch cache, else store). A pod created right after its
        namespace may race the serviceaccount controller: the account is looked for again for up to
        `lookup_grace` seconds before the pod is refused."""
        self._get = get_object
        self._grace = lookup_grace

    @staticmethod
    def _applies(request: AdmissionRequest) -> bool:
        return (request.operation == "CREATE" and not request.subresource and request.obj is not None
                and request.resource.group == "" and request.resource.plural == "pods")

    async def _account(self, namespace: str, name: str) -> Obj | None:
        deadline = time.monotonic() + self._grace
        while True:
            sa = await resources.fetch(self._get, resources.service_accounts(), namespace, name)
            if sa is not None or time.monotonic() >= deadline:
                return sa
            await asyncio.sleep(0.05)

    async def admit(self, request: AdmissionRequest) -> None:
        if not self._applies(request):
            return
        pod: Obj = request.obj  # type: ignore[assignment]
        meta = pod.get("metadata") or {}
        if MIRROR_POD_ANNOTATION in (meta.get("annotations") or {}):
            return
        spec: dict[str, Any] = pod.setdefault("spec", {})
        if not spec.get("serviceAccountName"):
            spec["serviceAccountName"] = DEFAULT_SERVICE_ACCOUNT
        sa_name = spec["serviceAccountName"]
        namespace = request.namespace or meta.get("namespace", "")
        sa = await self._account(namespace, sa_name)
        if sa is None:
            pod_name = request.name or meta.get("name", "")
            subject = f'pods "{pod_name}"' if pod_name else "pods"
            raise errors.forbidden(
                f"{subject} is forbidden: error looking up service account {namespace}/{sa_name}: "
                f'serviceaccount "{sa_name}" not found', "pods", pod_name)
        if _should_automount(sa, spec):
            _mount_token(spec)
        if not spec.get("imagePullSecrets") and sa.get("imagePullSecrets"):
            spec["imagePullSecrets"] = [{"name": s.get("name", "")} for s in sa["imagePullSecrets"]]

    async def validate(self, request: AdmissionRequest) -> None:
        return None


def _should_automount(sa: Obj, spec: Obj) -> bool:
    if spec.get("automountServiceAccountToken") is not None:
        return bool(spec["automountServiceAccountToken"])
    if sa.get("automountServiceAccountToken") is not None:
        return bool(sa["automountServiceAccountToken"])
    return True


def _mount_token(spec: Obj) -> None:
    volumes: list[Obj] = list(spec.get("volumes") or [])
    existing = next((v["name"] for v in volumes
                     if str(v.get("name", "")).startswith(API_ACCESS_VOLUME_PREFIX)), None)
    name = existing or API_ACCESS_VOLUME_PREFIX + random_string(5, _RAND_ALPHABET)
    needed = False
    for kind in ("initContainers", "containers"):
        for container in spec.get(kind) or []:
            mounts: list[Obj] = list(container.get("volumeMounts") or [])
            # A container that mounts something at the token path keeps its own.
            if any(m.get("mountPath") == TOKEN_MOUNT_PATH for m in mounts):
                continue
            mounts.append({"name": name, "readOnly": True, "mountPath": TOKEN_MOUNT_PATH})
            container["volumeMounts"] = mounts
            needed = True
    if needed and existing is None:
        volumes.append({"name": name, "projected": token_volume_source()})
        spec["volumes"] = volumes
