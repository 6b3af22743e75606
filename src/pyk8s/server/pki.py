"""The cluster's keys and certificates: created on first start, reused after.

Layout under the data dir (k3s keeps the same pieces under server/tls):

    pki/ca.crt, pki/ca.key                      the cluster CA (EC P-256, 10 years)
    pki/serving.crt, pki/serving.key            the API server's certificate, re-issued when its SANs change
    pki/admin.crt, pki/admin.key                CN system:admin, O system:masters
    pki/kubelet-client.crt, …key                CN kube-apiserver-kubelet-client, O system:masters
    pki/sa.key, pki/sa.pub                      signs service-account tokens (ECDSA P-256, ES256)
    kubeconfig.yaml                             cluster-admin, embedded certificate data
    token                                       the node join token `K10<sha256 of ca.crt>::<id>.<secret>`
                                                (k3s' format: the hash lets an agent trust the CA it fetches)
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import ipaddress
import os
import secrets
import socket
import ssl
import string
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_DAYS = 3650
LEAF_DAYS = 3650
_TOKEN_ALPHABET = string.ascii_lowercase + string.digits

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Key = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _write(path: Path, data: bytes, mode: int) -> None:
    """Write atomically with the final mode from the start, so a key is never briefly world-readable."""
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.chmod(tmp, mode)
    os.replace(tmp, path)


def _key_pem(key: Key) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _load_key(path: Path) -> Key:
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
        raise ValueError(f"{path.name}: unsupported key type")
    return key


def _name(cn: str, orgs: Iterable[str] = ()) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, o) for o in orgs]
    attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, cn))
    return x509.Name(attrs)


def _issue(subject: x509.Name, key: Key, issuer: x509.Certificate | None, issuer_key: Key, *,
           days: int, ca: bool = False, server: bool = False, client: bool = False,
           sans: list[x509.GeneralName] | None = None) -> x509.Certificate:
    now = _now()
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.subject if issuer else subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))  # tolerate small clock skew between nodes
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False,
                                     key_encipherment=not ca and isinstance(key, rsa.RSAPrivateKey),
                                     data_encipherment=False, key_agreement=False, key_cert_sign=ca,
                                     crl_sign=ca, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    if issuer is not None:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.public_key()),  # type: ignore[arg-type]
            critical=False)
    usages = ([ExtendedKeyUsageOID.SERVER_AUTH] if server else []) + (
        [ExtendedKeyUsageOID.CLIENT_AUTH] if client else [])
    if usages:
        builder = builder.add_extension(x509.ExtendedKeyUsage(usages), critical=False)
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def _sans(cert: x509.Certificate) -> set[str]:
    try:
        ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return set()
    return {str(v) for v in ext.get_values_for_type(x509.DNSName)} | {
        str(v) for v in ext.get_values_for_type(x509.IPAddress)}


def _general_names(names: Iterable[str]) -> list[x509.GeneralName]:
    out: list[x509.GeneralName] = []
    for n in sorted(set(names)):
        try:
            out.append(x509.IPAddress(ipaddress.ip_address(n)))
        except ValueError:
            out.append(x509.DNSName(n))
    return out


def _is_unspecified(addr: str) -> bool:
    try:
        return ipaddress.ip_address(addr).is_unspecified
    except ValueError:
        return False


def serving_names(bind_address: str, service_cidr: str, extra_sans: Iterable[str] = ()) -> set[str]:
    """Every name and address the API server answers on; the serving certificate lists them all."""
    names = {"localhost", "127.0.0.1", "::1", "kubernetes", "kubernetes.default", "kubernetes.default.svc",
             "kubernetes.default.svc.cluster.local", socket.gethostname()}
    if bind_address and not _is_unspecified(bind_address):
        names.add(bind_address)
    elif bind_address:
        # Bound to every interface: name the host's own addresses too.
        try:
            names.update(str(i[4][0]) for i in socket.getaddrinfo(socket.gethostname(), None))
        except OSError:
            pass
    names.add(str(ipaddress.ip_network(service_cidr, strict=False)[1]))
    names.update(n for n in extra_sans if n)
    return {str(ipaddress.ip_address(n)) if _is_ip(n) else n for n in names}


def _is_ip(s: str) -> bool:
    try:
        ipaddress.ip_address(s)
    except ValueError:
        return False
    return True


def _server_url(bind_address: str, port: int) -> str:
    host = "127.0.0.1" if not bind_address or _is_unspecified(bind_address) else bind_address
    if ":" in host:
        host = f"[{host}]"
    return f"https://{host}:{port}"


def bootstrap_token_secret(token: str, *, description: str = "pyk8s node join token",
                           extra_groups: Iterable[str] = ("system:bootstrappers:pyk8s:default-node-token",),
                           expiration: dt.datetime | None = None) -> dict[str, Any]:
    """The `bootstrap-token-<id>` Secret in kube-system that makes `token` valid, as kubeadm writes it."""
    token_id, token_secret = token.split(".", 1)
    data = {
        "description": description,
        "token-id": token_id,
        "token-secret": token_secret,
        "usage-bootstrap-authentication": "true",
        "usage-bootstrap-signing": "true",
    }
    groups = ",".join(extra_groups)
    if groups:
        data["auth-extra-groups"] = groups
    if expiration is not None:
        data["expiration"] = expiration.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": f"bootstrap-token-{token_id}", "namespace": "kube-system"},
        "type": "bootstrap.kubernetes.io/token",
        "data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()},
    }


def join_token(ca_pem: bytes, bootstrap_token: str) -> str:
    """k3s' secure token: `K10` + the SHA-256 hex of the CA certificate PEM + `::` + the bootstrap token."""
    return f"K10{hashlib.sha256(ca_pem).hexdigest()}::{bootstrap_token}"


