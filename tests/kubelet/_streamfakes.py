"""A RuntimeService for the kubelet's HTTPS API tests: one pod, whose container's exec and attach are real
host processes and whose port-forward dials a loopback port. Certificates for a test CA."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from pyk8s.kubelet import cri
from pyk8s.kubelet.runtime.streams import stream_pair


class ProcStream:
    """cri.Stream over a host subprocess."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.sizes: list[tuple[int, int]] = []

    async def write_stdin(self, data: bytes) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(data)
        await self.proc.stdin.drain()

    async def close_stdin(self) -> None:
        if self.proc.stdin is not None and not self.proc.stdin.is_closing():
            self.proc.stdin.close()

    async def _chunks(self, reader: asyncio.StreamReader | None) -> AsyncIterator[bytes]:
        while reader is not None and (data := await reader.read(65536)):
            yield data

    def stdout(self) -> AsyncIterator[bytes]:
        return self._chunks(self.proc.stdout)

    def stderr(self) -> AsyncIterator[bytes]:
        return self._chunks(self.proc.stderr)

    async def resize(self, width: int, height: int) -> None:
        self.sizes.append((width, height))

    async def wait(self) -> int:
        return await self.proc.wait()

    async def kill(self) -> None:
        self.proc.kill()


class StreamRuntime:
    """Only what the kubelet server uses: sandboxes, containers, exec, attach, port_forward."""

    def __init__(self, log_dir: Path) -> None:
        self.sandbox = cri.SandboxStatus(id="sb1", pod_uid="uid-1", namespace="default", name="web",
                                         state="ready", created_at=1.0)
        self.containers = [
            cri.ContainerStatus(id="c0", sandbox_id="sb1", name="app", attempt=0, state="exited",
                                log_path=str(log_dir / "0.log")),
            cri.ContainerStatus(id="c1", sandbox_id="sb1", name="app", attempt=1, state="running",
                                log_path=str(log_dir / "1.log")),
        ]
        self.streams: list[ProcStream] = []
        self.attach_argv = ["sh", "-c", "echo attached; cat"]

    def handlers(self) -> list[str]:
        return ["runc"]

    def version(self) -> str:
        return "fake://1"

    async def list_pod_sandboxes(self) -> list[cri.SandboxStatus]:
        return [self.sandbox]

    async def list_containers(self, sandbox_id: str | None = None) -> list[cri.ContainerStatus]:
        return [c for c in self.containers if sandbox_id in (None, c.sandbox_id)]

    async def container_status(self, container_id: str) -> cri.ContainerStatus:
        return next(c for c in self.containers if c.id == container_id)

    async def _spawn(self, argv: list[str]) -> ProcStream:
        proc = await asyncio.create_subprocess_exec(*argv, stdin=asyncio.subprocess.PIPE,
                                                    stdout=asyncio.subprocess.PIPE,
                                                    stderr=asyncio.subprocess.PIPE)
        stream = ProcStream(proc)
        self.streams.append(stream)
        return stream

    async def exec(self, container_id: str, cmd: list[str], *, stdin: bool, tty: bool) -> cri.Stream:
        assert container_id == "c1"
        return await self._spawn(cmd)

    async def attach(self, container_id: str, *, stdin: bool, tty: bool) -> cri.Stream:
        return await self._spawn(self.attach_argv)

    async def port_forward(self, sandbox_id: str, port: int) -> tuple[Callable[[bytes], Awaitable[None]],
                                                                       AsyncIterator[bytes]]:
        return stream_pair(*await asyncio.open_connection("127.0.0.1", port))


class CertAuthority:
    def __init__(self) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test-ca")])
        now = dt.datetime.now(dt.UTC)
        self.cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                     .public_key(self.key.public_key()).serial_number(x509.random_serial_number())
                     .not_valid_before(now - dt.timedelta(minutes=5))
                     .not_valid_after(now + dt.timedelta(days=1))
                     .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                     .sign(self.key, hashes.SHA256()))
        self.pem = self.cert.public_bytes(serialization.Encoding.PEM)

    def client(self, directory: Path, cn: str, orgs: list[str]) -> tuple[str, str]:
        key = ec.generate_private_key(ec.SECP256R1())
        attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, o) for o in orgs]
        attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, cn))
        now = dt.datetime.now(dt.UTC)
        cert = (x509.CertificateBuilder().subject_name(x509.Name(attrs)).issuer_name(self.cert.subject)
                .public_key(key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
                .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH]),
                               critical=False)
                .sign(self.key, hashes.SHA256()))
        stem = cn.replace(":", "_")
        cert_file, key_file = directory / f"{stem}.crt", directory / f"{stem}.key"
        cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
        return str(cert_file), str(key_file)


@contextlib.asynccontextmanager
async def echo_server(answer: Callable[[bytes], bytes]) -> AsyncIterator[int]:
    """A loopback TCP server writing back `answer(data)` for what it reads; yields its port."""
    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(1024):
            writer.write(answer(data))
            await writer.drain()
        writer.close()

    tcp = await asyncio.start_server(echo, "127.0.0.1", 0)
    try:
        yield tcp.sockets[0].getsockname()[1]
    finally:
        tcp.close()
        await tcp.wait_closed()
