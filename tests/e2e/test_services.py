"""Service networking as a user sees it, through the real kubectl and real containers, in both proxy modes.

A `pyk8s server` running its own node (kubelet over runc, CNI bridge `pyk8s0`, the service proxy in the
mode under test, the cluster DNS on the node's address): two busybox httpd replicas behind the Service
`web` answer a client pod by `http://web` and by the full name, from both backends; the NodePort answers
on the node's IP from the host; a pod failing readiness stays out of the endpoints and never answers; a
Service without endpoints fails at once; a third replica answers within seconds of being ready; headless
DNS answers with the pods' IPs. Pods use the node's seed busybox image (`imagePullPolicy: IfNotPresent`),
so no registry is contacted. At the end the pods are deleted and gone before the server stops, and the
test checks that no container, netns or mount is left, then removes the bridge, the masquerade chain and
the proxy's nft table and checks they are gone.
"""

from __future__ import annotations

import calendar
import contextlib
import json
import os
import secrets
import shutil
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support.cluster import Cluster, start_cluster, wait_for

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("runc") is None or shutil.which("nft") is None
    or not os.path.exists("/bin/busybox"), reason="needs root, runc, nft and busybox")

BRIDGE = "pyk8s0"
NFT_TABLE = "pyk8s"

# httpd serves an index naming its pod; readiness is an HTTP GET of it (`lame` asks for a missing page).
WEB = """
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  type: NodePort
  selector: {app: web}
  ports: [{port: 80, targetPort: 80}]
---
apiVersion: v1
kind: Service
metadata: {name: web-headless}
spec:
  clusterIP: None
  selector: {app: web}
  ports: [{port: 80, targetPort: 80}]
---
apiVersion: v1
kind: Service
metadata: {name: empty}
spec:
  selector: {app: nothing-has-this-label}
  ports: [{port: 80, targetPort: 80}]
---
apiVersion: v1
kind: Pod
metadata: {name: client}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - {name: client, image: busybox, imagePullPolicy: IfNotPresent, command: ["sleep", "3600"]}
"""

