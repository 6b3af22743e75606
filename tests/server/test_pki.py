"""The PKI is created once, reused after, and its pieces work over real TLS on loopback."""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import ssl
import stat
from pathlib import Path

import aiohttp
import pytest
import yaml
from aiohttp import web
from cryptography import x509
from cryptography.x509.oid import NameOID

from pyk8s.server.pki import Pki, bootstrap_token_secret, ensure_pki, join_token


def _cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def _sans(cert: x509.Certificate) -> set[str]:
    ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return {str(v) for v in ext.get_values_for_type(x509.DNSName)} | {
        str(v) for v in ext.get_values_for_type(x509.IPAddress)
    }


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return ensure_pki(
        tmp_path_factory.mktemp("data"),
        bind_address="127.0.0.1",
        https_port=6443,
        service_cidr="10.43.0.0/16",
    )


def test_files_exist_and_keys_are_private(pki: Pki) -> None:
    for key in (pki.ca_key, pki.serving_key, pki.admin_key, pki.kubelet_client_key, pki.sa_key):
        assert stat.S_IMODE(key.stat().st_mode) == 0o600, key.name
    for cert in (pki.ca_cert, pki.serving_cert, pki.admin_cert, pki.kubelet_client_cert, pki.sa_pub):
        assert cert.stat().st_size > 0
    assert stat.S_IMODE(pki.kubeconfig.stat().st_mode) == 0o600
    assert stat.S_IMODE(pki.token_file.stat().st_mode) == 0o600


def test_ca_is_a_ten_year_ca(pki: Pki) -> None:
    ca = _cert(pki.ca_cert)
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert (ca.not_valid_after_utc - ca.not_valid_before_utc).days >= 3649


def test_serving_cert_names_every_address(pki: Pki) -> None:
    import socket

    sans = _sans(_cert(pki.serving_cert))
    expected = {
        "localhost",
        "127.0.0.1",
        "kubernetes",
        "kubernetes.default",
        "kubernetes.default.svc",
        "kubernetes.default.svc.cluster.local",
        "10.43.0.1",
        socket.gethostname(),
    }
    assert expected <= sans


def test_client_certs_carry_user_and_group(pki: Pki) -> None:
    for path, cn in (
        (pki.admin_cert, "system:admin"),
        (pki.kubelet_client_cert, "kube-apiserver-kubelet-client"),
    ):
        subject = _cert(path).subject
        assert subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == cn
        assert [a.value for a in subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)] == [
            "system:masters"
        ]


def test_second_start_reuses_everything(pki: Pki) -> None:
    before = {p: p.read_bytes() for p in pki.dir.iterdir()} | {
        pki.kubeconfig: pki.kubeconfig.read_bytes(),
        pki.token_file: pki.token_file.read_bytes(),
    }
    again = ensure_pki(pki.data_dir, bind_address="127.0.0.1", https_port=6443, service_cidr="10.43.0.0/16")
    assert again == pki
    assert {p: p.read_bytes() for p in before} == before


def test_new_sans_reissue_only_the_serving_cert(tmp_path: Path) -> None:
    first = ensure_pki(tmp_path, service_cidr="10.43.0.0/16")
    ca, admin, serving = (
        first.ca_cert.read_bytes(),
        first.admin_cert.read_bytes(),
        first.serving_cert.read_bytes(),
    )
    second = ensure_pki(tmp_path, service_cidr="10.96.0.0/12", extra_sans=["api.example.test", "192.0.2.7"])
    assert second.ca_cert.read_bytes() == ca
    assert second.admin_cert.read_bytes() == admin
    assert second.serving_cert.read_bytes() != serving
    sans = _sans(_cert(second.serving_cert))
    assert {"api.example.test", "192.0.2.7", "10.96.0.1"} <= sans
    assert "10.43.0.1" not in sans


