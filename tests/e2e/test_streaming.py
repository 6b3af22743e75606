"""kubectl logs, exec, attach and port-forward against a real `pyk8s server` and a real node (`pyk8s agent`
over runc and the seed busybox image): the API server proxies to the kubelet's HTTPS API. Pods use the host
network, as in test_kubelet, so the test adds no bridge or NAT rules to the machine."""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import os
import shutil
import socket
import ssl
import struct
import subprocess
import termios
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.e2e.test_kubelet import Node, _json, apply, bb, cstate, node_on_own_cluster, pod, until_pod
from tests.support.cluster import KUBECTL, free_port, wait_for

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or shutil.which("runc") is None
                                or not os.path.exists("/bin/busybox"), reason="needs root, runc and busybox")


@pytest.fixture(scope="module")
def node() -> Iterator[Node]:
    yield from node_on_own_cluster("streaming-e2e", "--kubelet-port", "0")


def running(node: Node, name: str, *containers: dict[str, Any], **spec: Any) -> dict[str, Any]:
    apply(node.cluster, pod(name, node.name, *containers, **spec))
    return until_pod(node.cluster, name, lambda p: p["status"].get("phase") == "Running"
                     and all(cstate(p, c["name"]).get("state", {}).get("running") for c in containers),
                     what=f"{name} Running")


