"""RBAC roles and bindings as Kubernetes' docs write them, and the mistakes Kubernetes refuses."""

from __future__ import annotations

import copy
import functools
from typing import Any

from tests.api._validation import check_in

Obj = dict[str, Any]
GROUP = "rbac.authorization.k8s.io"


check = functools.partial(check_in, GROUP)


POD_READER = {
    "apiVersion": f"{GROUP}/v1",
    "kind": "Role",
    "metadata": {"namespace": "default", "name": "pod-reader"},
    "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "watch", "list"]}],
}


def test_documented_roles_and_bindings_are_valid() -> None:
    assert check("Role", POD_READER) == []
    secret_reader = {
        "metadata": {"name": "secret-reader"},
        "rules": [
            {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "watch", "list"]},
            {"nonResourceURLs": ["/healthz", "/healthz/*"], "verbs": ["get", "post"]},
        ],
    }
    assert check("ClusterRole", secret_reader) == []
    binding = {
        "metadata": {"name": "read-pods", "namespace": "default"},
        "subjects": [
            {"kind": "User", "name": "jane", "apiGroup": GROUP},
            {"kind": "ServiceAccount", "name": "default", "namespace": "kube-system"},
        ],
        "roleRef": {"kind": "Role", "name": "pod-reader", "apiGroup": GROUP},
    }
    assert check("RoleBinding", binding) == []
    cluster_binding = {
        "metadata": {"name": "read-secrets-global"},
        "subjects": [{"kind": "Group", "name": "manager"}],  # apiGroup defaulted
        "roleRef": {"kind": "ClusterRole", "name": "secret-reader"},
    }
    assert check("ClusterRoleBinding", cluster_binding) == []
    # RBAC names are path segments: colons are fine, as in system:controller:… roles.
    assert check("ClusterRole", {"metadata": {"name": "system:controller:job-controller"}, "rules": []}) == []


def test_rule_errors() -> None:
    role = copy.deepcopy(POD_READER)
    role["rules"] = [
        {"resources": ["pods"], "verbs": []},
        {"nonResourceURLs": ["/healthz"], "verbs": ["get"]},
    ]
    assert check("Role", role) == [
        ("rules[0].verbs", "FieldValueRequired", "Required value: verbs must contain at least one value"),
        (
            "rules[0].apiGroups",
            "FieldValueRequired",
            "Required value: resource rules must supply at least one api group",
        ),
        (
            "rules[1].nonResourceURLs",
            "FieldValueInvalid",
            'Invalid value: []string{"/healthz"}: namespaced rules cannot apply to non-resource URLs',
        ),
    ]


def test_binding_errors() -> None:
    binding = {
        "metadata": {"name": "b"},
        "subjects": [{"kind": "ServiceAccount", "name": "default"}, {"kind": "Robot", "name": "r2"}],
        "roleRef": {"kind": "Role", "name": "pod-reader", "apiGroup": GROUP},
    }
    assert check("ClusterRoleBinding", binding) == [
        (
            "roleRef.kind",
            "FieldValueNotSupported",
            'Unsupported value: "Role": supported values: "ClusterRole"',
        ),
        ("subjects[0].namespace", "FieldValueRequired", "Required value"),
        (
            "subjects[1].kind",
            "FieldValueNotSupported",
            'Unsupported value: "Robot": supported values: "ServiceAccount", "User", "Group"',
        ),
    ]


def test_role_ref_is_immutable() -> None:
    old = {
        "metadata": {"name": "b", "namespace": "default"},
        "subjects": [],
        "roleRef": {"kind": "Role", "name": "pod-reader", "apiGroup": GROUP},
    }
    new = copy.deepcopy(old)
    new["roleRef"]["name"] = "admin"
    assert check("RoleBinding", new, old) == [
        (
            "roleRef",
            "FieldValueInvalid",
            'Invalid value: rbac.RoleRef{APIGroup:"rbac.authorization.k8s.io", Kind:"Role", Name:"admin"}: '
            "cannot change roleRef",
        )
    ]
