"""Joining a cluster from a token: trust the server's CA by its hash, then TLS-bootstrap a client
certificate through a CertificateSigningRequest, as a kubelet does.

1. The join token is k3s' `K10<sha256 hex of the CA PEM>::<id>.<secret>`. The CA is fetched from
   `GET /cacerts` without verification and trusted only if its hash matches; every later connection
   verifies the server against it. A bare `<id>.<secret>` token is refused: without the hash nothing
   ties the fetched CA to the cluster, and a node would hand its bootstrap secret to whoever answers.
2. With the bootstrap secret (user `system:bootstrap:<id>`, group `system:bootstrappers`) the agent
   creates a CSR for CN `system:node:<node>`, O `system:nodes`, usages digital signature + client auth,
   signer `kubernetes.io/kube-apiserver-client-kubelet`; the control plane's csrapproving and csrsigning
   controllers approve and sign it. The key never leaves the node.
3. The certificate and key are kept under `<data dir>/pki/` and reused on restart while they are valid
   for the same CA and node name, for longer than a tenth of their lifetime.

The node's service proxy needs an identity of its own: the node's may not list EndpointSlices. As k3s
hands every agent that holds the join token a `system:kube-proxy` client certificate, the agent asks
with the bootstrap secret for CN `system:kube-proxy` (no organisation), signer
`kubernetes.io/kube-apiserver-client`; the csrapproving controller approves exactly that request from a
bootstrapper, and RBAC binds the user to `system:node-proxier`, kube-proxy's role, nothing more.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime as dt
import hashlib
import logging
import os
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from pyk8s.api import catalog
from pyk8s.api.errors import StatusError
from pyk8s.client.client import Client
from pyk8s.client.transport import HTTPTransport

__all__ = ["BootstrapError", "JoinToken", "NodeCredentials", "bootstrap_credentials", "fetch_ca",
           "node_client", "parse_join_token", "proxy_credentials"]

log = logging.getLogger(__name__)

KUBELET_CLIENT_SIGNER = "kubernetes.io/kube-apiserver-client-kubelet"
KUBE_APISERVER_CLIENT_SIGNER = "kubernetes.io/kube-apiserver-client"
KUBE_PROXY_USER = "system:kube-proxy"
CSR = catalog.require("certificates.k8s.io", "CertificateSigningRequest")


class BootstrapError(Exception):
    """Joining failed for a reason a person must fix (a wrong token, a CA mismatch, a denied request)."""


@dataclass(frozen=True)
class JoinToken:
    ca_hash: str  # sha256 hex of the CA certificate PEM
    bootstrap_token: str  # `<id>.<secret>`


def parse_join_token(token: str) -> JoinToken:
    token = token.strip()
    head, sep, secret = token.partition("::")
    if not sep or not head.startswith("K10") or len(head) != 3 + 64:
        raise BootstrapError("the token is not a join token K10<sha256 of the CA>::<id>.<secret> "
                             "(use the `token` file of the server's data dir)")
    token_id, dot, token_secret = secret.partition(".")
    if not dot or len(token_id) != 6 or len(token_secret) != 16:
        raise BootstrapError("the token's credential is not a bootstrap token <6 chars>.<16 chars>")
    return JoinToken(head[3:].lower(), secret)


async def fetch_ca(server_url: str, ca_hash: str) -> bytes:
    """The cluster CA from `/cacerts`, fetched unverified and accepted only when its hash matches."""
    insecure = ssl.create_default_context()
    insecure.check_hostname = False
    insecure.verify_mode = ssl.CERT_NONE
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(timeout=timeout) as session, \
            session.get(server_url.rstrip("/") + "/cacerts", ssl=insecure) as resp:
        body = await resp.read()
        if resp.status != 200:
            raise BootstrapError(f"{server_url}/cacerts answered {resp.status}")
    if hashlib.sha256(body).hexdigest() != ca_hash:
        raise BootstrapError(f"the CA served by {server_url} does not match the token's hash")
    return body


@dataclass(frozen=True)
class NodeCredentials:
    server_url: str
    ca_pem: bytes
    cert_file: Path
    key_file: Path


def _write(path: Path, data: bytes, mode: int) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def _usable(cert_file: Path, key_file: Path, ca_pem: bytes, common_name: str) -> bool:
    if not (cert_file.exists() and key_file.exists()):
        return False
    try:
        cert = x509.load_pem_x509_certificate(cert_file.read_bytes())
        cert.verify_directly_issued_by(x509.load_pem_x509_certificate(ca_pem))
    except (ValueError, TypeError, InvalidSignature):  # another CA or a damaged file: bootstrap again
        return False
    cns = [a.value for a in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
    lifetime = cert.not_valid_after_utc - cert.not_valid_before_utc
    left = cert.not_valid_after_utc - dt.datetime.now(dt.UTC)
    return cns == [common_name] and left > lifetime / 10


def _csr_pem(key: ec.EllipticCurvePrivateKey, common_name: str, orgs: tuple[str, ...]) -> bytes:
    subject = x509.Name([*(x509.NameAttribute(NameOID.ORGANIZATION_NAME, o) for o in orgs),
                         x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    request = x509.CertificateSigningRequestBuilder().subject_name(subject).sign(key, hashes.SHA256())
    return request.public_bytes(serialization.Encoding.PEM)


async def _request_certificate(client: Client, key: ec.EllipticCurvePrivateKey, common_name: str,
                               orgs: tuple[str, ...], signer: str, wait: float) -> bytes:
    csr = await client.create(CSR, {
        "apiVersion": "certificates.k8s.io/v1", "kind": "CertificateSigningRequest",
        "metadata": {"generateName": "csr-"},
        "spec": {"request": base64.b64encode(_csr_pem(key, common_name, orgs)).decode(),
                 "signerName": signer, "usages": ["digital signature", "client auth"]},
    })
    name = csr["metadata"]["name"]
    log.info("agent: certificate signing request %s sent; waiting for approval", name)
    async with asyncio.timeout(wait):
        while (cert := _issued(csr)) is None:
            rv = csr["metadata"].get("resourceVersion")
            try:
                async with contextlib.aclosing(client.watch(
                        CSR, field_selector=f"metadata.name={name}", resource_version=rv,
                        timeout_seconds=60)) as events:
                    async for kind, obj in events:
                        if kind in ("ADDED", "MODIFIED"):
                            csr = obj
                            if _issued(csr) is not None:
                                break
            except StatusError as e:
                if e.code != 410:
                    raise
            if _issued(csr) is None:  # the watch ended or expired: read the current state
                csr = await client.get(CSR, name)
        return cert


def _issued(csr: dict[str, Any]) -> bytes | None:
    """The signed certificate, None while pending; a denied or failed request raises."""
    status = csr.get("status") or {}
    for cond in status.get("conditions") or []:
        if cond.get("type") in ("Denied", "Failed"):
            raise BootstrapError(f"certificate signing request {csr['metadata']['name']} "
                                 f"{cond['type'].lower()}: {cond.get('message') or cond.get('reason') or ''}")
    cert = status.get("certificate")
    return base64.b64decode(cert) if cert else None


async def _credentials(server_url: str, token: str, data_dir: Path, name: str, common_name: str,
                       orgs: tuple[str, ...], signer: str, approval_wait: float) -> NodeCredentials:
    """`<data_dir>/pki/<name>.crt|key` for `common_name`: reused when still good, else from a CSR."""
    join = parse_join_token(token)
    ca_pem = await fetch_ca(server_url, join.ca_hash)
    pki = data_dir / "pki"
    pki.mkdir(parents=True, exist_ok=True, mode=0o700)
    ca_file, cert_file, key_file = pki / "ca.crt", pki / f"{name}.crt", pki / f"{name}.key"
    _write(ca_file, ca_pem, 0o644)
    creds = NodeCredentials(server_url, ca_pem, cert_file, key_file)
    if _usable(cert_file, key_file, ca_pem, common_name):
        log.info("agent: reusing the client certificate in %s", cert_file)
        return creds
    key = ec.generate_private_key(ec.SECP256R1())
    client = Client(HTTPTransport(server_url, ca_data=ca_pem, token=join.bootstrap_token,
                                  user_agent="pyk8s-agent/bootstrap"))
    try:
        cert_pem = await _request_certificate(client, key, common_name, orgs, signer, approval_wait)
    finally:
        await client.close()
    _write(key_file, key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()), 0o600)
    _write(cert_file, cert_pem, 0o644)
    log.info("agent: client certificate for %s issued", common_name)
    return creds


async def bootstrap_credentials(server_url: str, token: str, node_name: str, data_dir: Path, *,
                                approval_wait: float = 300) -> NodeCredentials:
    """The node's client certificate: reused from `data_dir` when still good, else obtained through a CSR."""
    return await _credentials(server_url, token, data_dir, "kubelet-client", f"system:node:{node_name}",
                              ("system:nodes",), KUBELET_CLIENT_SIGNER, approval_wait)