@contextlib.contextmanager
def _port_forward(node: Node, name: str, port: int) -> Iterator[tuple[int, subprocess.Popen[str]]]:
    """`kubectl port-forward pod/<name>` from a free local port to `port`: (the local port, kubectl)."""
    local = free_port()
    env = dict(os.environ, KUBECONFIG=str(node.cluster.kubeconfig))
    proc = subprocess.Popen([KUBECTL, "port-forward", f"pod/{name}", f"{local}:{port}"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        yield local, proc
    finally:
        proc.kill()
        proc.wait()


def test_logs_tail_timestamps_container_and_previous(node: Node) -> None:
    k = node.cluster.kubectl
    running(node, "logs", bb("a", "echo one; echo two; echo three; sleep 3600"),
            bb("b", "echo from-b; sleep 3600"))
    wait_for(lambda: k("logs", "logs", "-c", "a").stdout == "one\ntwo\nthree\n", what="logs of a")
    assert k("logs", "logs", "-c", "b").stdout == "from-b\n"
    assert k("logs", "logs", "-c", "a", "--tail", "1").stdout == "three\n"
    stamped = k("logs", "logs", "-c", "a", "--timestamps", "--tail", "1").stdout
    assert stamped.endswith("Z three\n") and stamped[:4].isdigit()
    assert k("logs", "logs", "-c", "a", "--since", "1h").stdout == "one\ntwo\nthree\n"
    defaulted = k("logs", "logs")  # kubectl picks the first container itself
    assert defaulted.stdout == "one\ntwo\nthree\n" and 'Defaulted container "a"' in defaulted.stderr
    raw = k("get", "--raw", "/api/v1/namespaces/default/pods/logs/log", check=False)
    assert "a container name must be specified for pod logs, choose one of: [a b]" in raw.stderr
    # --previous: a container that exits is restarted; its last run's log stays readable.
    running(node, "crash", bb("c", "echo ran; sleep 1; exit 1"))
    until_pod(node.cluster, "crash", lambda p: cstate(p).get("restartCount", 0) >= 1, what="a restart")
    assert k("logs", "crash", "--previous").stdout == "ran\n"


def test_logs_follow(node: Node) -> None:
    running(node, "follow", bb("c", "for i in 1 2 3; do echo line-$i; sleep 0.2; done; sleep 3600"))
    env = dict(os.environ, KUBECONFIG=str(node.cluster.kubeconfig))
    proc = subprocess.Popen([KUBECTL, "logs", "-f", "follow"], stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert proc.stdout is not None
        got = [proc.stdout.readline() for _ in range(3)]  # blocks until the lines arrive
        assert got == ["line-1\n", "line-2\n", "line-3\n"]
        assert proc.poll() is None  # still following
    finally:
        proc.kill()
        proc.wait()


def test_exec_stdin_exit_code_and_tty(node: Node) -> None:
    k = node.cluster.kubectl
    running(node, "exec", bb("c"))
    assert k("exec", "exec", "--", "echo", "hello").stdout == "hello\n"
    done = k("exec", "exec", "--", "sh", "-c", "echo to-err >&2; exit 3", check=False)
    assert done.returncode == 3 and "to-err" in done.stderr
    piped = k("exec", "-i", "exec", "--", "sh", "-c", "tr a-z A-Z", input="from stdin\n")
    assert piped.stdout == "FROM STDIN\n"
    # -t needs kubectl's own stdin to be a terminal: run it on a pseudo-terminal.
    # kubectl's terminal size reaches the container through the resize channel, shortly after the start
    script = ('tty; for i in $(seq 100); do s=$(stty size 2>/dev/null); [ "$s" = "33 99" ] && break; '
              'sleep 0.1; done; echo "size=$s"; exit 5')
    out, code = _on_pty(node, "exec", "-i", "-t", "exec", "--", "sh", "-c", script)
    assert code == 5 and "/dev/pts/" in out, out
    assert "size=33 99" in out, out


def _on_pty(node: Node, *args: str) -> tuple[str, int]:
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 33, 99, 0, 0))
    env = dict(os.environ, KUBECONFIG=str(node.cluster.kubeconfig))
    proc = subprocess.Popen([KUBECTL, *args], stdin=slave, stdout=slave, stderr=slave, env=env,
                            start_new_session=True)
    os.close(slave)
    out = b""
    try:
        while True:
            try:
                data = os.read(master, 4096)  # EIO once kubectl exited and the terminal closed
            except OSError:
                break
            if not data:
                break
            out += data
        return out.decode(errors="replace"), proc.wait(timeout=30)
    finally:
        os.close(master)
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_attach(node: Node) -> None:
    k = node.cluster.kubectl
    running(node, "attach", bb("c", "while read line; do echo got-$line; done", stdin=True))
    out = k("attach", "-i", "attach", "-c", "c", input="hi\n", timeout=30, check=False)
    assert "got-hi" in out.stdout, out.stderr


def test_port_forward_to_busybox_httpd(node: Node, tmp_path: Path) -> None:
    port = free_port()
    script = f"mkdir -p /www && echo served > /www/index.html && httpd -f -p {port} -h /www"
    running(node, "web", bb("c", script))
    with _port_forward(node, "web", port) as (local, proc):
        def connectable() -> bool:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", local), timeout=1):
                return True
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            return False
        wait_for(connectable, within=30, what="port-forward listening")
        for _ in range(2):  # two connections through one forward
            with urllib.request.urlopen(f"http://127.0.0.1:{local}/index.html", timeout=10) as r:
                assert r.read() == b"served\n"


def test_kubelet_api_authorises_users_by_subject_access_review(node: Node, tmp_path: Path) -> None:
    """A user's certificate from the cluster CA reaches the kubelet's /pods only with RBAC on nodes/proxy
    (the kubelet asks the API server with a SubjectAccessReview); /healthz answers anyone."""
    k = node.cluster.kubectl
    endpoints = _json(node.cluster, "get", "node", node.name)["status"]["daemonEndpoints"]
    port = endpoints["kubeletEndpoint"]["Port"]
    ca_cert = x509.load_pem_x509_certificate((node.cluster.data_dir / "pki" / "ca.crt").read_bytes())
    ca_key = serialization.load_pem_private_key((node.cluster.data_dir / "pki" / "ca.key").read_bytes(), None)
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kubelet-reader")]))
            .issuer_name(ca_cert.subject).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(hours=1))
            .sign(ca_key, hashes.SHA256()))  # type: ignore[arg-type]
    (tmp_path / "u.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "u.key").write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                                       serialization.PrivateFormat.PKCS8,
                                                       serialization.NoEncryption()))
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # the kubelet's serving certificate is self-signed
    ctx.load_cert_chain(str(tmp_path / "u.crt"), str(tmp_path / "u.key"))

    def status(path: str) -> int:
        try:
            with urllib.request.urlopen(f"https://127.0.0.1:{port}{path}", context=ctx, timeout=10) as r:
                return int(r.status)
        except urllib.error.HTTPError as e:
            return e.code

    assert status("/healthz") == 200
    assert status("/pods") == 403
    k("create", "clusterrole", "kubelet-reader", "--verb=get", "--resource=nodes/proxy")
    k("create", "clusterrolebinding", "kubelet-reader", "--clusterrole=kubelet-reader",
      "--user=kubelet-reader")
    try:
        wait_for(lambda: status("/pods") == 200, within=30, what="RBAC reaching the kubelet")
        assert status("/stats/summary") == 403  # nodes/stats is another subresource
    finally:
        k("delete", "clusterrolebinding", "kubelet-reader", check=False)
        k("delete", "clusterrole", "kubelet-reader", check=False)


