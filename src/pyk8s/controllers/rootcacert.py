"""The `kube-root-ca.crt` ConfigMap in every namespace (Kubernetes' root-ca-cert-publisher).

Pods verify the API server with it: the `kube-api-access-*` volume the ServiceAccount admission adds
projects its `ca.crt`. Namespaces are the keys: a new or updated namespace, or a changed or deleted
`kube-root-ca.crt`, re-checks its namespace; a ConfigMap that drifted is put back (its data replaced).
"""

from __future__ import annotations

from typing import Any

from pyk8s.api.catalog import require
from pyk8s.api.errors import StatusError
from pyk8s.client.cache import DeletedFinalStateUnknown
from pyk8s.client.controller import Controller
from pyk8s.controllers.manager import ControllerContext

__all__ = ["DESCRIPTION", "ROOT_CA_CONFIGMAP", "RootCACertPublisher"]

ROOT_CA_CONFIGMAP = "kube-root-ca.crt"
DESCRIPTION_KEY = "kubernetes.io/description"
DESCRIPTION = (
    "Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints "
    "such as the internal service IP or kubernetes.default.svc. No other usage is guaranteed across "
    "distributions of Kubernetes clusters."
)


NAMESPACES = require("", "Namespace")
CONFIGMAPS = require("", "ConfigMap")


class RootCACertPublisher(Controller):
    name = "root-ca-cert-publisher"

    def __init__(self, ctx: ControllerContext) -> None:
        super().__init__(workers=1)
        self.client = ctx.client
        self.ca = ctx.options.ca_cert_pem.decode()
        ns_inf = ctx.informers.informer(NAMESPACES)
        cm_inf = ctx.informers.informer(CONFIGMAPS)
        self.namespaces = ns_inf.lister
        self.configmaps = cm_inf.lister
        ns_inf.add_handler(self.enqueue, lambda _old, new: self.enqueue(new))
        cm_inf.add_handler(on_update=lambda _old, new: self._configmap(new), on_delete=self._configmap)

    def _configmap(self, obj: dict[str, Any] | DeletedFinalStateUnknown) -> None:
        cm = obj.obj if isinstance(obj, DeletedFinalStateUnknown) else obj
        meta = cm.get("metadata") or {}
        if meta.get("name") == ROOT_CA_CONFIGMAP and meta.get("namespace"):
            self.queue.add(meta["namespace"])

    async def reconcile(self, key: str) -> float | None:
        if not self.ca:
            return None  # no CA configured: nothing to publish
        ns = self.namespaces.get(key)
        if ns is None or (ns.get("metadata") or {}).get("deletionTimestamp"):
            return None
        data = {"ca.crt": self.ca}
        cm = self.configmaps.get(ROOT_CA_CONFIGMAP, key)
        try:
            if cm is None:
                await self.client.create(CONFIGMAPS, {
                    "apiVersion": "v1", "kind": "ConfigMap",
                    "metadata": {"name": ROOT_CA_CONFIGMAP, "annotations": {DESCRIPTION_KEY: DESCRIPTION}},
                    "data": data,
                }, key)
                return None
            annotations = (cm.get("metadata") or {}).get("annotations") or {}
            if cm.get("data") == data and annotations.get(DESCRIPTION_KEY) == DESCRIPTION:
                return None
            updated = {**cm, "data": data, "metadata": {
                **cm["metadata"], "annotations": {**annotations, DESCRIPTION_KEY: DESCRIPTION}}}
            updated.pop("binaryData", None)
            await self.client.update(CONFIGMAPS, updated, key)
        except StatusError as e:
            # 409: our cache lags (the next event brings us back); 403/404: the namespace is going away.
            if e.code not in (403, 404, 409):
                raise
        return None
