"""csrapproving and csrsigning against a real in-process API server, requests sent as distinct users."""

from __future__ import annotations

import base64
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from pyk8s.api.errors import StatusError
from pyk8s.apiserver.interfaces import UserInfo
from pyk8s.client.client import Client
from pyk8s.client.transport import HTTPTransport
from pyk8s.controllers.certificates import CSR, new_csr_approver, new_csr_signer
from pyk8s.controllers.manager import ControllerOptions
from pyk8s.server.pki import ensure_pki
from tests.controllers._housekeeping import running, until
from tests.support.apiserver import Server, api_server

USERS = {
    "bootstrap": UserInfo("system:bootstrap:abcdef", groups=("system:bootstrappers", "system:authenticated")),
    "node-a": UserInfo("system:node:a", groups=("system:nodes", "system:authenticated")),
    "jane": UserInfo("jane", groups=("system:authenticated",)),
}


class TokenUsers:
    """Bearer `<name>` is the user USERS[name]; no token is the admin (the controllers' client)."""

    async def authenticate(self, request: web.Request) -> UserInfo | None:
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        return USERS.get(token, UserInfo("system:admin", groups=("system:masters",)))


@contextlib.asynccontextmanager
async def cluster(tmp_path: Any) -> AsyncIterator[tuple[Server, Client, bytes]]:
    pki = ensure_pki(tmp_path)
    # One worker: requests are reconciled in the order they came, so once a later request is approved
    # an earlier one left alone was looked at and refused, not merely not reached yet.
    opts = ControllerOptions(ca_cert_pem=pki.ca_cert.read_bytes(), ca_key_pem=pki.ca_key.read_bytes(),
                             workers=1)
    async with api_server(authenticator=TokenUsers()) as srv, \
            running(srv, new_csr_approver, new_csr_signer, options=opts) as (admin, _):
        yield srv, admin, pki.ca_cert.read_bytes()


def client_as(srv: Server, user: str) -> Client:
    return Client(HTTPTransport(srv.url, token=user))


