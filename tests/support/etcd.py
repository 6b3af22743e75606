"""Runs Debian's etcd as a single-member cluster on loopback, for tests and benchmarks."""

from __future__ import annotations

import atexit
import ctypes
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

ETCD_BINARY = "etcd"
START_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 10.0
# A put of a 3 MiB value (the store's limit) plus key and protobuf framing must fit in one request.
MAX_REQUEST_BYTES = 4 * 1024 * 1024
QUOTA_BACKEND_BYTES = 2 * 1024 * 1024 * 1024


def etcd_available() -> bool:
    return shutil.which(ETCD_BINARY) is not None


def _die_with_parent() -> None:
    # Runs in the child before exec: if the test process dies without stop(), so does etcd (Linux).
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class EtcdError(RuntimeError):
    pass


class EtcdProcess:
    """One etcd member; `endpoint` is "127.0.0.1:PORT" for EtcdStore.open([...])."""

    def __init__(
        self, proc: subprocess.Popen[bytes], data_dir: Path, client_port: int, peer_port: int, log_path: Path
    ):
        self._proc = proc
        self.data_dir = data_dir
        self.client_port = client_port
        self.peer_port = peer_port
        self.log_path = log_path

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.client_port}"

    @property
    def pid(self) -> int:
        return self._proc.pid

    @classmethod
    def start(cls, data_dir: Path) -> EtcdProcess:
        """Start etcd with its data in `data_dir` on free loopback ports and wait until it serves;
        raises EtcdError with the tail of etcd's log if it does not."""
        last: EtcdError | None = None
        for _ in range(3):
            try:
                return cls._start_once(data_dir, _free_port(), _free_port())
            except EtcdError as e:
                # Another process may have taken a picked port between probe and bind: retry.
                last = e
                if "address already in use" not in str(e):
                    raise
        assert last is not None
        raise last

    @classmethod
    def _start_once(cls, data_dir: Path, client_port: int, peer_port: int) -> EtcdProcess:
        data_dir.mkdir(parents=True, exist_ok=True)
        log_path = data_dir / "etcd.log"
        client_url = f"http://127.0.0.1:{client_port}"
        peer_url = f"http://127.0.0.1:{peer_port}"
        args = [
            ETCD_BINARY,
            "--name=default",
            f"--data-dir={data_dir / 'member-data'}",
            f"--listen-client-urls={client_url}",
            f"--advertise-client-urls={client_url}",
            f"--listen-peer-urls={peer_url}",
            f"--initial-advertise-peer-urls={peer_url}",
            f"--initial-cluster=default={peer_url}",
            "--initial-cluster-state=new",
            # A lone member elects itself after one election timeout: keep it short.
            "--heartbeat-interval=10",
            "--election-timeout=100",
            f"--max-request-bytes={MAX_REQUEST_BYTES}",
            f"--quota-backend-bytes={QUOTA_BACKEND_BYTES}",
            "--logger=zap",
            "--log-outputs=stderr",
            "--log-level=warn",
        ]
        log = log_path.open("ab")
        try:
            proc = subprocess.Popen(
                args, stdout=log, stderr=log, stdin=subprocess.DEVNULL, preexec_fn=_die_with_parent
            )
        finally:
            log.close()
        member = cls(proc, data_dir, client_port, peer_port, log_path)
        atexit.register(member.stop)
        member._wait_healthy()
        return member

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
        self._proc = EtcdProcess._start_once(self.data_dir, self.client_port, self.peer_port)._proc

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
