"""The access reviews and SelfSubjectReview: what `kubectl auth can-i` and `kubectl auth whoami` ask."""

from __future__ import annotations

from typing import Any

import pytest

from pyk8s.api.errors import StatusError
from pyk8s.api.resource import ResourceInfo
from pyk8s.apiserver.auth.policy import bootstrap_policy
from pyk8s.apiserver.auth.rbac import RBACAuthorizer
from pyk8s.apiserver.auth.reviews import AuthReviews
from pyk8s.apiserver.auth.tokens import ServiceAccountTokens
from pyk8s.apiserver.interfaces import UserInfo
from pyk8s.server.pki import Pki

AUTHZ = "authorization.k8s.io"
JANE = UserInfo("jane", groups=("dev", "system:authenticated"))
Obj = dict[str, Any]


@pytest.fixture
def handlers(pki: Pki) -> dict[tuple[str, str, str], Any]:
    objects: dict[str, list[Obj]] = {}
    for o in [
        *bootstrap_policy(),
        {
            "kind": "Role",
            "metadata": {"name": "pod-reader", "namespace": "ns1"},
            "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}],
        },
        {
            "kind": "RoleBinding",
            "metadata": {"name": "b", "namespace": "ns1"},
            "roleRef": {"kind": "Role", "name": "pod-reader", "apiGroup": "rbac.authorization.k8s.io"},
            "subjects": [{"kind": "Group", "name": "dev", "apiGroup": "rbac.authorization.k8s.io"}],
        },
    ]:
        objects.setdefault(o["kind"].lower() + "s", []).append(o)

    def get(info: ResourceInfo, ns: str, name: str) -> Obj | None:
        return None

    rbac = RBACAuthorizer(lambda info: objects.get(info.plural, []))
    tokens = ServiceAccountTokens.from_files(pki.sa_key, pki.sa_pub, get)
    return AuthReviews(tokens=tokens, bootstrap=None, authorizer=rbac, rbac=rbac, get_object=get).handlers()


def _body(kind: str, spec: Obj, group: str = AUTHZ) -> Obj:
    return {"apiVersion": f"{group}/v1", "kind": kind, "spec": spec}


async def test_self_subject_access_review(handlers: dict[tuple[str, str, str], Any]) -> None:
    ssar = handlers[(AUTHZ, "selfsubjectaccessreviews", "")]
    yes = await ssar(
        JANE,
        "",
        "",
        _body(
            "SelfSubjectAccessReview",
            {"resourceAttributes": {"namespace": "ns1", "verb": "list", "resource": "pods"}},
        ),
    )
    assert yes["kind"] == "SelfSubjectAccessReview"
    assert yes["status"]["allowed"] is True
    assert (
        yes["status"]["reason"] == 'RBAC: allowed by RoleBinding "b/ns1" of Role "pod-reader" to Group "dev"'
    )
    assert yes["spec"]["resourceAttributes"]["verb"] == "list"
    no = await ssar(
        JANE,
        "",
        "",
        _body(
            "SelfSubjectAccessReview",
            {"resourceAttributes": {"namespace": "ns1", "verb": "delete", "resource": "pods"}},
        ),
    )
    assert no["status"] == {"allowed": False}
    path = await ssar(
        JANE,
        "",
        "",
        _body("SelfSubjectAccessReview", {"nonResourceAttributes": {"path": "/version", "verb": "get"}}),
    )
    assert path["status"]["allowed"] is True


async def test_subject_access_review_for_another_user(handlers: dict[tuple[str, str, str], Any]) -> None:
    sar = handlers[(AUTHZ, "subjectaccessreviews", "")]
    out = await sar(
        UserInfo("system:admin", groups=("system:masters",)),
        "",
        "",
        _body(
            "SubjectAccessReview",
            {
                "user": "jane",
                "groups": ["dev"],
                "resourceAttributes": {"namespace": "ns1", "verb": "get", "resource": "pods", "name": "web"},
            },
        ),
    )
    assert out["status"]["allowed"] is True
    out = await sar(
        JANE,
        "",
        "",
        _body(
            "SubjectAccessReview",
            {"user": "jane", "resourceAttributes": {"namespace": "ns1", "verb": "get", "resource": "pods"}},
        ),
    )
    assert out["status"]["allowed"] is False  # without the group


async def test_subject_access_review_validation(handlers: dict[tuple[str, str, str], Any]) -> None:
    sar = handlers[(AUTHZ, "subjectaccessreviews", "")]
    with pytest.raises(StatusError) as e:
        await sar(JANE, "", "", _body("SubjectAccessReview", {"resourceAttributes": {"verb": "get"}}))
    assert e.value.code == 422 and "at least one of user or group must be specified" in e.value.message
    with pytest.raises(StatusError) as e:
        await sar(JANE, "", "", _body("SubjectAccessReview", {"user": "x"}))
    assert e.value.code == 422
    assert "exactly one of nonResourceAttributes or resourceAttributes must be specified" in e.value.message


async def test_local_subject_access_review(handlers: dict[tuple[str, str, str], Any]) -> None:
    lsar = handlers[(AUTHZ, "localsubjectaccessreviews", "")]
    spec = {
        "groups": ["dev"],
        "user": "x",
        "resourceAttributes": {"namespace": "ns1", "verb": "get", "resource": "pods"},
    }
    out = await lsar(JANE, "ns1", "", _body("LocalSubjectAccessReview", spec))
    assert out["status"]["allowed"] is True and out["metadata"]["namespace"] == "ns1"
    with pytest.raises(StatusError) as e:
        await lsar(JANE, "ns2", "", _body("LocalSubjectAccessReview", spec))
    assert e.value.code == 400


async def test_self_subject_rules_review(handlers: dict[tuple[str, str, str], Any]) -> None:
    ssrr = handlers[(AUTHZ, "selfsubjectrulesreviews", "")]
    out = await ssrr(JANE, "", "", _body("SelfSubjectRulesReview", {"namespace": "ns1"}))
    status = out["status"]
    assert status["incomplete"] is False
    assert {"verbs": ["get", "list"], "apiGroups": [""], "resources": ["pods"]} in status["resourceRules"]
    assert {
        "verbs": ["create"],
        "apiGroups": [AUTHZ],
        "resources": ["selfsubjectaccessreviews", "selfsubjectrulesreviews"],
    } in status["resourceRules"]
    assert any("/version" in r["nonResourceURLs"] for r in status["nonResourceRules"])


async def test_self_subject_review_is_whoami(handlers: dict[tuple[str, str, str], Any]) -> None:
    ssr = handlers[("authentication.k8s.io", "selfsubjectreviews", "")]
    out = await ssr(JANE, "", "", _body("SelfSubjectReview", {}, "authentication.k8s.io"))
    assert out["kind"] == "SelfSubjectReview"
    assert out["status"]["userInfo"] == {"username": "jane", "groups": ["dev", "system:authenticated"]}


async def test_wrong_kind_is_400(handlers: dict[tuple[str, str, str], Any]) -> None:
    with pytest.raises(StatusError) as e:
        await handlers[(AUTHZ, "selfsubjectaccessreviews", "")](JANE, "", "", _body("TokenReview", {}))
    assert e.value.code == 400