def csr_body(cn: str, orgs: tuple[str, ...] = ("system:nodes",),
             usages: tuple[str, ...] = ("digital signature", "client auth"),
             signer: str = "kubernetes.io/kube-apiserver-client-kubelet") -> dict[str, Any]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([*(x509.NameAttribute(NameOID.ORGANIZATION_NAME, o) for o in orgs),
                      x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    pem = x509.CertificateSigningRequestBuilder().subject_name(name).sign(key, hashes.SHA256()).public_bytes(
        serialization.Encoding.PEM)
    return {"apiVersion": "certificates.k8s.io/v1", "kind": "CertificateSigningRequest",
            "metadata": {"generateName": "csr-"},
            "spec": {"request": base64.b64encode(pem).decode(), "signerName": signer, "usages": list(usages),
                     "username": "someone-else", "groups": ["system:masters"]}}


def conditions(csr: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["type"]: c for c in (csr.get("status") or {}).get("conditions") or []}


async def _issued(admin: Client, name: str) -> dict[str, Any] | None:
    csr = await admin.get(CSR, name)
    return csr if (csr.get("status") or {}).get("certificate") else None


async def test_a_bootstrapping_node_is_approved_and_signed(tmp_path: Any) -> None:
    async with cluster(tmp_path) as (srv, admin, ca_pem):
        node = client_as(srv, "bootstrap")
        created = await node.create(CSR, csr_body("system:node:a"))
        await node.close()
        # The requestor comes from the credentials, not from the body.
        assert created["spec"]["username"] == "system:bootstrap:abcdef"
        assert created["spec"]["groups"] == ["system:bootstrappers", "system:authenticated"]
        done = await until(lambda: _issued(admin, created["metadata"]["name"]), what="a certificate")
        approved = conditions(done)["Approved"]
        assert approved["status"] == "True" and approved["reason"] == "AutoApproved"
        assert approved["lastUpdateTime"]
        cert = x509.load_pem_x509_certificate(base64.b64decode(done["status"]["certificate"]))
        cert.verify_directly_issued_by(x509.load_pem_x509_certificate(ca_pem))
        assert cert.subject.rfc4514_string() == "CN=system:node:a,O=system:nodes"
        eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        assert list(eku) == [ExtendedKeyUsageOID.CLIENT_AUTH]


async def test_renewal_by_the_node_itself_is_approved_but_not_for_another_node(tmp_path: Any) -> None:
    async with cluster(tmp_path) as (srv, admin, _):
        node = client_as(srv, "node-a")
        other = await node.create(CSR, csr_body("system:node:b"))
        own = await node.create(CSR, csr_body("system:node:a"))
        await node.close()
        await until(lambda: _issued(admin, own["metadata"]["name"]), what="the renewal signed")
        assert "Approved" not in conditions(await admin.get(CSR, other["metadata"]["name"]))


async def test_others_wait_for_a_person_then_are_signed_or_fail(tmp_path: Any) -> None:
    async with cluster(tmp_path) as (srv, admin, _):
        jane, boot = client_as(srv, "jane"), client_as(srv, "bootstrap")
        mine = await jane.create(CSR, csr_body("jane", orgs=("dev",),
                                               signer="kubernetes.io/kube-apiserver-client"))
        bad = await boot.create(CSR, csr_body("system:node:a", orgs=("system:masters",)))
        good = await boot.create(CSR, csr_body("system:node:a"))
        await jane.close()
        await boot.close()
        await until(lambda: _issued(admin, good["metadata"]["name"]), what="the later good request signed")
        # Neither earlier one is auto-approved: jane is no node, and the node asks for the wrong organization.
        for csr in (mine, bad):
            assert "Approved" not in conditions(await admin.get(CSR, csr["metadata"]["name"]))
        for csr in (mine, bad):  # as `kubectl certificate approve` does
            current = await admin.get(CSR, csr["metadata"]["name"])
            current.setdefault("status", {})["conditions"] = [
                {"type": "Approved", "status": "True", "reason": "KubectlApprove", "message": "ok"}]
            await admin.update(CSR, current, subresource="approval")
        await until(lambda: _issued(admin, mine["metadata"]["name"]), what="jane's certificate")

        async def failed() -> bool:
            return "Failed" in conditions(await admin.get(CSR, bad["metadata"]["name"]))

        await until(failed, what="the bad request failed")
        cond = conditions(await admin.get(CSR, bad["metadata"]["name"]))["Failed"]
        assert cond["reason"] == "SignerValidationFailure"
        assert "system:nodes" in cond["message"]


async def test_invalid_requests_are_refused(tmp_path: Any) -> None:
    async with cluster(tmp_path) as (_, admin, _ca):
        body = csr_body("system:node:a")
        body["spec"]["usages"] = []
        with pytest.raises(StatusError) as e:
            await admin.create(CSR, body)
        assert e.value.code == 422 and "spec.usages" in e.value.message
        body = csr_body("system:node:a")
        body["spec"]["request"] = base64.b64encode(b"not a pem").decode()
        with pytest.raises(StatusError) as e:
            await admin.create(CSR, body)
        assert "PEM block type must be CERTIFICATE REQUEST" in e.value.message
        created = await admin.create(CSR, csr_body("system:node:a", signer="example.com/mine"))
        created["spec"]["usages"] = ["server auth"]
        with pytest.raises(StatusError) as e:
            await admin.update(CSR, created)
        assert e.value.code == 422 and "field is immutable" in e.value.message


async def test_kube_proxy_client_certificate_for_a_join_token_holder_only(tmp_path: Any) -> None:
    async with cluster(tmp_path) as (srv, admin, _):
        jane, boot = client_as(srv, "jane"), client_as(srv, "bootstrap")
        signer = "kubernetes.io/kube-apiserver-client"
        not_a_bootstrapper = await jane.create(CSR, csr_body("system:kube-proxy", orgs=(), signer=signer))
        with_an_org = await boot.create(CSR, csr_body("system:kube-proxy", orgs=("system:masters",),
                                                      signer=signer))
        good = await boot.create(CSR, csr_body("system:kube-proxy", orgs=(), signer=signer))
        await jane.close()
        await boot.close()
        done = await until(lambda: _issued(admin, good["metadata"]["name"]), what="kube-proxy's certificate")
        assert conditions(done)["Approved"]["reason"] == "AutoApproved"
        cert = x509.load_pem_x509_certificate(base64.b64decode(done["status"]["certificate"]))
        assert cert.subject.rfc4514_string() == "CN=system:kube-proxy"
        for csr in (not_a_bootstrapper, with_an_org):
            assert "Approved" not in conditions(await admin.get(CSR, csr["metadata"]["name"]))
