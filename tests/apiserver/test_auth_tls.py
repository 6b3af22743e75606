"""Authentication over real TLS on loopback: a server with the PKI's SSLContext runs the union of the
x509, service-account and bootstrap-token authenticators; real aiohttp clients call it."""

from __future__ import annotations

import ssl
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from pyk8s.api.resource import ResourceInfo
from pyk8s.apiserver.auth.tokens import BootstrapTokenAuthenticator, ServiceAccountTokens
from pyk8s.apiserver.auth.union import PUBLIC_INFO_PATHS, UnionAuthenticator
from pyk8s.apiserver.auth.x509 import X509Authenticator
from pyk8s.server.pki import Pki, bootstrap_token_secret, ensure_pki
from tests.support.whoami import whoami_server

Objects = dict[tuple[str, str, str], dict[str, Any]]


@pytest.fixture
def objects(pki: Pki) -> Objects:
    sa = {"metadata": {"name": "builder", "namespace": "ns1", "uid": "sa-uid-1"}}
    return {
        ("serviceaccounts", "ns1", "builder"): sa,
        (
            "secrets",
            "kube-system",
            f"bootstrap-token-{pki.bootstrap_token[:6]}",
        ): pki.bootstrap_token_secret(),
    }


@pytest.fixture
def tokens(pki: Pki, objects: Objects) -> ServiceAccountTokens:
    return ServiceAccountTokens.from_files(
        pki.sa_key, pki.sa_pub, lambda info, ns, name: objects.get((info.plural, ns, name))
    )


@pytest.fixture
async def server(pki: Pki, objects: Objects, tokens: ServiceAccountTokens) -> AsyncIterator[str]:
    def get(info: ResourceInfo, ns: str, name: str) -> dict[str, Any] | None:
        return objects.get((info.plural, ns, name))

    union = UnionAuthenticator(
        [X509Authenticator(), tokens, BootstrapTokenAuthenticator(get)], anonymous_paths=PUBLIC_INFO_PATHS
    )

    async with whoami_server(union, pki.ssl_context()) as url:
        yield url


def _trusting(pki: Pki) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(pki.ca_cert))


async def _get(url: str, ctx: ssl.SSLContext, token: str | None = None) -> tuple[int, dict[str, Any]]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with aiohttp.ClientSession() as s, s.get(url, ssl=ctx, headers=headers) as r:
        return r.status, await r.json()


async def test_admin_client_certificate(server: str, pki: Pki) -> None:
    status, body = await _get(f"{server}/api", pki.client_ssl_context())
    assert status == 200
    assert body == {"username": "system:admin", "groups": ["system:masters", "system:authenticated"]}


async def test_no_credentials_is_401(server: str, pki: Pki) -> None:
    status, body = await _get(f"{server}/api", _trusting(pki))
    assert status == 401
    assert body["reason"] == "Unauthorized" and body["code"] == 401


async def test_anonymous_allowed_only_on_public_paths(server: str, pki: Pki) -> None:
    status, body = await _get(f"{server}/readyz", _trusting(pki))
    assert status == 200
    assert body == {"username": "system:anonymous", "groups": ["system:unauthenticated"]}


async def test_certificate_from_another_ca_is_refused(server: str, pki: Pki, tmp_path: Path) -> None:
    other = ensure_pki(tmp_path / "other")
    ctx = _trusting(pki)
    ctx.load_cert_chain(other.admin_cert, other.admin_key)
    # The TLS layer rejects the foreign certificate during the handshake (TLS 1.3 reports it on first read).
    with pytest.raises((aiohttp.ClientError, ssl.SSLError, ConnectionError)):
        await _get(f"{server}/api", ctx)


async def test_certificate_signed_by_our_ca(server: str, pki: Pki, tmp_path: Path) -> None:
    cert, key = pki.issue_client_cert("jane", ["dev", "qa"])
    (tmp_path / "c.pem").write_bytes(cert)
    (tmp_path / "k.pem").write_bytes(key)
    ctx = pki.client_ssl_context(tmp_path / "c.pem", tmp_path / "k.pem")
    status, body = await _get(f"{server}/api", ctx)
    assert (status, body) == (200, {"username": "jane", "groups": ["dev", "qa", "system:authenticated"]})