def new_bootstrap_token() -> str:
    pick = secrets.choice
    return "".join(pick(_TOKEN_ALPHABET) for _ in range(6)) + "." + "".join(
        pick(_TOKEN_ALPHABET) for _ in range(16))


@dataclass(frozen=True)
class Pki:
    data_dir: Path
    server_url: str
    bootstrap_token: str  # `<id>.<secret>`; the `token` file holds it as a join token (`join_token`)

    @property
    def dir(self) -> Path:
        return self.data_dir / "pki"

    @property
    def ca_cert(self) -> Path:
        return self.dir / "ca.crt"

    @property
    def ca_key(self) -> Path:
        return self.dir / "ca.key"

    @property
    def serving_cert(self) -> Path:
        return self.dir / "serving.crt"

    @property
    def serving_key(self) -> Path:
        return self.dir / "serving.key"

    @property
    def admin_cert(self) -> Path:
        return self.dir / "admin.crt"

    @property
    def admin_key(self) -> Path:
        return self.dir / "admin.key"

    @property
    def kubelet_client_cert(self) -> Path:
        return self.dir / "kubelet-client.crt"

    @property
    def kubelet_client_key(self) -> Path:
        return self.dir / "kubelet-client.key"

    @property
    def sa_key(self) -> Path:
        return self.dir / "sa.key"

    @property
    def sa_pub(self) -> Path:
        return self.dir / "sa.pub"

    @property
    def kubeconfig(self) -> Path:
        return self.data_dir / "kubeconfig.yaml"

    @property
    def token_file(self) -> Path:
        return self.data_dir / "token"

    def ssl_context(self) -> ssl.SSLContext:
        """The API server's TLS: asks for a client certificate (verified against our CA) but lets
        token-bearing and anonymous clients connect; the authenticator decides."""
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(self.ca_cert))
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(self.serving_cert, self.serving_key)
        ctx.verify_mode = ssl.CERT_OPTIONAL
        return ctx

    def client_ssl_context(self, cert: Path | None = None, key: Path | None = None) -> ssl.SSLContext:
        """A client context trusting our CA, presenting `cert` (default: the admin certificate)."""
        ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(self.ca_cert))
        ctx.load_cert_chain(cert or self.admin_cert, key or self.admin_key)
        return ctx

    def issue_client_cert(self, cn: str, orgs: Iterable[str] = (), *,
                          days: int = LEAF_DAYS) -> tuple[bytes, bytes]:
        """A client certificate signed by the cluster CA: (cert PEM, key PEM). Nothing is written."""
        ca = x509.load_pem_x509_certificate(self.ca_cert.read_bytes())
        key = ec.generate_private_key(ec.SECP256R1())
        cert = _issue(_name(cn, orgs), key, ca, _load_key(self.ca_key), days=days, client=True)
        return _cert_pem(cert), _key_pem(key)

    def bootstrap_token_secret(self) -> dict[str, Any]:
        """The Secret the lead stores at startup so the join token authenticates."""
        return bootstrap_token_secret(self.bootstrap_token)

    def kubeconfig_for(self, cert_pem: bytes, key_pem: bytes, *, server_url: str | None = None,
                       name: str = "default") -> str:
        return render_kubeconfig(server_url or self.server_url, self.ca_cert.read_bytes(), cert_pem, key_pem,
                                 name=name)