def test_node_proxy_summary_and_pods(node: Node) -> None:
    running(node, "stats", bb("c"))
    base = f"/api/v1/nodes/{node.name}/proxy"
    pods = json.loads(node.cluster.kubectl("get", "--raw", f"{base}/pods").stdout)
    assert "stats" in [p["metadata"]["name"] for p in pods["items"]]

    def summary_has_pod() -> dict[str, Any] | None:
        s = json.loads(node.cluster.kubectl("get", "--raw", f"{base}/stats/summary").stdout)
        found = [p for p in s["pods"] if p["podRef"]["name"] == "stats"]
        return found[0] if found and found[0]["containers"] else None

    pod_stats = wait_for(summary_has_pod, what="the pod in the summary")
    assert pod_stats["containers"][0]["memory"]["workingSetBytes"] > 0
    assert pod_stats["cpu"]["usageCoreNanoSeconds"] > 0


def test_logs_of_a_deployment(node: Node) -> None:
    k = node.cluster.kubectl
    labels = {"app": "logdep"}
    container = bb("c", "echo hello-$POD; sleep 3600",
                   env=[{"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}])
    apply(node.cluster, {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "logdep", "namespace": "default"},
        "spec": {"replicas": 2, "selector": {"matchLabels": labels}, "template": {
            "metadata": {"labels": labels},
            "spec": {"nodeName": node.name, "hostNetwork": True, "terminationGracePeriodSeconds": 1,
                     "containers": [container]}}}})
    try:
        def both_logged() -> list[str]:
            out = k("logs", "-l", "app=logdep", "--prefix", check=False).stdout.splitlines()
            return out if len(out) == 2 else []
        lines = wait_for(both_logged, within=60, what="both replicas logging")
        names = sorted(line.split("/")[1] for line in lines)  # "[pod/<name>/c] hello-<name>"
        assert sorted(line.rsplit("hello-", 1)[1] for line in lines) == names
        one = k("logs", "deployment/logdep").stdout
        assert one.startswith("hello-logdep-") and one.count("\n") == 1
    finally:
        k("delete", "deployment", "logdep", "--wait=false", check=False)


def test_spdy_for_older_clients(node: Node, monkeypatch: pytest.MonkeyPatch) -> None:
    """kubectl before 1.30 (exec) and 1.31 (port-forward) upgrades to SPDY/3.1 instead of WebSockets; this
    kubectl does the same with its WebSocket feature turned off."""
    monkeypatch.setenv("KUBECTL_REMOTE_COMMAND_WEBSOCKETS", "false")
    monkeypatch.setenv("KUBECTL_PORT_FORWARD_WEBSOCKETS", "false")
    k = node.cluster.kubectl
    port = free_port()
    script = f"mkdir -p /www && echo spdy > /www/index.html && httpd -f -p {port} -h /www"
    running(node, "spdy", bb("c", script))
    traced = k("-v=8", "exec", "spdy", "--", "echo", "over-spdy")
    assert traced.stdout == "over-spdy\n"
    assert "Upgrade: SPDY/3.1" in traced.stderr and "101 Switching Protocols" in traced.stderr
    piped = k("exec", "-i", "spdy", "--", "sh", "-c", "tr a-z A-Z; echo err >&2; exit 4", input="abc\n",
              check=False)
    assert (piped.returncode, piped.stdout, piped.stderr.splitlines()[0]) == (4, "ABC\n", "err")
    out, code = _on_pty(node, "exec", "-i", "-t", "spdy", "--", "sh", "-c", "tty; exit 6")
    assert code == 6 and "/dev/pts/" in out, out
    with _port_forward(node, "spdy", port) as (local, proc):
        def served() -> bytes:
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            with contextlib.suppress(OSError), \
                    urllib.request.urlopen(f"http://127.0.0.1:{local}/index.html", timeout=10) as r:
                return bytes(r.read())
            return b""
        assert wait_for(served, within=30, what="port-forward over SPDY") == b"spdy\n"
