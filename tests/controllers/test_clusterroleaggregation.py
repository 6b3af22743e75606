from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from pyk8s.client.client import Client
from pyk8s.controllers.clusterroleaggregation import ClusterRoleAggregationController
from tests.controllers._housekeeping import running, until
from tests.support.apiserver import api_server, info
from tests.support.kubectl import kubectl, write_kubeconfig

CR = info("rbac.authorization.k8s.io", "clusterroles")
READ_PODS = {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}
LABEL = "rbac.example.com/aggregate-to-monitoring"
READ_CMS = {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"]}


def role(name: str, labels: dict[str, str] | None = None, rules: list[Any] | None = None,
         aggregate: dict[str, str] | None = None) -> dict[str, Any]:
    obj: dict[str, Any] = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
                           "metadata": {"name": name, "labels": labels or {}}, "rules": rules or []}
    if aggregate is not None:
        obj["aggregationRule"] = {"clusterRoleSelectors": [{"matchLabels": aggregate}]}
    return obj


async def rules_of(client: Client, name: str) -> list[Any]:
    return list((await client.get(CR, name)).get("rules") or [])


async def test_aggregated_role_gets_union_of_selected_rules(tmp_path: Path) -> None:
    async with api_server() as srv, running(srv, ClusterRoleAggregationController) as (client, _):
        await client.create(CR, role("monitoring", aggregate={LABEL: "true"}))
        await client.create(CR, role("pods-reader", {LABEL: "true"},
                                     [READ_PODS]))
        await client.create(CR, role("cm-reader", {LABEL: "true"},
                                     [READ_CMS, READ_PODS]))
        await client.create(CR, role("unrelated", {"other": "x"}, [{"apiGroups": ["*"], "resources": ["*"],
                                                                    "verbs": ["*"]}]))

        async def union() -> bool:
            return await rules_of(client, "monitoring") == [READ_CMS, READ_PODS]
        await until(union, what="union of selected roles' rules")
        cfg = write_kubeconfig(srv.url, tmp_path)
        rc, out = await kubectl(cfg, "get", "clusterrole", "monitoring", "-o", "yaml")
        assert rc == 0, out
        assert yaml.safe_load(out)["rules"] == [READ_CMS, READ_PODS]
        # A selected role losing its label takes its rules out again.
        await client.patch(CR, "cm-reader", {"metadata": {"labels": None}})

        async def shrunk() -> bool:
            return await rules_of(client, "monitoring") == [READ_PODS]
        await until(shrunk, what="rules of an unselected role removed")
