"""Fixtures for the image store: OCI layouts built in Python, skopeo, and Debian's docker-registry."""

from __future__ import annotations

import gzip
import hashlib
import http.server
import io
import json
import os
import shutil
import socket
import ssl
import subprocess
import tarfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from pyk8s.kubelet.images import ImageStore

SKOPEO = shutil.which("skopeo")
REGISTRY = shutil.which("docker-registry")

# A layer is a list of entries: (name, bytes) a file, (name, None) a directory, (name, "->target") a
# symlink, (name, "=>target") a hard link.
Layer = list[tuple[str, "bytes | str | None"]]


def layer_tar(entries: Layer) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for name, content in entries:
            ti = tarfile.TarInfo(name)
            if isinstance(content, str) and content.startswith("=>"):  # a hard link
                ti.type, ti.linkname = tarfile.LNKTYPE, content[2:]
                tf.addfile(ti)
            elif content is None:
                ti.type, ti.mode = tarfile.DIRTYPE, 0o755
                tf.addfile(ti)
            elif isinstance(content, str):
                ti.type, ti.linkname = tarfile.SYMTYPE, content.removeprefix("->")
                tf.addfile(ti)
            else:
                ti.size, ti.mode = len(content), 0o644
                tf.addfile(ti, io.BytesIO(content))
    return buf.getvalue()