def test_kubeconfig_is_cluster_admin_with_embedded_data(pki: Pki) -> None:
    doc = yaml.safe_load(pki.kubeconfig.read_text())
    cluster = doc["clusters"][0]["cluster"]
    user = doc["users"][0]["user"]
    assert cluster["server"] == "https://127.0.0.1:6443"
    assert base64.b64decode(cluster["certificate-authority-data"]) == pki.ca_cert.read_bytes()
    assert base64.b64decode(user["client-certificate-data"]) == pki.admin_cert.read_bytes()
    assert base64.b64decode(user["client-key-data"]) == pki.admin_key.read_bytes()
    assert doc["current-context"] == doc["contexts"][0]["name"]

    # The official client accepts it as it stands.
    from kubernetes import client, config

    configuration = client.Configuration()
    config.load_kube_config(config_file=str(pki.kubeconfig), client_configuration=configuration)
    assert configuration.host == "https://127.0.0.1:6443"


def test_kubeconfig_url_for_unspecified_and_ipv6_bind(tmp_path: Path) -> None:
    assert (
        ensure_pki(tmp_path / "a", bind_address="0.0.0.0", https_port=7443).server_url
        == "https://127.0.0.1:7443"
    )
    assert ensure_pki(tmp_path / "b", bind_address="::1", https_port=7443).server_url == "https://[::1]:7443"


def test_join_token_and_its_secret(pki: Pki) -> None:
    joined = pki.token_file.read_text().strip()
    assert joined == join_token(pki.ca_cert.read_bytes(), pki.bootstrap_token)
    assert joined.startswith("K10" + hashlib.sha256(pki.ca_cert.read_bytes()).hexdigest() + "::")
    token = joined.rpartition("::")[2]
    assert token == pki.bootstrap_token
    token_id, secret = token.split(".")
    assert len(token_id) == 6 and len(secret) == 16
    obj = pki.bootstrap_token_secret()
    assert obj["metadata"] == {"name": f"bootstrap-token-{token_id}", "namespace": "kube-system"}
    assert obj["type"] == "bootstrap.kubernetes.io/token"
    data = {k: base64.b64decode(v).decode() for k, v in obj["data"].items()}
    assert data["token-id"] == token_id and data["token-secret"] == secret
    assert data["usage-bootstrap-authentication"] == "true"
    assert bootstrap_token_secret(token) == obj


def test_issued_client_cert_chains_to_the_ca(pki: Pki) -> None:
    cert_pem, _ = pki.issue_client_cert("jane", ["dev"])
    cert, ca = x509.load_pem_x509_certificate(cert_pem), _cert(pki.ca_cert)
    cert.verify_directly_issued_by(ca)
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "jane"


async def _serve(ctx: ssl.SSLContext) -> tuple[web.AppRunner, int]:
    async def peer(request: web.Request) -> web.Response:
        ssl_object = request.transport.get_extra_info("ssl_object") if request.transport else None
        return web.json_response({"peer_cert": bool(ssl_object and ssl_object.getpeercert(binary_form=True))})

    app = web.Application()
    app.router.add_get("/", peer)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ctx)
    await site.start()
    port = runner.addresses[0][1]
    return runner, port


async def test_tls_with_and_without_client_certificate(pki: Pki) -> None:
    runner, port = await _serve(pki.ssl_context())
    try:
        for host in ("127.0.0.1", "localhost"):
            # Server certificate verifies for the name; the client certificate is seen by the server.
            async with (
                aiohttp.ClientSession() as s,
                s.get(f"https://{host}:{port}/", ssl=pki.client_ssl_context()) as r,
            ):
                assert await r.json() == {"peer_cert": True}
        plain = ssl.create_default_context(cafile=str(pki.ca_cert))
        async with aiohttp.ClientSession() as s, s.get(f"https://127.0.0.1:{port}/", ssl=plain) as r:
            assert await r.json() == {"peer_cert": False}
    finally:
        await runner.cleanup()


def test_serving_names_include_bind_address(tmp_path: Path) -> None:
    pki = ensure_pki(tmp_path, bind_address="192.0.2.10")
    sans = _sans(_cert(pki.serving_cert))
    assert "192.0.2.10" in sans
    assert all(ipaddress.ip_address(s) for s in sans if s[0].isdigit())


def test_bare_token_of_an_older_data_dir_becomes_a_join_token(tmp_path: Path) -> None:
    (tmp_path / "token").write_text("abcdef.0123456789abcdef\n")
    pki = ensure_pki(tmp_path)
    assert pki.bootstrap_token == "abcdef.0123456789abcdef"
    assert pki.token_file.read_text().strip() == join_token(pki.ca_cert.read_bytes(), pki.bootstrap_token)
