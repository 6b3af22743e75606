"""Runs Debian's etcd as a single-member cluster on loopback, for tests and benchmarks."""

from __future__ import annotations

import atexit
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

ETCD_BINARY = "etcd"
START_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 10.0
# A put of a 3 MiB value (the store's limit) plus key and protobuf framing must fit in one request.
MAX_REQUEST_BYTES = 4 * 1024 * 1024
QUOTA_BACKEND_BYTES = 2 * 1024 * 1024 * 1024

T = TypeVar("T")


def etcd_available() -> bool:
    return shutil.which(ETCD_BINARY) is not None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class EtcdError(RuntimeError):
    pass


def _member_args(
    name: str,
    data_dir: Path,
    client_port: int,
    peer_port: int,
    initial_cluster: str,
    max_request_bytes: int = MAX_REQUEST_BYTES,
) -> list[str]:
    client_url = f"http://127.0.0.1:{client_port}"
    peer_url = f"http://127.0.0.1:{peer_port}"
    return [
        ETCD_BINARY,
        f"--name={name}",
        f"--data-dir={data_dir / 'member-data'}",
        f"--listen-client-urls={client_url}",
        f"--advertise-client-urls={client_url}",
        f"--listen-peer-urls={peer_url}",
        f"--initial-advertise-peer-urls={peer_url}",
        f"--initial-cluster={initial_cluster}",
        "--initial-cluster-state=new",
        "--initial-cluster-token=pyk8s-test",
        # Elect after 200 ms without a leader: a lone member starts fast, a cluster fails over fast.
        "--heartbeat-interval=20",
        "--election-timeout=200",
        f"--max-request-bytes={max_request_bytes}",
        f"--quota-backend-bytes={QUOTA_BACKEND_BYTES}",
        "--logger=zap",
        "--log-outputs=stderr",
        "--log-level=warn",
    ]


def _retry_ports(start: Callable[[], T]) -> T:
    """Start, again if a picked port was taken between probing it and etcd binding it."""
    for attempt in range(3):
        try:
            return start()
        except EtcdError as e:
            if "address already in use" not in str(e) or attempt == 2:
                raise
    raise AssertionError("unreachable")


class EtcdProcess:
    """One etcd member; `endpoint` is "127.0.0.1:PORT" for EtcdStore.open([...])."""

    def __init__(self, args: list[str], data_dir: Path, client_port: int, peer_port: int) -> None:
        self._args = args
        self.data_dir = data_dir
        self.client_port = client_port
        self.peer_port = peer_port
        self.log_path = data_dir / "etcd.log"
        self._proc = self._spawn()
        atexit.register(self.stop)

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.client_port}"

    @property
    def pid(self) -> int:
        return self._proc.pid

    @classmethod
    def start(cls, data_dir: Path, *, max_request_bytes: int = MAX_REQUEST_BYTES) -> EtcdProcess:
        """Start etcd with its data in `data_dir` on free loopback ports and wait until it serves;
        raises EtcdError with the tail of etcd's log if it does not."""
        return _retry_ports(lambda: cls._start_one(data_dir, max_request_bytes))

    @classmethod
    def _start_one(cls, data_dir: Path, max_request_bytes: int) -> EtcdProcess:
        client_port, peer_port = _free_port(), _free_port()
        initial = f"default=http://127.0.0.1:{peer_port}"
        member = cls(
            _member_args("default", data_dir, client_port, peer_port, initial, max_request_bytes),
            data_dir,
            client_port,
            peer_port,
        )
        member._wait_healthy()
        return member

    def _spawn(self) -> subprocess.Popen[bytes]:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            return subprocess.Popen(self._args, stdout=log, stderr=log, stdin=subprocess.DEVNULL)

    def _wait_healthy(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        url = f"http://127.0.0.1:{self.client_port}/health"
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise EtcdError(f"etcd exited with {self._proc.returncode}:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(url, timeout=1) as resp:
                    if b'"health":"true"' in resp.read():
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.02)  # poll interval; the deadline bounds the wait
        self.stop()
        raise EtcdError(f"etcd did not become healthy within {START_TIMEOUT_S} s:\n{self.log_tail()}")

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def running(self) -> bool:
        return self._proc.poll() is None

    def restart(self) -> None:
        """Stop etcd and start it again on the same data and ports (as after a crash or upgrade)."""
        self.stop()
        self._proc = self._spawn()
        self._wait_healthy()

    def stop(self) -> None:
        """Terminate, wait, and kill if etcd does not exit in time."""
        if self._proc.poll() is not None:
            return
        self._proc.terminate()
        try:
            self._proc.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()


class EtcdCluster:
    """Several etcd members forming one cluster, to test failover within one revision history."""

    def __init__(self, members: list[EtcdProcess]) -> None:
        self.members = members

    @property
    def endpoints(self) -> list[str]:
        return [m.endpoint for m in self.members]

    @classmethod
    def start(cls, data_dir: Path, size: int = 3) -> EtcdCluster:
        return _retry_ports(lambda: cls._start_once(data_dir, size))

    @classmethod
    def _start_once(cls, data_dir: Path, size: int) -> EtcdCluster:
        ports = [(_free_port(), _free_port()) for _ in range(size)]
        initial = ",".join(f"m{i}=http://127.0.0.1:{peer}" for i, (_, peer) in enumerate(ports))
        members: list[EtcdProcess] = []
        try:
            for i, (client, peer) in enumerate(ports):
                member_dir = data_dir / f"m{i}"
                args = _member_args(f"m{i}", member_dir, client, peer, initial)
                members.append(EtcdProcess(args, member_dir, client, peer))
            # Members become healthy only together, once a quorum has elected a leader.
            for m in members:
                m._wait_healthy()
        except BaseException:
            for m in members:
                m.stop()
            raise
        return cls(members)

    def stop(self) -> None:
        for m in self.members:
            m.stop()
