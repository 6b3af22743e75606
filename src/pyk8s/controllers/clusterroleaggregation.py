"""ClusterRole aggregation (Kubernetes' clusterrole-aggregation controller).

A ClusterRole with an `aggregationRule` gets as its rules the union of the rules of every other
ClusterRole one of its `clusterRoleSelectors` matches (in name order, duplicates dropped), so the
built-in `admin`, `edit` and `view` roles — and any a user aggregates — show their rules. Any ClusterRole
change re-checks every aggregated role, as Kubernetes does.
"""

from __future__ import annotations

from typing import Any

from pyk8s.api.catalog import require
from pyk8s.api.errors import StatusError
from pyk8s.api.labels import selector_from_label_selector
from pyk8s.client.controller import Controller
from pyk8s.controllers.manager import ControllerContext

__all__ = ["ClusterRoleAggregationController", "aggregated_rules"]


CLUSTER_ROLES = require("rbac.authorization.k8s.io", "ClusterRole")

Obj = dict[str, Any]


def aggregated_rules(role: Obj, roles: list[Obj]) -> list[Obj]:
    """The union of the rules of `roles` that `role`'s aggregationRule selects."""
    selectors = [selector_from_label_selector(s)
                 for s in (role.get("aggregationRule") or {}).get("clusterRoleSelectors") or []]
    name = role["metadata"]["name"]
    rules: list[Obj] = []
    for other in sorted(roles, key=lambda r: str(r["metadata"]["name"])):
        labels = other["metadata"].get("labels") or {}
        if other["metadata"]["name"] == name or not any(s.matches(labels) for s in selectors):
            continue
        for rule in other.get("rules") or []:
            if rule not in rules:
                rules.append(rule)
    return rules


class ClusterRoleAggregationController(Controller):
    name = "clusterrole-aggregation"

    def __init__(self, ctx: ControllerContext) -> None:
        super().__init__(workers=1)
        self.client = ctx.client
        inf = ctx.informers.informer(CLUSTER_ROLES)
        self.roles = inf.lister
        inf.add_handler(self._changed, lambda _old, new: self._changed(new), self._changed)

    def _changed(self, _obj: object) -> None:
        for role in self.roles.list():
            if role.get("aggregationRule"):
                self.enqueue(role)

    async def reconcile(self, key: str) -> float | None:
        role = self.roles.get(key)
        if role is None or not role.get("aggregationRule"):
            return None
        rules = aggregated_rules(role, self.roles.list())
        if rules == (role.get("rules") or []):
            return None
        try:
            # The resourceVersion makes the patch conditional: a role changed meanwhile is retried.
            await self.client.patch(CLUSTER_ROLES, key, {"metadata": {
                "resourceVersion": role["metadata"]["resourceVersion"]}, "rules": rules})
        except StatusError as e:
            if e.code == 404:
                return None
            raise
        return None
