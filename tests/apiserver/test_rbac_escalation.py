"""Privilege-escalation prevention for roles and bindings, as Kubernetes' RBAC registry enforces it."""

from __future__ import annotations

from typing import Any

import pytest

from pyk8s.api import catalog
from pyk8s.api.errors import StatusError
from pyk8s.api.resource import ResourceInfo
from pyk8s.apiserver.auth.escalation import RBACEscalationCheck
from pyk8s.apiserver.auth.policy import bootstrap_policy
from pyk8s.apiserver.auth.rbac import RBACAuthorizer
from pyk8s.apiserver.interfaces import AdmissionRequest, UserInfo

RBAC = "rbac.authorization.k8s.io"
JANE = UserInfo("jane", groups=("system:authenticated",))
Obj = dict[str, Any]


def _info(kind: str) -> ResourceInfo:
    info = catalog.by_kind(RBAC, kind)
    assert info is not None
    return info


def _binding(name: str, ns: str, role_kind: str, role: str, user: str) -> Obj:
    return {
        "kind": "RoleBinding",
        "metadata": {"name": name, "namespace": ns},
        "roleRef": {"apiGroup": RBAC, "kind": role_kind, "name": role},
        "subjects": [{"kind": "User", "name": user, "apiGroup": RBAC}],
    }


@pytest.fixture
def objects() -> dict[str, list[Obj]]:
    objs: dict[str, list[Obj]] = {}
    for o in [*bootstrap_policy(), _binding("jane-admin", "ns1", "ClusterRole", "admin", "jane")]:
        objs.setdefault(o["kind"].lower() + "s", []).append(o)
    return objs


@pytest.fixture
def check(objects: dict[str, list[Obj]]) -> RBACEscalationCheck:
    return RBACEscalationCheck(RBACAuthorizer(lambda info: objects.get(info.plural, [])))


async def _create(check: RBACEscalationCheck, kind: str, obj: Obj, user: UserInfo = JANE) -> None:
    meta = obj["metadata"]
    await check.validate(
        AdmissionRequest(
            "CREATE", _info(kind), "", meta.get("namespace", ""), meta["name"], obj, None, user, False
        )
    )


def _role(name: str, *rules: Obj) -> Obj:
    return {"kind": "Role", "metadata": {"name": name, "namespace": "ns1"}, "rules": list(rules)}


async def test_role_within_held_permissions(check: RBACEscalationCheck) -> None:
    await _create(
        check,
        "Role",
        _role("r", {"apiGroups": [""], "resources": ["pods", "pods/log"], "verbs": ["get", "list"]}),
    )
    await _create(
        check,
        "Role",
        _role(
            "r",
            {"apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["one"], "verbs": ["update"]},
        ),
    )


async def test_role_beyond_held_permissions_is_403(check: RBACEscalationCheck) -> None:
    with pytest.raises(StatusError) as e:
        await _create(
            check, "Role", _role("r", {"apiGroups": [""], "resources": ["pods", "nodes"], "verbs": ["get"]})
        )
    assert e.value.code == 403
    assert e.value.message == (
        'roles.rbac.authorization.k8s.io "r" is forbidden: user "jane" (groups=["system:authenticated"]) '
        "is attempting to grant RBAC permissions not currently held:\n"
        '{APIGroups:[""], Resources:["nodes"], Verbs:["get"]}'
    )
    with pytest.raises(StatusError):  # "*" verbs are only covered by "*"
        await _create(check, "Role", _role("r", {"apiGroups": [""], "resources": ["pods"], "verbs": ["*"]}))
    with pytest.raises(StatusError):  # ns2: jane holds nothing there
        await _create(
            check,
            "Role",
            {
                **_role("r", {"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}),
                "metadata": {"name": "r", "namespace": "ns2"},
            },
        )


async def test_binding_needs_the_roles_permissions(check: RBACEscalationCheck) -> None:
    await _create(check, "RoleBinding", _binding("b", "ns1", "ClusterRole", "view", "bob"))
    await _create(check, "RoleBinding", _binding("b", "ns1", "ClusterRole", "edit", "bob"))
    with pytest.raises(StatusError) as e:
        await _create(check, "RoleBinding", _binding("b", "ns1", "ClusterRole", "cluster-admin", "bob"))
    assert (
        e.value.code == 403
        and "is attempting to grant RBAC permissions not currently held" in e.value.message
    )
    with pytest.raises(StatusError) as e:
        await _create(check, "RoleBinding", _binding("b", "ns1", "ClusterRole", "no-such-role", "bob"))
    assert e.value.code == 404


async def test_bind_and_escalate_verbs(objects: dict[str, list[Obj]], check: RBACEscalationCheck) -> None:
    objects["clusterroles"].append(
        {
            "kind": "ClusterRole",
            "metadata": {"name": "binder"},
            "rules": [
                {
                    "apiGroups": [RBAC],
                    "resources": ["clusterroles"],
                    "verbs": ["bind"],
                    "resourceNames": ["cluster-admin"],
                },
                {"apiGroups": [RBAC], "resources": ["roles"], "verbs": ["escalate"]},
            ],
        }
    )
    objects["rolebindings"].append(_binding("jane-binder", "ns1", "ClusterRole", "binder", "jane"))
    await _create(check, "RoleBinding", _binding("b", "ns1", "ClusterRole", "cluster-admin", "bob"))
    await _create(check, "Role", _role("r", {"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}))


async def test_masters_may_do_anything(check: RBACEscalationCheck) -> None:
    admin = UserInfo("system:admin", groups=("system:masters",))
    await _create(
        check,
        "ClusterRole",
        {
            "kind": "ClusterRole",
            "metadata": {"name": "x"},
            "rules": [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}],
        },
        admin,
    )


async def test_aggregated_role_counts_what_it_would_collect(check: RBACEscalationCheck) -> None:
    # A ClusterRole that aggregates the edit rules grants what edit grants: jane (admin in ns1 only) lacks it
    # cluster-wide.
    role = {
        "kind": "ClusterRole",
        "metadata": {"name": "agg"},
        "rules": [],
        "aggregationRule": {
            "clusterRoleSelectors": [{"matchLabels": {"rbac.authorization.k8s.io/aggregate-to-edit": "true"}}]
        },
    }
    with pytest.raises(StatusError) as e:
        await _create(check, "ClusterRole", role)
    assert e.value.code == 403
