"""A `default` ServiceAccount in every active namespace (Kubernetes' serviceaccounts-controller).

Namespaces are the keys: a new or updated namespace, or a deleted `default` account, re-checks its
namespace; a namespace being terminated gets none (the API server would refuse it anyway).
"""

from __future__ import annotations

from typing import Any

from pyk8s.api.catalog import require
from pyk8s.api.errors import StatusError
from pyk8s.client.cache import DeletedFinalStateUnknown
from pyk8s.client.controller import Controller
from pyk8s.controllers.manager import ControllerContext

__all__ = ["DEFAULT_SERVICE_ACCOUNTS", "ServiceAccountsController"]


NAMESPACES = require("", "Namespace")
SERVICEACCOUNTS = require("", "ServiceAccount")


DEFAULT_SERVICE_ACCOUNTS = ("default",)


class ServiceAccountsController(Controller):
    name = "serviceaccount"

    def __init__(self, ctx: ControllerContext) -> None:
        super().__init__(workers=1)
        self.client = ctx.client
        ns_inf = ctx.informers.informer(NAMESPACES)
        sa_inf = ctx.informers.informer(SERVICEACCOUNTS)
        self.namespaces = ns_inf.lister
        self.accounts = sa_inf.lister
        ns_inf.add_handler(self.enqueue, lambda _old, new: self.enqueue(new))
        sa_inf.add_handler(on_delete=self._account_deleted)

    def _account_deleted(self, obj: dict[str, Any] | DeletedFinalStateUnknown) -> None:
        sa = obj.obj if isinstance(obj, DeletedFinalStateUnknown) else obj
        meta = sa.get("metadata") or {}
        if meta.get("name") in DEFAULT_SERVICE_ACCOUNTS and meta.get("namespace"):
            self.queue.add(meta["namespace"])

    async def reconcile(self, key: str) -> float | None:
        ns = self.namespaces.get(key)
        if ns is None or (ns.get("status") or {}).get("phase") != "Active" \
                or (ns.get("metadata") or {}).get("deletionTimestamp"):
            return None
        for name in DEFAULT_SERVICE_ACCOUNTS:
            if self.accounts.get(name, key) is not None:
                continue
            try:
                await self.client.create(SERVICEACCOUNTS, {"apiVersion": "v1", "kind": "ServiceAccount",
                                                           "metadata": {"name": name}}, key)
            except StatusError as e:
                # Already there (our cache lags) or the namespace began terminating: nothing to do.
                if e.code not in (403, 409, 404):
                    raise
        return None