DEPLOYMENT = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: httpd
        image: busybox
        imagePullPolicy: IfNotPresent
        command: ["sh", "-c", "mkdir -p /www && echo $HOSTNAME > /www/index.html &&
                   exec httpd -f -p 80 -h /www"]
        readinessProbe: {httpGet: {path: /, port: 80}, periodSeconds: 1}
"""

LAME = """
apiVersion: v1
kind: Pod
metadata: {name: lame, labels: {app: web}}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: httpd
    image: busybox
    imagePullPolicy: IfNotPresent
    command: ["sh", "-c", "mkdir -p /www && echo $HOSTNAME > /www/index.html &&
               exec httpd -f -p 80 -h /www"]
    readinessProbe: {httpGet: {path: /missing, port: 80}, periodSeconds: 1}
"""


@dataclass
class Env:
    cluster: Cluster
    mode: str
    ns: str

    def kubectl(self, *args: str, **kw: Any) -> subprocess.CompletedProcess[str]:
        return self.cluster.kubectl("-n", self.ns, *args, **kw)

    def json(self, *args: str) -> Any:
        return json.loads(self.kubectl("get", *args, "-o", "json").stdout)

    def in_client(self, script: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return self.kubectl("exec", "client", "--", "sh", "-c", script, check=False, timeout=timeout)

    def fetch(self, url: str, times: int) -> list[str]:
        """`times` GETs from the client pod (busybox wget; `timeout` because its -T crashes in 1.35)."""
        done = self.in_client(f"for i in $(seq {times}); do timeout 5 wget -q -O - {url} || echo FAILED;"
                              " done")
        return done.stdout.split()

    def ready_web_pods(self) -> dict[str, str]:
        """name -> IP of the Ready pods labelled app=web."""
        pods = self.json("pods", "-l", "app=web")["items"]
        return {p["metadata"]["name"]: p["status"]["podIP"] for p in pods
                if any(c["type"] == "Ready" and c["status"] == "True"
                       for c in p["status"].get("conditions", []))}

    def ready_endpoint_ips(self, service: str) -> set[str]:
        slices = self.json("endpointslices", "-l", f"kubernetes.io/service-name={service}")["items"]
        return {a for s in slices for e in s.get("endpoints") or []
                if (e.get("conditions") or {}).get("ready") for a in e["addresses"]}


def _all_pods_gone(cluster: Cluster) -> bool:
    out = cluster.kubectl("get", "pods", "-A", "-o", "json", check=False)
    return out.returncode == 0 and not json.loads(out.stdout)["items"]


def _leftovers(data_dir: Path) -> list[str]:
    """What the node left behind under its data dir: processes, runc containers, netns, mounts."""
    left = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        with contextlib.suppress(OSError):
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            if str(data_dir) in cmdline:
                left.append(f"process {pid}: {cmdline.strip()}")
    runc_root = data_dir / "agent" / "runtime" / "runc-root"
    if runc_root.is_dir():
        listed = subprocess.run(["runc", "--root", str(runc_root), "list", "-q"],
                                capture_output=True, text=True)
        left += [f"runc container {c}" for c in listed.stdout.split()]
    records = data_dir / "agent" / "network"
    for path in records.rglob("*") if records.is_dir() else []:
        if path.is_file() and path.parent.name == "netns":
            netns = path.read_text().strip()
            if os.path.exists(netns):
                left.append(f"netns {netns}")
    with open("/proc/self/mounts") as mounts:
        left += [f"mount {line.split()[1]}" for line in mounts if str(data_dir) in line.split()[1]]
    return left


def _cleanup_node(data_dir: Path) -> None:
    """The node's host state that outlives it: bridge, masquerade chain, netns left, the proxy's table."""
    from pyk8s.kubelet.network import PodNetwork

    PodNetwork(str(data_dir / "agent" / "network"), "/usr/lib/cni", BRIDGE).cleanup_all()
    subprocess.run(["nft", "delete", "table", "ip", NFT_TABLE], capture_output=True, check=False)


def _dns_port_free(within: float = 60) -> bool:
    """Whether the node's DNS address (the default route's, port 53) is free, waiting up to `within`:
    every `pyk8s server`, even with --disable-agent, serves the cluster DNS there."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.connect(("192.0.2.1", 9))  # picks the default route's source address; sends nothing
        node_ip = s.getsockname()[0]
    deadline = time.monotonic() + within
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            try:
                s.bind((node_ip, 53))
                return True
            except OSError:
                if time.monotonic() > deadline:
                    return False
        time.sleep(0.5)


def _host_state() -> list[str]:
    left = []
    if subprocess.run(["ip", "link", "show", BRIDGE], capture_output=True).returncode == 0:
        left.append(f"bridge {BRIDGE}")
    if subprocess.run(["nft", "list", "table", "ip", NFT_TABLE], capture_output=True).returncode == 0:
        left.append(f"nft table {NFT_TABLE}")
    nat = subprocess.run(["iptables", "-w", "-t", "nat", "-S"], capture_output=True, text=True).stdout
    left += [f"iptables: {line}" for line in nat.splitlines() if f"PYK8S-MASQ-{BRIDGE}" in line]
    return left


@pytest.fixture(scope="module", params=["nftables", "userspace"])
def env(request: pytest.FixtureRequest) -> Iterator[Env]:
    mode: str = request.param
    if _host_state():
        pytest.skip(f"another pyk8s node runs on this machine: {_host_state()}")
    if not _dns_port_free():
        pytest.skip("port 53 on the node's address is held by another process (another pyk8s server?)")
    cluster = start_cluster(["--proxy-mode", mode], agent=True)
    data_dir = cluster.data_dir
    ns = f"svc-{secrets.token_hex(3)}"
    try:
        wait_for(lambda: "True" in cluster.kubectl(
            "get", "nodes", "-o", "jsonpath={.items[*].status.conditions[?(@.type=='Ready')].status}",
            check=False).stdout, within=60, what="the node Ready")
        dns_failed = [line for line in cluster.output if "cluster DNS on" in line]
        assert not dns_failed, f"the cluster DNS could not listen (port 53 taken?): {dns_failed}"
        cluster.kubectl("create", "namespace", ns)
        wait_for(lambda: cluster.kubectl("-n", ns, "get", "serviceaccount", "default",
                                         check=False).returncode == 0,
                 within=30, what="the default service account")
        env = Env(cluster, mode, ns)
        env.kubectl("apply", "-f", "-", input=WEB)
        env.kubectl("wait", "--for=condition=Ready", "pod/client", "--timeout=60s", timeout=70)
        env.kubectl("apply", "-f", "-", input=DEPLOYMENT)
        env.kubectl("rollout", "status", "deployment/web", "--timeout=60s", timeout=70)
        wait_for(lambda: len(env.ready_endpoint_ips("web")) == 2, within=30, what="two ready endpoints")
        yield env
    finally:
        try:
            cluster.kubectl("delete", "namespace", ns, "--wait=false", check=False)
            with contextlib.suppress(AssertionError):
                wait_for(lambda: _all_pods_gone(cluster), within=60, what="all pods gone")
            pods_left = not _all_pods_gone(cluster)
            code = cluster.stop()
            with contextlib.suppress(AssertionError):  # monitors end as their containers' processes do
                wait_for(lambda: not _leftovers(data_dir), within=10, what="nothing left")
            left = _leftovers(data_dir)
        finally:
            _cleanup_node(data_dir)
            after = _host_state()
            if not _leftovers(data_dir):  # never delete files under a mount still in use
                shutil.rmtree(data_dir, ignore_errors=True)
        assert not pods_left, "pods not deleted before the server stopped:\n" + "".join(cluster.output[-60:])
        assert code == 0, "pyk8s server did not stop cleanly:\n" + "".join(cluster.output[-40:])
        assert not left, f"the node left behind: {left}"
        assert not after, f"cleanup left: {after}"


def test_service_name_reaches_both_backends(env: Env) -> None:
    backends = set(env.ready_web_pods())
    assert len(backends) == 2
    for url in ("http://web", f"http://web.{env.ns}.svc.cluster.local"):
        answers = env.fetch(url, 20)
        assert len(answers) == 20 and set(answers) == backends, (url, answers)


def test_nodeport_answers_on_node_ip(env: Env) -> None:
    node = env.cluster.kubectl("get", "nodes", "-o", "json")
    node_ip = next(a["address"] for a in json.loads(node.stdout)["items"][0]["status"]["addresses"]
                   if a["type"] == "InternalIP")
    port = env.json("service", "web")["spec"]["ports"][0]["nodePort"]
    answers = []
    for _ in range(20):
        with urllib.request.urlopen(f"http://{node_ip}:{port}/", timeout=5) as r:
            answers.append(r.read().decode().strip())
    assert set(answers) == set(env.ready_web_pods()), answers


def test_unready_pod_is_kept_out(env: Env) -> None:
    env.kubectl("apply", "-f", "-", input=LAME)
    try:
        wait_for(lambda: _probed_unready(env), within=60, what="the pod running and probed unready")
        lame = env.json("pod", "lame")["status"]["podIP"]
        assert lame not in env.ready_endpoint_ips("web")
        answers = env.fetch("http://web", 20)
        assert "lame" not in answers and set(answers) == set(env.ready_web_pods()), answers
    finally:
        env.kubectl("delete", "pod", "lame", "--wait=false", check=False)


def _probed_unready(env: Env) -> bool:
    """`lame` has been running long enough for several readiness probes, and is not Ready."""
    pod = env.json("pod", "lame")
    running = (pod["status"].get("containerStatuses") or [{}])[0].get("state", {}).get("running")
    if not running or "lame" in env.ready_web_pods():
        return False
    started = calendar.timegm(time.strptime(running["startedAt"], "%Y-%m-%dT%H:%M:%SZ"))
    return time.time() - started > 3  # several probes (periodSeconds 1) have failed


def test_service_without_endpoints_fails_at_once(env: Env) -> None:
    assert not env.ready_endpoint_ips("empty")
    started = time.monotonic()
    done = env.in_client("timeout 20 wget -q -O - http://empty; echo rc=$?")
    elapsed = time.monotonic() - started
    assert "rc=0" not in done.stdout and "rc=143" not in done.stdout, done  # refused, not timed out
    assert "refused" in done.stderr.lower(), done.stderr
    assert elapsed < 10, f"took {elapsed:.1f}s"  # kubectl exec's own cost included; a hang takes 20s


def test_headless_dns_answers_with_pod_ips(env: Env) -> None:
    expected = set(env.ready_web_pods().values())
    name = f"web-headless.{env.ns}.svc.cluster.local"

    def answered() -> set[str] | None:
        out = env.in_client(f"nslookup -type=a {name}").stdout
        # busybox nslookup: "Address:\t10.43.0.10:53" names the server, "Address: 10.42.0.4" an answer
        ips = {line.split()[-1] for line in out.splitlines()
               if line.startswith("Address:") and not line.rstrip().endswith(":53")}
        return ips if ips == expected else None

    wait_for(answered, within=15, what=f"{name} answering {expected}")


def test_scaling_to_three_is_followed(env: Env) -> None:
    env.kubectl("scale", "deployment/web", "--replicas=3")
    pods = wait_for(lambda: p if len(p := env.ready_web_pods()) == 3 else {}, within=90,
                    what="three ready replicas")
    ready_at = time.monotonic()
    seen: set[str] = set()

    def all_answer() -> bool:
        seen.update(env.fetch("http://web", 10))
        return set(pods) <= seen

    wait_for(all_answer, within=20, what="the third replica answering")
    assert time.monotonic() - ready_at < 20