async def proxy_credentials(server_url: str, token: str, data_dir: Path, *,
                            approval_wait: float = 300) -> NodeCredentials:
    """The service proxy's `system:kube-proxy` client certificate, obtained with the join token."""
    return await _credentials(server_url, token, data_dir, "kube-proxy", KUBE_PROXY_USER, (),
                              KUBE_APISERVER_CLIENT_SIGNER, approval_wait)


def node_client(creds: NodeCredentials, *, pool_size: int = 8, user_agent: str = "pyk8s-agent") -> Client:
    """An API client authenticated by the certificate of `creds`, verifying the server by the cluster CA.

    `pool_size` bounds its connections, watches included (the kubelet holds four: its pods, its node,
    services, runtime classes; it must stay above their number). Kubernetes' kubelet multiplexes all on
    one HTTP/2 connection; over HTTP/1.1 with room for 100, a burst of 30 pods opened ~28 connections, one
    per concurrent request, each a TLS handshake (~3 ms of CPU on the client alone, measured) that the
    API server answers and authenticates too. The API server serves requests one at a time anyway."""
    return Client(HTTPTransport(creds.server_url, ca_data=creds.ca_pem, cert_file=str(creds.cert_file),
                                key_file=str(creds.key_file), pool_size=pool_size,
                                user_agent=user_agent))