def render_kubeconfig(server_url: str, ca_pem: bytes, cert_pem: bytes | None = None,
                      key_pem: bytes | None = None, *, token: str | None = None,
                      name: str = "default") -> str:
    def b64(b: bytes) -> str:
        return base64.b64encode(b).decode()

    user: dict[str, str] = {}
    if cert_pem is not None and key_pem is not None:
        user = {"client-certificate-data": b64(cert_pem), "client-key-data": b64(key_pem)}
    if token is not None:
        user["token"] = token
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": name,
                      "cluster": {"server": server_url, "certificate-authority-data": b64(ca_pem)}}],
        "users": [{"name": name, "user": user}],
        "contexts": [{"name": name, "context": {"cluster": name, "user": name}}],
        "current-context": name,
        "preferences": {},
    }
    return yaml.safe_dump(doc, sort_keys=False)


def _ensure_client(cert: Path, key: Path, cn: str, orgs: tuple[str, ...],
                   ca: x509.Certificate, ca_key: Key) -> None:
    if cert.exists() and key.exists():
        current = x509.load_pem_x509_certificate(cert.read_bytes())
        if current.issuer == ca.subject and current.not_valid_after_utc > _now() + dt.timedelta(days=30):
            return
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    leaf = _issue(_name(cn, orgs), leaf_key, ca, ca_key, days=LEAF_DAYS, client=True)
    _write(key, _key_pem(leaf_key), 0o600)
    _write(cert, _cert_pem(leaf), 0o644)


def ensure_pki(data_dir: Path, *, bind_address: str = "127.0.0.1", https_port: int = 6443,
               service_cidr: str = "10.43.0.0/16", extra_sans: Iterable[str] = ()) -> Pki:
    """Create whatever is missing under `data_dir`, reuse what exists; safe to call on every start."""
    data_dir = Path(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / "pki").mkdir(mode=0o700, exist_ok=True)

    token_path = data_dir / "token"
    # The file holds the join token; older data dirs hold the bare `<id>.<secret>`.
    token = token_path.read_text().strip().rpartition("::")[2] if token_path.exists() else ""
    token = token or new_bootstrap_token()
    pki = Pki(data_dir, _server_url(bind_address, https_port), token)

    if pki.ca_cert.exists() and pki.ca_key.exists():
        ca = x509.load_pem_x509_certificate(pki.ca_cert.read_bytes())
        ca_key = _load_key(pki.ca_key)
    else:
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca = _issue(_name(f"pyk8s-ca@{int(_now().timestamp())}"), ca_key, None, ca_key, days=CA_DAYS, ca=True)
        _write(pki.ca_key, _key_pem(ca_key), 0o600)
        _write(pki.ca_cert, _cert_pem(ca), 0o644)
        # A new CA invalidates everything it signed before.
        for p in (pki.serving_cert, pki.admin_cert, pki.kubelet_client_cert, pki.kubeconfig):
            p.unlink(missing_ok=True)

    joined = join_token(pki.ca_cert.read_bytes(), token) + "\n"
    if not token_path.exists() or token_path.read_text() != joined:  # new, old format, or a new CA
        _write(token_path, joined.encode(), 0o600)

    names = serving_names(bind_address, service_cidr, extra_sans)
    fresh = False
    if pki.serving_cert.exists() and pki.serving_key.exists():
        current = x509.load_pem_x509_certificate(pki.serving_cert.read_bytes())
        fresh = (_sans(current) == names and current.issuer == ca.subject
                 and current.not_valid_after_utc > _now() + dt.timedelta(days=30))
    if not fresh:
        key = ec.generate_private_key(ec.SECP256R1())
        cert = _issue(_name("kube-apiserver"), key, ca, ca_key, days=LEAF_DAYS, server=True,
                      sans=_general_names(names))
        _write(pki.serving_key, _key_pem(key), 0o600)
        _write(pki.serving_cert, _cert_pem(cert), 0o644)

    _ensure_client(pki.admin_cert, pki.admin_key, "system:admin", ("system:masters",), ca, ca_key)
    _ensure_client(pki.kubelet_client_cert, pki.kubelet_client_key, "kube-apiserver-kubelet-client",
                   ("system:masters",), ca, ca_key)

    if not (pki.sa_key.exists() and pki.sa_pub.exists()):
        # ES256 as Kubernetes allows: a token in 0.08 ms CPU against RS256's 0.72 (one per pod start).
        sa_key = ec.generate_private_key(ec.SECP256R1())
        _write(pki.sa_key, _key_pem(sa_key), 0o600)
        _write(pki.sa_pub, sa_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo), 0o644)

    # The kubeconfig is rewritten when the URL or the admin certificate changed.
    wanted = render_kubeconfig(pki.server_url, pki.ca_cert.read_bytes(), pki.admin_cert.read_bytes(),
                               pki.admin_key.read_bytes())
    if not pki.kubeconfig.exists() or pki.kubeconfig.read_text() != wanted:
        _write(pki.kubeconfig, wanted.encode(), 0o600)
    return pki