class Layout:
    """An OCI image layout directory written by hand, so tests control every byte."""

    def __init__(self, path: Path) -> None:
        self.path = path
        (path / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
        (path / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
        self.index: list[dict[str, object]] = []

    def blob(self, data: bytes) -> str:
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        (self.path / "blobs" / "sha256" / digest[7:]).write_bytes(data)
        return digest

    def manifest(self, layers: list[Layer], *, compression: str = "gzip", arch: str = "amd64",
                 cmd: list[str] | None = None) -> tuple[dict[str, object], str]:
        """Write an image (layers compressed with gzip, zstd or none); return its manifest descriptor and
        config digest."""
        descs, diff_ids = [], []
        for entries in layers:
            raw = layer_tar(entries)
            diff_ids.append("sha256:" + hashlib.sha256(raw).hexdigest())
            if compression == "gzip":
                data = gzip.compress(raw, mtime=0)
            elif compression == "zstd":
                data = subprocess.run(["zstd", "-q", "-c"], input=raw, capture_output=True, check=True).stdout
            else:
                data = raw
            mt = "application/vnd.oci.image.layer.v1.tar" + (f"+{compression}" if compression else "")
            descs.append({"mediaType": mt, "digest": self.blob(data), "size": len(data)})
        config = json.dumps({"architecture": arch, "os": "linux", "config": {"Cmd": cmd or ["sh"]},
                             "rootfs": {"type": "layers", "diff_ids": diff_ids}}).encode()
        cfg = self.blob(config)
        manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                               "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                                          "digest": cfg, "size": len(config)},
                               "layers": descs}).encode()
        desc = {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": self.blob(manifest),
                "size": len(manifest), "platform": {"os": "linux", "architecture": arch}}
        return desc, cfg

    def multiarch(self, manifests: list[dict[str, object]]) -> dict[str, object]:
        index = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                            "manifests": manifests}).encode()
        return {"mediaType": "application/vnd.oci.image.index.v1+json", "digest": self.blob(index),
                "size": len(index)}

    def tag(self, desc: dict[str, object], name: str) -> None:
        self.index.append({**desc, "annotations": {"org.opencontainers.image.ref.name": name}})
        (self.path / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": self.index}))


@pytest.fixture
def store(tmp_path: Path) -> ImageStore:
    return ImageStore(tmp_path / "agent" / "images", tmp_path / "agent" / "registries.yaml")


def skopeo(*args: str) -> None:
    assert SKOPEO, "skopeo is not installed"
    r = subprocess.run([SKOPEO, "--insecure-policy", *args], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Registry:
    host: str  # 127.0.0.1:PORT
    log: Path

    def requests(self, needle: str) -> int:
        """How many requests of ours (aiohttp's, not skopeo's) whose URI contains `needle` it answered."""
        return sum(1 for line in self.log.read_text().splitlines()
                   if "response completed" in line and "aiohttp" in line and needle in line)

    def push(self, src: str, repo_tag: str, creds: str = "") -> None:
        extra = ["--dest-creds", creds] if creds else []
        skopeo("copy", "--all", "--dest-tls-verify=false", *extra, src, f"docker://{self.host}/{repo_tag}")


def _start_registry(tmp: Path, auth: dict[str, object] | None,
                    tls: tuple[Path, Path] | None = None) -> Iterator[Registry]:
    if not REGISTRY:
        pytest.skip("docker-registry is not installed")
    port = free_port()
    config = {"version": 0.1, "log": {"level": "info", "accesslog": {"disabled": True}},
              "storage": {"filesystem": {"rootdirectory": str(tmp / "data")}, "delete": {"enabled": True}},
              "http": {"addr": f"127.0.0.1:{port}"}}
    if auth:
        config["auth"] = auth
    if tls:
        certs = {"certificate": str(tls[0]), "key": str(tls[1])}
        config["http"] = {"addr": f"127.0.0.1:{port}", "tls": certs}
    (tmp / "config.yml").write_text(json.dumps(config))  # JSON is YAML
    log = tmp / "registry.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([REGISTRY, "serve", str(tmp / "config.yml")], stdout=out, stderr=out)
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                if tls:
                    ctx = ssl.create_default_context(cafile=str(tls[0]))
                    urllib.request.urlopen(f"https://127.0.0.1:{port}/v2/", timeout=1, context=ctx)
                else:
                    urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/", timeout=1)
                break
            except urllib.error.HTTPError:
                break  # 401: up, and asking for credentials
            except OSError:
                assert proc.poll() is None, log.read_text()
                assert time.monotonic() < deadline, "docker-registry did not start"
                time.sleep(0.05)
        yield Registry(f"127.0.0.1:{port}", log)
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    yield from _start_registry(tmp_path_factory.mktemp("registry"), None)


@pytest.fixture
def auth_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    """A registry asking for basic credentials alice:s3cret (htpasswd, bcrypt)."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import crypt
    tmp = tmp_path_factory.mktemp("registry")
    hashed = crypt.crypt("s3cret", crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=16))  # cost 4: fast
    (tmp / "htpasswd").write_text(f"alice:{hashed}\n")
    os.chmod(tmp / "htpasswd", 0o600)
    yield from _start_registry(tmp, {"htpasswd": {"realm": "test-realm", "path": str(tmp / "htpasswd")}})


class TokenServer:
    """A registry token service (docker's token auth): basic credentials alice:s3cret get the scope they
    ask for; anyone else gets a token granting nothing. Tokens are RS256 JWTs carrying their certificate
    (x5c), which the registry trusts through its rootcertbundle."""

    def __init__(self, tmp: Path) -> None:
        import datetime
        import threading

        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import rsa
        from cryptography.x509.oid import NameOID

        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test token issuer")])
        now = datetime.datetime.now(datetime.UTC)
        cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(now - datetime.timedelta(minutes=5))
                .not_valid_after(now + datetime.timedelta(hours=1))
                .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                .sign(key, hashes.SHA256()))
        self.cert_file = tmp / "token.pem"
        self.cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        import base64

        self._x5c = base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()
        self._key = key
        self.requests: list[tuple[str, str]] = []  # (scope, user)
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.handle(self)

            def do_POST(self) -> None:
                server.handle(self)

            def log_message(self, *args: object) -> None:
                pass

        self._httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.realm = f"http://127.0.0.1:{self._httpd.server_address[1]}/token"
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()

    def handle(self, req: http.server.BaseHTTPRequestHandler) -> None:
        import base64
        import urllib.parse

        import jwt

        query = urllib.parse.parse_qs(urllib.parse.urlsplit(req.path).query)
        user = ""
        auth = req.headers.get("Authorization", "")
        if auth.startswith("Basic "):
            u, _, p = base64.b64decode(auth[6:]).decode().partition(":")
            user = u if (u, p) == ("alice", "s3cret") else ""
        if req.command == "POST":  # OAuth2: a refresh token for a token
            length = int(req.headers.get("Content-Length", "0"))
            query = urllib.parse.parse_qs(req.rfile.read(length).decode())
            if query.get("grant_type") == ["refresh_token"]:
                user = "alice" if query.get("refresh_token") == ["refresh-alice"] else ""
        access = []
        for scope in query.get("scope", []):
            self.requests.append((scope, user))
            kind, _, rest = scope.partition(":")
            repo, _, actions = rest.rpartition(":")
            if user:
                access.append({"type": kind, "name": repo, "actions": actions.split(",")})
        now = int(time.time())
        token = jwt.encode({"iss": "test-issuer", "sub": user, "aud": query.get("service", [""])[0],
                            "exp": now + 300, "nbf": now - 10, "iat": now, "jti": os.urandom(8).hex(),
                            "access": access}, self._key, algorithm="RS256", headers={"x5c": [self._x5c]})
        body = json.dumps({"access_token": token} if req.command == "POST" else
                          {"token": token}).encode()
        req.send_response(200)
        req.send_header("Content-Type", "application/json")
        req.send_header("Content-Length", str(len(body)))
        req.end_headers()
        req.wfile.write(body)

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(5)


@pytest.fixture
def token_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Registry, TokenServer]]:
    """A registry using bearer token auth, and its token service."""
    tmp = tmp_path_factory.mktemp("registry")
    tokens = TokenServer(tmp)
    try:
        auth = {"token": {"realm": tokens.realm, "service": "test-registry", "issuer": "test-issuer",
                          "rootcertbundle": str(tokens.cert_file)}}
        for reg in _start_registry(tmp, auth):
            yield reg, tokens
    finally:
        tokens.close()


def self_signed(tmp: Path, common_name: str, ip: str = "") -> tuple[Path, Path, object]:
    """A self-signed CA certificate (for `ip` when given): (cert.pem, key.pem, private key)."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.UTC)
    builder = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
               .serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(minutes=5))
               .not_valid_after(now + datetime.timedelta(hours=1))
               .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True))
    if ip:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(ip))]), critical=False)
    cert = builder.sign(key, hashes.SHA256())
    cert_file, key_file = tmp / f"{common_name}.pem", tmp / f"{common_name}-key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_file, key_file, key


@pytest.fixture
def tls_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Registry, Path]]:
    """A registry serving HTTPS with a certificate from its own CA: (registry, the CA file)."""
    tmp = tmp_path_factory.mktemp("registry")
    cert, key, _ = self_signed(tmp, "registry", "127.0.0.1")
    for reg in _start_registry(tmp, None, (cert, key)):
        yield reg, cert
