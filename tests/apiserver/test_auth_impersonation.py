"""Impersonation headers over real TLS: the admin (system:masters) may impersonate; the result is the
identity Kubernetes builds; a half-specified request is a 400."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from pyk8s.apiserver.auth.impersonation import ImpersonatingAuthenticator
from pyk8s.apiserver.auth.policy import bootstrap_policy
from pyk8s.apiserver.auth.rbac import RBACAuthorizer
from pyk8s.apiserver.auth.union import UnionAuthenticator
from pyk8s.apiserver.auth.x509 import X509Authenticator
from pyk8s.server.pki import Pki
from tests.support.whoami import whoami_server


@pytest.fixture
async def server(pki: Pki) -> AsyncIterator[str]:
    objects: dict[str, list[dict[str, Any]]] = {}
    for o in bootstrap_policy():
        objects.setdefault(o["kind"].lower() + "s", []).append(o)
    authn = ImpersonatingAuthenticator(
        UnionAuthenticator([X509Authenticator()]), RBACAuthorizer(lambda info: objects.get(info.plural, []))
    )

    async with whoami_server(authn, pki.ssl_context()) as url:
        yield f"{url}/"


async def _get(url: str, pki: Pki, headers: list[tuple[str, str]]) -> tuple[int, dict[str, Any]]:
    ctx = pki.client_ssl_context()
    async with aiohttp.ClientSession() as s, s.get(url, ssl=ctx, headers=headers) as r:
        return r.status, await r.json()


async def test_user_groups_uid_and_extra(server: str, pki: Pki) -> None:
    status, body = await _get(
        server,
        pki,
        [
            ("Impersonate-User", "jane"),
            ("Impersonate-Group", "dev"),
            ("Impersonate-Group", "qa"),
            ("Impersonate-Uid", "u-1"),
            ("Impersonate-Extra-Scopes", "view"),
            ("Impersonate-Extra-Scopes", "edit"),
        ],
    )
    assert status == 200
    assert body == {
        "username": "jane",
        "uid": "u-1",
        "groups": ["dev", "qa", "system:authenticated"],
        "extra": {"scopes": ["view", "edit"]},
    }


async def test_service_account_gets_its_groups(server: str, pki: Pki) -> None:
    status, body = await _get(server, pki, [("Impersonate-User", "system:serviceaccount:ns1:builder")])
    assert status == 200
    assert body["groups"] == ["system:serviceaccounts", "system:serviceaccounts:ns1", "system:authenticated"]


async def test_anonymous(server: str, pki: Pki) -> None:
    status, body = await _get(server, pki, [("Impersonate-User", "system:anonymous")])
    assert (status, body["groups"]) == (200, ["system:unauthenticated"])


async def test_groups_without_user_is_400(server: str, pki: Pki) -> None:
    status, body = await _get(server, pki, [("Impersonate-Group", "system:masters")])
    assert (status, body["reason"]) == (400, "BadRequest")


async def test_no_headers_is_the_caller(server: str, pki: Pki) -> None:
    status, body = await _get(server, pki, [])
    assert (status, body["username"]) == (200, "system:admin")


async def test_caller_without_impersonate_rights_is_403(server: str, pki: Pki, tmp_path: Any) -> None:
    cert, key = pki.issue_client_cert("jane")
    (tmp_path / "c").write_bytes(cert)
    (tmp_path / "k").write_bytes(key)
    ctx = pki.client_ssl_context(tmp_path / "c", tmp_path / "k")
    async with aiohttp.ClientSession() as s, s.get(server, ssl=ctx, headers={"Impersonate-User": "bob"}) as r:
        body = await r.json()
    assert r.status == 403
    assert body["message"] == (
        'users "bob" is forbidden: User "jane" cannot impersonate resource "users" '
        'in API group "" at the cluster scope'
    )
