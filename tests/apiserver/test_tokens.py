"""Service-account tokens: TokenRequest (serviceaccounts/token) issues them, TokenReview and the
authenticator verify them — audiences, expiry, bound objects and the service account's uid."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path
from typing import Any

import jwt
import pytest

from pyk8s.api.errors import StatusError
from pyk8s.api.resource import ResourceInfo
from pyk8s.apiserver.auth.rbac import RBACAuthorizer
from pyk8s.apiserver.auth.reviews import AuthReviews
from pyk8s.apiserver.auth.tokens import (
    BootstrapTokenAuthenticator,
    ServiceAccountTokens,
    TokenInvalid,
    split_service_account_username,
)
from pyk8s.apiserver.interfaces import UserInfo
from pyk8s.server.pki import Pki, ensure_pki

ADMIN = UserInfo("system:admin", groups=("system:masters", "system:authenticated"))
Objects = dict[tuple[str, str, str], dict[str, Any]]


@pytest.fixture
def objects(pki: Pki) -> Objects:
    return {
        ("serviceaccounts", "ns1", "default"): {
            "metadata": {"name": "default", "namespace": "ns1", "uid": "u-sa"}
        },
        ("pods", "ns1", "web"): {
            "metadata": {"name": "web", "namespace": "ns1", "uid": "u-pod"},
            "spec": {"serviceAccountName": "default"},
        },
        (
            "secrets",
            "kube-system",
            f"bootstrap-token-{pki.bootstrap_token[:6]}",
        ): pki.bootstrap_token_secret(),
    }


@pytest.fixture
def reviews(pki: Pki, objects: Objects) -> tuple[AuthReviews, ServiceAccountTokens]:
    def get(info: ResourceInfo, ns: str, name: str) -> dict[str, Any] | None:
        return objects.get((info.plural, ns, name))

    tokens = ServiceAccountTokens.from_files(pki.sa_key, pki.sa_pub, get)
    rbac = RBACAuthorizer(lambda info: [])
    return AuthReviews(
        tokens=tokens, bootstrap=BootstrapTokenAuthenticator(get), authorizer=rbac, rbac=rbac, get_object=get
    ), tokens


async def _request_token(r: AuthReviews, spec: dict[str, Any], name: str = "default") -> dict[str, Any]:
    body = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": spec}
    return await r.handlers()[("", "serviceaccounts", "token")](ADMIN, "ns1", name, body)


async def _review(r: AuthReviews, token: str, audiences: list[str] | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"token": token}
    if audiences is not None:
        spec["audiences"] = audiences
    body = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": spec}
    return await r.handlers()[("authentication.k8s.io", "tokenreviews", "")](ADMIN, "", "", body)


async def test_token_request_defaults_and_claims(reviews: tuple[AuthReviews, ServiceAccountTokens]) -> None:
    r, tokens = reviews
    before = int(time.time())
    out = await _request_token(r, {})
    assert out["kind"] == "TokenRequest" and out["apiVersion"] == "authentication.k8s.io/v1"
    assert out["metadata"]["name"] == "default" and out["metadata"]["namespace"] == "ns1"
    assert out["spec"]["expirationSeconds"] == 3600
    assert out["spec"]["audiences"] == ["https://kubernetes.default.svc.cluster.local"]
    expires = dt.datetime.fromisoformat(out["status"]["expirationTimestamp"].replace("Z", "+00:00"))
    assert before + 3600 <= expires.timestamp() <= time.time() + 3600
    claims = jwt.decode(out["status"]["token"], options={"verify_signature": False})
    assert claims["sub"] == "system:serviceaccount:ns1:default"
    assert claims["iss"] == tokens.issuer
    assert claims["kubernetes.io"] == {
        "namespace": "ns1",
        "serviceaccount": {"name": "default", "uid": "u-sa"},
    }
    assert jwt.get_unverified_header(out["status"]["token"])["alg"] == "ES256"  # ensure_pki makes a P-256 key


async def test_token_review_of_a_requested_token(reviews: tuple[AuthReviews, ServiceAccountTokens]) -> None:
    r, _ = reviews
    token = (await _request_token(r, {}))["status"]["token"]
    out = await _review(r, token)
    status = out["status"]
    assert status["authenticated"] is True
    assert status["user"]["username"] == "system:serviceaccount:ns1:default"
    assert status["user"]["uid"] == "u-sa"
    assert status["user"]["groups"] == [
        "system:serviceaccounts",
        "system:serviceaccounts:ns1",
        "system:authenticated",
    ]
    assert status["audiences"] == ["https://kubernetes.default.svc.cluster.local"]


async def test_audiences(reviews: tuple[AuthReviews, ServiceAccountTokens]) -> None:
    r, tokens = reviews
    token = (await _request_token(r, {"audiences": ["vault"]}))["status"]["token"]
    assert (await _review(r, token, ["vault", "other"]))["status"]["audiences"] == ["vault"]
    denied = (await _review(r, token))["status"]  # the API server's own audience
    assert denied["authenticated"] is False and "audiences" in denied["error"]
    with pytest.raises(TokenInvalid):
        await tokens.verify(token)


async def test_expiration_bounds(reviews: tuple[AuthReviews, ServiceAccountTokens]) -> None:
    r, _ = reviews
    with pytest.raises(StatusError) as e:
        await _request_token(r, {"expirationSeconds": 599})
    assert e.value.code == 422
    assert "may not specify a duration less than 10 minutes" in e.value.message
    out = await _request_token(r, {"expirationSeconds": 600})
    assert out["spec"]["expirationSeconds"] == 600


async def test_missing_service_account_is_404(reviews: tuple[AuthReviews, ServiceAccountTokens]) -> None:
    r, _ = reviews
    with pytest.raises(StatusError) as e:
        await _request_token(r, {}, name="ghost")
    assert (e.value.code, e.value.message) == (404, 'serviceaccounts "ghost" not found')


async def test_pod_bound_token(reviews: tuple[AuthReviews, ServiceAccountTokens], objects: Objects) -> None:
    r, _ = reviews
    out = await _request_token(r, {"boundObjectRef": {"kind": "Pod", "apiVersion": "v1", "name": "web"}})
    assert out["spec"]["boundObjectRef"]["uid"] == "u-pod"
    status = (await _review(r, out["status"]["token"]))["status"]
    assert status["user"]["extra"]["authentication.kubernetes.io/pod-name"] == ["web"]
    assert status["user"]["extra"]["authentication.kubernetes.io/pod-uid"] == ["u-pod"]
    # The pod is replaced (same name, new uid): tokens bound to the old one stop working.
    objects[("pods", "ns1", "web")] = {"metadata": {"name": "web", "namespace": "ns1", "uid": "u-pod-2"}}
    status = (await _review(r, out["status"]["token"]))["status"]
    assert status["authenticated"] is False and "pod" in status["error"]
    with pytest.raises(StatusError) as e:
        await _request_token(r, {"boundObjectRef": {"kind": "Pod", "name": "web", "uid": "u-pod"}})
    assert e.value.code == 409


async def test_recreated_service_account_invalidates_tokens(
    reviews: tuple[AuthReviews, ServiceAccountTokens], objects: Objects
) -> None:
    r, _ = reviews
    token = (await _request_token(r, {}))["status"]["token"]
    objects[("serviceaccounts", "ns1", "default")] = {"metadata": {"name": "default", "uid": "u-sa-2"}}
    status = (await _review(r, token))["status"]
    assert status["authenticated"] is False


async def test_expired_and_tampered_tokens(
    reviews: tuple[AuthReviews, ServiceAccountTokens], tmp_path: Path
) -> None:
    r, tokens = reviews
    old, _ = tokens.issue(namespace="ns1", name="default", uid="u-sa", now=time.time() - 7200)
    assert (await _review(r, old))["status"]["error"] == "[service account token has expired]"
    other = ensure_pki(tmp_path)
    forged, _ = ServiceAccountTokens.from_files(other.sa_key, other.sa_pub, lambda *a: None).issue(
        namespace="ns1", name="default", uid="u-sa"
    )
    assert (await _review(r, forged))["status"]["authenticated"] is False
    with pytest.raises(StatusError) as e:
        await _review(r, "")
    assert e.value.code == 400


async def test_token_review_of_bootstrap_token(
    reviews: tuple[AuthReviews, ServiceAccountTokens], pki: Pki
) -> None:
    r, _ = reviews
    status = (await _review(r, pki.bootstrap_token))["status"]
    assert status["authenticated"] is True
    assert status["user"]["username"] == f"system:bootstrap:{pki.bootstrap_token[:6]}"
    assert "system:bootstrappers" in status["user"]["groups"]


def test_split_service_account_username() -> None:
    assert split_service_account_username("system:serviceaccount:ns1:default") == ("ns1", "default")
    assert split_service_account_username("system:serviceaccount:ns1") is None
    assert split_service_account_username("jane") is None


async def test_an_rsa_key_of_an_older_data_dir_still_signs_rs256() -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    public = key.public_key().public_bytes(serialization.Encoding.PEM,
                                           serialization.PublicFormat.SubjectPublicKeyInfo)
    sa = {"metadata": {"name": "default", "namespace": "ns1", "uid": "u-sa"}}
    tokens = ServiceAccountTokens(private, public, lambda info, ns, name: sa if name == "default" else None)
    token, _ = tokens.issue(namespace="ns1", name="default", uid="u-sa")
    assert jwt.get_unverified_header(token)["alg"] == "RS256"
    user, _ = await tokens.verify(token)
    assert user.name == "system:serviceaccount:ns1:default"
    assert tokens.jwks()["keys"][0]["alg"] == "RS256"