async def test_service_account_token(server: str, pki: Pki, tokens: ServiceAccountTokens) -> None:
    token, _ = tokens.issue(namespace="ns1", name="builder", uid="sa-uid-1")
    status, body = await _get(f"{server}/api", _trusting(pki), token)
    assert status == 200
    assert body["username"] == "system:serviceaccount:ns1:builder"
    assert body["uid"] == "sa-uid-1"
    assert body["groups"] == ["system:serviceaccounts", "system:serviceaccounts:ns1", "system:authenticated"]
    assert body["extra"]["authentication.kubernetes.io/credential-id"][0].startswith("JTI=")


async def test_expired_token_is_401(server: str, pki: Pki, tokens: ServiceAccountTokens) -> None:
    token, exp = tokens.issue(
        namespace="ns1", name="builder", uid="sa-uid-1", expiration_seconds=600, now=time.time() - 3600
    )
    assert exp < time.time()
    status, body = await _get(f"{server}/api", _trusting(pki), token)
    assert (status, body["reason"]) == (401, "Unauthorized")


async def test_token_of_deleted_service_account_is_401(
    server: str, pki: Pki, tokens: ServiceAccountTokens, objects: Objects
) -> None:
    token, _ = tokens.issue(namespace="ns1", name="builder", uid="sa-uid-1")
    del objects[("serviceaccounts", "ns1", "builder")]
    status, _ = await _get(f"{server}/api", _trusting(pki), token)
    assert status == 401


async def test_token_signed_by_another_key_is_401(
    server: str, pki: Pki, tmp_path: Path, objects: Objects
) -> None:
    other = ensure_pki(tmp_path / "other")
    forger = ServiceAccountTokens.from_files(other.sa_key, other.sa_pub, lambda *a: None)
    token, _ = forger.issue(namespace="ns1", name="builder", uid="sa-uid-1")
    status, _ = await _get(f"{server}/api", _trusting(pki), token)
    assert status == 401


async def test_bootstrap_token(server: str, pki: Pki) -> None:
    status, body = await _get(f"{server}/api", _trusting(pki), pki.bootstrap_token)
    token_id = pki.bootstrap_token.split(".")[0]
    assert status == 200
    assert body == {
        "username": f"system:bootstrap:{token_id}",
        "groups": [
            "system:bootstrappers",
            "system:bootstrappers:pyk8s:default-node-token",
            "system:authenticated",
        ],
    }


async def test_bootstrap_token_with_wrong_secret_is_401(server: str, pki: Pki) -> None:
    token_id = pki.bootstrap_token.split(".")[0]
    status, _ = await _get(f"{server}/api", _trusting(pki), f"{token_id}.0000000000000000")
    assert status == 401


async def test_expired_bootstrap_token_is_401(server: str, pki: Pki, objects: Objects) -> None:
    import datetime as dt

    token = "abcdef.0123456789abcdef"
    objects[("secrets", "kube-system", "bootstrap-token-abcdef")] = bootstrap_token_secret(
        token, expiration=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)
    )
    status, _ = await _get(f"{server}/api", _trusting(pki), token)
    assert status == 401
    objects[("secrets", "kube-system", "bootstrap-token-abcdef")] = bootstrap_token_secret(
        token, expiration=dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
    )
    status, body = await _get(f"{server}/api", _trusting(pki), token)
    assert (status, body["username"]) == (200, "system:bootstrap:abcdef")


async def test_unknown_bearer_token_is_401(server: str, pki: Pki) -> None:
    status, _ = await _get(f"{server}/api", _trusting(pki), "not-a-token-we-know")
    assert status == 401


async def test_token_in_websocket_subprotocol(server: str, pki: Pki, tokens: ServiceAccountTokens) -> None:
    import base64

    token, _ = tokens.issue(namespace="ns1", name="builder", uid="sa-uid-1")
    encoded = base64.urlsafe_b64encode(token.encode()).decode().rstrip("=")
    headers = {
        "Sec-WebSocket-Protocol": f"v5.channel.k8s.io, base64url.bearer.authorization.k8s.io.{encoded}"
    }
    async with aiohttp.ClientSession() as s, s.get(f"{server}/api", ssl=_trusting(pki), headers=headers) as r:
        assert r.status == 200
        assert (await r.json())["username"] == "system:serviceaccount:ns1:builder"
