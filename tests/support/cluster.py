"""A real `pyk8s server` in a subprocess on a free loopback port, for end-to-end tests and benchmarks."""

from __future__ import annotations

import base64
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import yaml

KUBECTL = shutil.which("kubectl") or "kubectl"
T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def stop_process(process: subprocess.Popen[str], sig: int, timeout: float) -> int:
    """Send `sig`, then wait; returns the exit code (kills after `timeout`)."""
    if process.poll() is None:
        process.send_signal(sig)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return process.returncode


@dataclass
class Cluster:
    data_dir: Path
    port: int
    process: subprocess.Popen[str]
    output: list[str] = field(default_factory=list)

    @property
    def kubeconfig(self) -> Path:
        return self.data_dir / "kubeconfig.yaml"

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def kubectl(
        self, *args: str, input: str | None = None, check: bool = True, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        """Run the real kubectl against this cluster; with check, a failure raises with its stderr."""
        env = dict(os.environ, KUBECONFIG=str(self.kubeconfig))
        done = subprocess.run(
            [KUBECTL, *args], input=input, capture_output=True, text=True, env=env, timeout=timeout
        )
        if check and done.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed ({done.returncode}):\n{done.stderr}")
        return done

    def stop(self, timeout: float = 30) -> int:
        """SIGTERM, then wait; returns the exit code (kills after `timeout`)."""
        return stop_process(self.process, signal.SIGTERM, timeout)


def start_cluster(
    extra_args: Sequence[str] = (), data_dir: Path | None = None, ready_timeout: float = 60,
    agent: bool = False, dns: bool | None = None,
) -> Cluster:
    """Start `pyk8s server` and return once it printed `pyk8s: ready` (raises with its output if not).
    With `agent` the server runs its own node (kubelet with real containers and the service proxy) and the
    cluster DNS on the node's port 53; without, neither (so control-plane-only clusters can run side by
    side with one that has them). `dns` overrides whether the cluster DNS runs."""
    data_dir = data_dir or Path(tempfile.mkdtemp(prefix="pyk8s-e2e-"))
    port = free_port()
    cmd = [sys.executable, "-m", "pyk8s.cli.main", "server", "--data-dir", str(data_dir),
           "--https-port", str(port), *(() if agent else ("--disable-agent",)),
           *(() if (agent if dns is None else dns) else ("--disable-dns",)),
           *extra_args]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    cluster = Cluster(data_dir, port, proc)
    ready = threading.Event()

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            cluster.output.append(line)
            if line.strip() == "pyk8s: ready":
                ready.set()

    threading.Thread(target=pump, daemon=True).start()
    deadline = time.monotonic() + ready_timeout
    while not ready.wait(0.05):
        if proc.poll() is not None or time.monotonic() > deadline:
            cluster.stop()
            raise RuntimeError("pyk8s server did not become ready:\n" + "".join(cluster.output[-50:]))
    return cluster


@dataclass
class Agent:
    process: subprocess.Popen[str]
    log: Path

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        return stop_process(self.process, sig, timeout)


def start_agent(cluster: Cluster, data_dir: Path, *args: str, server: str = "",
                prefix: Sequence[str] = ()) -> Agent:
    """`pyk8s agent` joined with the cluster's token; its output goes to DATA_DIR/agent.log. `server`
    replaces the cluster's loopback URL; `prefix` runs the agent through a command (e.g. nsenter)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    token = (cluster.data_dir / "token").read_text().strip()
    log = data_dir / "agent.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [*prefix, sys.executable, "-m", "pyk8s.cli.main", "agent", "--server", server or cluster.url,
             "--token", token,
             "--data-dir", str(data_dir), *args],
            stdout=out, stderr=subprocess.STDOUT, text=True)
    return Agent(proc, log)


def wait_for(check: Callable[[], T], within: float = 30, what: str = "condition") -> T:
    """Poll `check` until it returns something true; fail after `within` seconds."""
    deadline = time.monotonic() + within
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within:.0f}s waiting for {what}")
        time.sleep(0.2)


def client_ssl(kubeconfig: Path) -> ssl.SSLContext:
    """An SSL context trusting the kubeconfig's CA, with its (first) user's client certificate."""
    cfg = yaml.safe_load(kubeconfig.read_text())
    user, cluster = cfg["users"][0]["user"], cfg["clusters"][0]["cluster"]
    ctx = ssl.create_default_context(cadata=base64.b64decode(cluster["certificate-authority-data"]).decode())
    with tempfile.TemporaryDirectory(prefix="pyk8s-client-cert-") as tmp:  # load_cert_chain reads files
        cert, key = Path(tmp, "client.crt"), Path(tmp, "client.key")
        cert.write_bytes(base64.b64decode(user["client-certificate-data"]))
        key.write_bytes(base64.b64decode(user["client-key-data"]))
        ctx.load_cert_chain(cert, key)
    return ctx
