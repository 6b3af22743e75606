"""The auth pieces wired into the real API server over TLS, driven by the real kubectl: `auth whoami`,
`auth can-i`, `create token`, and a service account's token that RBAC first forbids, then allows."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp import web

from pyk8s.api import catalog
from pyk8s.api.errors import StatusError
from pyk8s.api.resource import ResourceInfo
from pyk8s.apiserver.app import API_SERVER, APIServer, APIServerConfig, create_app
from pyk8s.apiserver.auth import oidc
from pyk8s.apiserver.auth.audit import AuditLog
from pyk8s.apiserver.auth.policy import bootstrap_policy
from pyk8s.apiserver.auth.stack import build_auth_stack, watch_cache_revision
from pyk8s.server.pki import Pki, ensure_pki, render_kubeconfig
from pyk8s.store.memory import MemoryStore

KUBECTL = shutil.which("kubectl")
pytestmark = pytest.mark.skipif(KUBECTL is None, reason="needs kubectl")
Obj = dict[str, Any]


@dataclass
class Cluster:
    url: str
    pki: Pki
    api: APIServer
    admin_kubeconfig: Path
    audit_path: Path
    home: Path

    async def kubectl(self, *args: str, kubeconfig: Path | None = None) -> tuple[int, str, str]:
        env = {**os.environ, "HOME": str(self.home), "KUBECONFIG": str(kubeconfig or self.admin_kubeconfig)}
        proc = await asyncio.create_subprocess_exec(
            KUBECTL or "kubectl",
            *args,
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(proc.communicate(), 60)
        return proc.returncode or 0, out.decode(), err.decode()


def _info(group: str, kind: str) -> ResourceInfo:
    info = catalog.by_kind(group, kind)
    assert info is not None, kind
    return info


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[Cluster]:
    pki = ensure_pki(tmp_path / "data")
    store = MemoryStore()
    holder: dict[str, APIServer] = {}

    async def get_object(info: ResourceInfo, namespace: str, name: str) -> Obj | None:
        # The watch cache first; the store when the cache has not seen a just-created object yet.
        key = info.storage_key(namespace if info.namespaced else None, name)
        cache = holder["api"].caches.caches.get(info.storage_prefix())
        if cache is not None and key in cache.objects:
            return cache.objects[key]
        try:
            return await holder["api"].registry.get(info, namespace, name)
        except StatusError as e:
            if e.code == 404:
                return None
            raise

    stack = build_auth_stack(
        sa_private_key=pki.sa_key.read_bytes(),
        sa_public_key=pki.sa_pub.read_bytes(),
        get_object=get_object,
        lister=lambda info: holder["api"].list_objects(info),
        rbac_revision=lambda: watch_cache_revision(holder["api"].caches)(),
    )
    audit = AuditLog(str(tmp_path / "audit.log"))
    app = create_app(
        APIServerConfig(
            store=store,
            authenticator=stack.authenticator,
            authorizer=stack.authorizer,
            virtual_creates=stack.virtual_creates,
            audit=audit,
            admission=[stack.escalation],
        )
    )
    api = holder["api"] = app[API_SERVER]
    oidc.add_routes(app, stack.tokens)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=pki.ssl_context())
    await site.start()
    url = f"https://127.0.0.1:{runner.addresses[0][1]}"

    for ns in ("default", "kube-system"):
        await api.create_object(_info("", "Namespace"), {"metadata": {"name": ns}})
    for obj in bootstrap_policy():
        await api.create_object(_info("rbac.authorization.k8s.io", obj["kind"]), obj)
    await api.create_object(
        _info("", "ServiceAccount"), {"metadata": {"name": "default", "namespace": "default"}}
    )
    await api.create_object(_info("", "Secret"), pki.bootstrap_token_secret())

    kubeconfig = tmp_path / "admin.yaml"
    kubeconfig.write_text(
        pki.kubeconfig_for(pki.admin_cert.read_bytes(), pki.admin_key.read_bytes(), server_url=url)
    )
    (tmp_path / "home").mkdir()
    try:
        yield Cluster(url, pki, api, kubeconfig, tmp_path / "audit.log", tmp_path / "home")
    finally:
        await runner.cleanup()
        await store.close()
        audit.close()


async def _eventually(check: Any, deadline: float = 10.0) -> Any:
    end = time.monotonic() + deadline
    while True:
        result = await check()
        if result or time.monotonic() > end:
            return result
        await asyncio.sleep(0.05)


async def test_whoami_and_can_i_as_admin(cluster: Cluster) -> None:
    code, out, err = await cluster.kubectl("auth", "whoami", "-o", "json")
    assert code == 0, err
    info = json.loads(out)["status"]["userInfo"]
    assert info["username"] == "system:admin"
    assert info["groups"] == ["system:masters", "system:authenticated"]
    code, out, _ = await cluster.kubectl("auth", "can-i", "delete", "nodes")
    assert (code, out.strip()) == (0, "yes")


async def test_no_credentials_is_401(cluster: Cluster) -> None:
    import ssl

    ctx = ssl.create_default_context(cafile=str(cluster.pki.ca_cert))
    async with aiohttp.ClientSession() as s, s.get(f"{cluster.url}/api/v1/namespaces", ssl=ctx) as r:
        assert r.status == 401
        assert (await r.json())["reason"] == "Unauthorized"
        # The health endpoints stay public.
    async with aiohttp.ClientSession() as s, s.get(f"{cluster.url}/readyz", ssl=ctx) as r:
        assert r.status == 200


async def test_service_account_token_forbidden_then_allowed(cluster: Cluster, tmp_path: Path) -> None:
    code, token, err = await cluster.kubectl("create", "token", "default", "-n", "default")
    assert code == 0, err
    token = token.strip()
    sa_config = tmp_path / "sa.yaml"
    sa_config.write_text(render_kubeconfig(cluster.url, cluster.pki.ca_cert.read_bytes(), token=token))

    code, out, err = await cluster.kubectl("auth", "whoami", "-o", "json", kubeconfig=sa_config)
    assert code == 0, err
    assert json.loads(out)["status"]["userInfo"]["username"] == "system:serviceaccount:default:default"

    code, out, err = await cluster.kubectl("get", "pods", "-n", "default", "-o", "name", kubeconfig=sa_config)
    assert code != 0
    assert (
        'pods is forbidden: User "system:serviceaccount:default:default" cannot list resource "pods" '
        'in API group "" in the namespace "default"'
    ) in err
    code, out, _ = await cluster.kubectl(
        "auth", "can-i", "list", "pods", "-n", "default", kubeconfig=sa_config
    )
    assert (code, out.strip()) == (1, "no")

    # A manifest, not `kubectl create rolebinding`: that typed command posts protobuf too.
    manifest = tmp_path / "rb.yaml"
    manifest.write_text(
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\n"
        "metadata: {name: sa-view, namespace: default}\n"
        "roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: view}\n"
        "subjects: [{kind: ServiceAccount, name: default, namespace: default}]\n"
    )
    code, _, err = await cluster.kubectl("create", "-f", str(manifest))
    assert code == 0, err

    async def allowed() -> bool:
        code, out, _ = await cluster.kubectl(
            "auth", "can-i", "list", "pods", "-n", "default", kubeconfig=sa_config
        )
        return code == 0 and out.strip() == "yes"

    assert await _eventually(allowed)
    code, out, err = await cluster.kubectl("get", "pods", "-n", "default", "-o", "name", kubeconfig=sa_config)
    assert code == 0, err
    code, out, _ = await cluster.kubectl(
        "auth", "can-i", "create", "pods", "-n", "default", kubeconfig=sa_config
    )
    assert (code, out.strip()) == (1, "no")
    code, out, err = await cluster.kubectl("auth", "can-i", "--list", "-n", "default", kubeconfig=sa_config)
    assert code == 0, err
    assert "pods" in out and "selfsubjectaccessreviews.authorization.k8s.io" in out


async def test_bootstrap_token_identity(cluster: Cluster, tmp_path: Path) -> None:
    config = tmp_path / "boot.yaml"
    config.write_text(
        render_kubeconfig(cluster.url, cluster.pki.ca_cert.read_bytes(), token=cluster.pki.bootstrap_token)
    )
    code, out, err = await cluster.kubectl("auth", "whoami", "-o", "json", kubeconfig=config)
    assert code == 0, err
    assert (
        json.loads(out)["status"]["userInfo"]["username"]
        == f"system:bootstrap:{cluster.pki.bootstrap_token[:6]}"
    )
    config.write_text(
        render_kubeconfig(
            cluster.url, cluster.pki.ca_cert.read_bytes(), token=cluster.pki.bootstrap_token[:7] + "0" * 16
        )
    )
    code, _, err = await cluster.kubectl("auth", "whoami", kubeconfig=config)
    assert code != 0 and "Unauthorized" in err


async def test_audit_log_has_a_line_per_request(cluster: Cluster) -> None:
    code, _, err = await cluster.kubectl("get", "namespaces", "-o", "name")
    assert code == 0, err

    async def logged() -> list[Obj]:
        text = cluster.audit_path.read_bytes() if cluster.audit_path.exists() else b""
        events = [orjson.loads(x) for x in text.splitlines()]
        return [
            e
            for e in events
            if e.get("objectRef", {}).get("resource") == "namespaces" and e["verb"] == "list"
        ]

    events = await _eventually(logged)
    assert events
    e = events[-1]
    assert e["user"]["username"] == "system:admin"
    assert e["responseStatus"]["code"] == 200
    assert e["userAgent"].startswith("kubectl")


def _rolebinding(name: str, role: str) -> str:
    return (
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\n"
        f"metadata: {{name: {name}, namespace: default}}\n"
        f"roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: {role}}}\n"
        "subjects: [{kind: ServiceAccount, name: default, namespace: default}]\n"
    )


async def test_namespace_admin_cannot_escalate(cluster: Cluster, tmp_path: Path) -> None:
    (tmp_path / "rb-admin.yaml").write_text(_rolebinding("sa-admin", "admin"))
    code, _, err = await cluster.kubectl("create", "-f", str(tmp_path / "rb-admin.yaml"))
    assert code == 0, err
    code, token, err = await cluster.kubectl("create", "token", "default", "-n", "default")
    assert code == 0, err
    sa_config = tmp_path / "sa.yaml"
    sa_config.write_text(
        render_kubeconfig(cluster.url, cluster.pki.ca_cert.read_bytes(), token=token.strip())
    )

    async def is_admin() -> bool:
        _, out, _ = await cluster.kubectl(
            "auth", "can-i", "create", "rolebindings", "-n", "default", kubeconfig=sa_config
        )
        return out.strip() == "yes"

    assert await _eventually(is_admin)
    (tmp_path / "rb-view.yaml").write_text(_rolebinding("sa-view", "view"))
    code, _, err = await cluster.kubectl("create", "-f", str(tmp_path / "rb-view.yaml"), kubeconfig=sa_config)
    assert code == 0, err
    (tmp_path / "rb-root.yaml").write_text(_rolebinding("sa-root", "cluster-admin"))
    code, _, err = await cluster.kubectl("create", "-f", str(tmp_path / "rb-root.yaml"), kubeconfig=sa_config)
    assert code != 0
    assert "is attempting to grant RBAC permissions not currently held" in err


async def test_impersonation(cluster: Cluster, tmp_path: Path) -> None:
    code, out, err = await cluster.kubectl("auth", "whoami", "-o", "json", "--as=jane", "--as-group=dev")
    assert code == 0, err
    assert json.loads(out)["status"]["userInfo"] == {
        "username": "jane",
        "groups": ["dev", "system:authenticated"],
    }
    sa = "--as=system:serviceaccount:default:default"
    code, out, _ = await cluster.kubectl("auth", "can-i", "list", "pods", "-n", "default", sa)
    assert (code, out.strip()) == (1, "no")
    code, out, _ = await cluster.kubectl("auth", "can-i", "create", "selfsubjectaccessreviews", sa)
    assert (code, out.strip()) == (0, "yes")

    # A service account may not impersonate anyone.
    code, token, err = await cluster.kubectl("create", "token", "default", "-n", "default")
    assert code == 0, err
    sa_config = tmp_path / "sa.yaml"
    sa_config.write_text(
        render_kubeconfig(cluster.url, cluster.pki.ca_cert.read_bytes(), token=token.strip())
    )
    code, _, err = await cluster.kubectl("get", "pods", "--as=system:admin", kubeconfig=sa_config)
    assert code != 0
    assert (
        'users "system:admin" is forbidden: User "system:serviceaccount:default:default" cannot impersonate'
        in err
    )


async def test_service_account_issuer_discovery(cluster: Cluster) -> None:
    import ssl

    import jwt

    code, token, err = await cluster.kubectl("create", "token", "default", "-n", "default")
    assert code == 0, err
    token = token.strip()
    ctx = ssl.create_default_context(cafile=str(cluster.pki.ca_cert))
    headers = {"Authorization": f"Bearer {token}"}
    async with aiohttp.ClientSession(headers=headers) as s:
        async with s.get(f"{cluster.url}/.well-known/openid-configuration", ssl=ctx) as r:
            assert r.status == 200
            configuration = await r.json()
        async with s.get(f"{cluster.url}/openid/v1/jwks", ssl=ctx) as r:
            assert r.status == 200
            assert r.content_type == "application/jwk-set+json"
            jwks = jwt.PyJWKSet.from_dict(await r.json(content_type=None))
    # Anyone holding the published key set can verify the token, as an external OIDC consumer would.
    kid = jwt.get_unverified_header(token)["kid"]
    key = next(k for k in jwks.keys if k.key_id == kid)
    claims = jwt.decode(
        token, key.key, algorithms=configuration["id_token_signing_alg_values_supported"],
        audience=configuration["issuer"], issuer=configuration["issuer"],
    )
    assert jwt.get_unverified_header(token)["alg"] == "ES256"  # the server's P-256 key
    assert claims["sub"] == "system:serviceaccount:default:default"
    # Without credentials the documents are not public (Kubernetes binds them to system:serviceaccounts).
    async with aiohttp.ClientSession() as s, s.get(f"{cluster.url}/openid/v1/jwks", ssl=ctx) as r:
        assert r.status == 401
