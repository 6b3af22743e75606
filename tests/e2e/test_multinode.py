"""Two real nodes on one machine: a `pyk8s server --disable-agent` on the host and two `pyk8s agent`s, each
in a network namespace of its own ("host A" and "host B") joined to the host by a veth on a bridge this
test creates. Each agent's kubelet has its own `pyk8s0` bridge, nft table and iptables rules inside its
namespace and its pod cgroups under a root of its own, so nothing collides with a node on the host.

Checked with the real kubectl: both nodes Ready with distinct podCIDRs and routes to each other's pods;
pods reach httpd pods on the other node by pod IP and through ClusterIP Services whose only backend is on
the other node — A's proxy in nftables mode, B's in userspace mode, each with its own `system:kube-proxy`
certificate, both programming the Services; a pod on B resolves Services through the cluster DNS; a pod
reaches the API server through the `kubernetes` Service. Everything is torn down afterwards, and what
the pods left behind is checked first.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.cluster import Agent, Cluster, start_agent, start_cluster, wait_for

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or not all(shutil.which(t) for t in ("runc", "ip", "nft", "nsenter", "kubectl"))
    or not os.path.exists("/usr/lib/cni/bridge"),
    reason="needs root, runc, iproute2, nft, nsenter, kubectl and the CNI plugins")

# A private range clear of the pod (10.42.0.0/16) and service (10.43.0.0/16) networks.
SUBNET = "192.168.250"
HOST_IP = f"{SUBNET}.1"
BRIDGE = "pk8mn0"
CGROUP_FS = "/sys/fs/cgroup"
KUBECTL = os.path.realpath(shutil.which("kubectl") or "kubectl")


@dataclass
class Host:
    name: str  # the node name, and (prefixed) the netns and the host side of its veth
    ip: str
    data_dir: Path
    proxy_mode: str
    agent: Agent | None = None

    @property
    def netns(self) -> str:
        return f"pk8mn-{self.name}"

    @property
    def cgroup_root(self) -> str:
        return f"/pk8mn-{self.name}"

    def run(self, *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """A command in this host's network namespace."""
        return _run("nsenter", f"--net=/run/netns/{self.netns}", *argv, check=check)


def _is_static(path: str) -> bool:
    """An ELF executable without an interpreter (PT_INTERP) runs in a busybox container as it is."""
    with open(path, "rb") as f:
        head = f.read(64)
        if head[:4] != b"\x7fELF" or head[4] != 2 or head[5] != 1:  # 64-bit little-endian only
            return False
        phoff = int.from_bytes(head[32:40], "little")
        phentsize, phnum = int.from_bytes(head[54:56], "little"), int.from_bytes(head[56:58], "little")
        for i in range(phnum):
            f.seek(phoff + i * phentsize)
            if int.from_bytes(f.read(4), "little") == 3:
                return False
    return True


def _run(*argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    if check and done.returncode != 0:
        raise AssertionError(f"{' '.join(argv)} failed ({done.returncode}): {done.stderr}")
    return done


def _make_network(hosts: list[Host]) -> None:
    _run("ip", "link", "add", BRIDGE, "type", "bridge")
    _run("ip", "addr", "add", f"{HOST_IP}/24", "dev", BRIDGE)
    _run("ip", "link", "set", BRIDGE, "up")
    for h in hosts:
        _run("ip", "netns", "add", h.netns)
        _run("ip", "link", "add", h.netns, "type", "veth", "peer", "name", "eth0", "netns", h.netns)
        _run("ip", "link", "set", h.netns, "master", BRIDGE, "up")
        _run("ip", "-n", h.netns, "addr", "add", f"{h.ip}/24", "dev", "eth0")
        _run("ip", "-n", h.netns, "link", "set", "eth0", "up")
        _run("ip", "-n", h.netns, "link", "set", "lo", "up")
        _run("ip", "-n", h.netns, "route", "add", "default", "via", HOST_IP)
        h.run("sysctl", "-qw", "net.ipv4.ip_forward=1")


def _cgroup_dirs(root: str) -> list[str]:
    """The cgroup tree `root` in every hierarchy (cgroup v1 controllers and v2), deepest first."""
    out = []
    for ctrl in os.listdir(CGROUP_FS):
        top = os.path.join(CGROUP_FS, ctrl, root.lstrip("/"))
        if os.path.isdir(top) and not os.path.islink(os.path.join(CGROUP_FS, ctrl)):
            out.extend(dirpath for dirpath, _dirs, _files in os.walk(top))
    return sorted(out, key=lambda d: -d.count("/"))


def _cgroup_pids(root: str) -> set[int]:
    pids: set[int] = set()
    for d in _cgroup_dirs(root):
        try:
            with open(os.path.join(d, "cgroup.procs")) as f:
                pids.update(int(p) for p in f.read().split())
        except OSError:
            pass
    return pids


def _mounts_under(path: Path | str) -> list[str]:
    with open("/proc/self/mountinfo") as f:
        return [line.split()[4] for line in f if line.split()[4].startswith(str(path))]


def _pod_netns_files(h: Host) -> list[str]:
    """The pod network namespaces this host's kubelet pinned (it records each under its state dir)."""
    records = h.data_dir / "agent" / "network" / "netns"
    return [p.read_text().strip() for p in records.glob("*") if p.is_file()] if records.is_dir() else []


def _teardown(cluster: Cluster | None, hosts: list[Host]) -> dict[str, int]:
    """Leave the machine as it was, whatever state the test stopped in: pods deleted through the API
    while the agents run, then anything of theirs that is left killed, unmounted and removed. Returns
    the agents' exit codes."""
    codes = {}
    if cluster is not None and all(h.agent is not None and h.agent.process.poll() is None for h in hosts):
        cluster.kubectl("delete", "pods", "--all", "--all-namespaces", "--grace-period=1", "--wait",
                        "--timeout=60s", check=False, timeout=90)
    for h in hosts:
        if h.agent is not None:
            codes[h.name] = h.agent.stop()
        for pid in _cgroup_pids(h.cgroup_root):  # containers the agent did not stop
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        for path in _pod_netns_files(h):
            for mount in _mounts_under(path):
                _run("umount", mount, check=False)
            with contextlib.suppress(OSError):
                os.unlink(path)
        for mount in sorted(_mounts_under(h.data_dir), key=len, reverse=True):
            _run("umount", "-l", mount, check=False)
        _run("ip", "link", "delete", h.netns, check=False)  # at once; the netns' own end goes with it
        _run("ip", "netns", "delete", h.netns, check=False)
        for d in _cgroup_dirs(h.cgroup_root):
            for _ in range(50):  # a killed process leaves its cgroup a moment later
                try:
                    os.rmdir(d)
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.1)
        shutil.rmtree(h.data_dir, ignore_errors=True)
    _run("ip", "link", "delete", BRIDGE, check=False)
    return codes


@pytest.fixture(scope="module")
def two_nodes() -> Iterator[tuple[Cluster, list[Host]]]:
    if _run("ip", "link", "show", BRIDGE, check=False).returncode == 0:
        pytest.skip(f"{BRIDGE} exists: another multi-node test is running")
    base = Path(tempfile.mkdtemp(prefix="pyk8s-multinode-"))
    hosts = [Host("mn-a", f"{SUBNET}.11", base / "a", "nftables"),
             Host("mn-b", f"{SUBNET}.12", base / "b", "userspace")]
    cluster = None
    codes: dict[str, int] = {}
    try:
        _make_network(hosts)
        cluster = start_cluster(["--bind-address", HOST_IP], data_dir=base / "server", dns=True)
        url = f"https://{HOST_IP}:{cluster.port}"
        for h in hosts:
            h.agent = start_agent(
                cluster, h.data_dir, "--node-name", h.name, "--node-ip", h.ip, "--cgroup-root",
                h.cgroup_root, "--proxy-mode", h.proxy_mode, server=url,
                prefix=("nsenter", f"--net=/run/netns/{h.netns}"))
        for h in hosts:
            agent = h.agent
            assert agent is not None
            wait_for(lambda a=agent: "pyk8s agent: ready" in a.log.read_text()
                     or a.process.poll() is not None, within=120, what=f"agent {h.name} ready")
            assert agent.process.poll() is None, agent.log.read_text()
        yield cluster, hosts
    finally:
        try:
            codes = _teardown(cluster, hosts)
        finally:
            code = cluster.stop() if cluster is not None else 0
            shutil.rmtree(base, ignore_errors=True)
        left = [f"netns {h.netns}" for h in hosts if os.path.exists(f"/run/netns/{h.netns}")]
        left += [d for h in hosts for d in _cgroup_dirs(h.cgroup_root)]
        if _run("ip", "link", "show", BRIDGE, check=False).returncode == 0:
            left.append(f"bridge {BRIDGE}")
        assert not left, f"the test left behind: {left}"
        assert code == 0, "pyk8s server did not stop cleanly"
        assert all(c == 0 for c in codes.values()), f"agents did not stop cleanly: {codes}"


def _json(cluster: Cluster, *args: str) -> Any:
    return json.loads(cluster.kubectl(*args, "-o", "json").stdout)


def _ready(node: dict[str, Any]) -> bool:
    return any(c["type"] == "Ready" and c["status"] == "True" for c in node["status"].get("conditions", []))


def _pod(name: str, node: str, script: str, labels: dict[str, str] | None = None) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "labels": labels or {"app": name}},
            "spec": {"nodeName": node, "terminationGracePeriodSeconds": 1,
                     "containers": [{"name": "main", "image": "busybox:latest", "imagePullPolicy": "Never",
                                     "command": ["sh", "-c", script]}]}}


def _exec(cluster: Cluster, ns: str, pod: str, script: str) -> subprocess.CompletedProcess[str]:
    return cluster.kubectl("exec", "-n", ns, pod, "--", "sh", "-c", script, check=False, timeout=30)


def test_two_nodes_route_pods_services_and_dns(two_nodes: tuple[Cluster, list[Host]]) -> None:
    cluster, (a, b) = two_nodes

    # Both nodes Ready, each with its own pod CIDR, each with its InternalIP.
    def nodes_ready() -> dict[str, dict[str, Any]]:
        items = {n["metadata"]["name"]: n for n in _json(cluster, "get", "nodes")["items"]}
        ok = all(name in items and _ready(items[name]) and items[name]["spec"].get("podCIDR")
                 for name in (a.name, b.name))
        return items if ok else {}
    nodes = wait_for(nodes_ready, within=60, what="both nodes Ready with a podCIDR")
    cidr_a, cidr_b = nodes[a.name]["spec"]["podCIDR"], nodes[b.name]["spec"]["podCIDR"]
    assert cidr_a != cidr_b
    for h in (a, b):
        assert {"type": "InternalIP", "address": h.ip} in nodes[h.name]["status"]["addresses"]
    table = cluster.kubectl("get", "nodes").stdout
    assert sum(1 for line in table.splitlines() if line.split()[1:2] == ["Ready"]) == 2, table

    # host-gw routes: each node reaches the other's pods through the other's node IP.
    def route(h: Host, cidr: str, via: str) -> bool:
        routes = json.loads(h.run("ip", "-j", "route", "show", "proto", "199").stdout or "[]")
        return any(r.get("dst") == cidr and r.get("gateway") == via for r in routes)
    wait_for(lambda: route(a, cidr_b, b.ip) and route(b, cidr_a, a.ip), what="routes to the other pod CIDR")

    ns = "multinode"
    cluster.kubectl("create", "namespace", ns)
    try:
        manifests: list[dict[str, Any]] = []
        for h in (a, b):
            web = f"web-{h.name[-1]}"
            manifests += [
                _pod(web, h.name, f"mkdir -p /www && echo hello-from-{h.name} > /www/index.html && "
                                  "exec httpd -f -p 80 -h /www"),
                _pod(f"client-{h.name[-1]}", h.name, "exec sleep 3600"),
                {"apiVersion": "v1", "kind": "Service", "metadata": {"name": web},
                 "spec": {"selector": {"app": web}, "ports": [{"port": 8080, "targetPort": 80}]}},
            ]
        kubectl_pod = _pod("kubectl-a", a.name, "exec sleep 3600")  # the host's kubectl inside, if static
        if _is_static(KUBECTL):
            kubectl_pod["spec"]["volumes"] = [
                {"name": "kubectl", "hostPath": {"path": KUBECTL, "type": "File"}}]
            kubectl_pod["spec"]["containers"][0]["volumeMounts"] = [
                {"name": "kubectl", "mountPath": "/kubectl", "readOnly": True}]
        manifests.append(kubectl_pod)
        cluster.kubectl("apply", "-n", ns, "-f", "-", input=yaml.safe_dump_all(manifests))

        def running() -> dict[str, dict[str, Any]]:
            pods = {p["metadata"]["name"]: p for p in _json(cluster, "get", "pods", "-n", ns)["items"]}
            ok = len(pods) == 5 and all(p["status"].get("phase") == "Running" and p["status"].get("podIP")
                                        for p in pods.values())
            return pods if ok else {}
        pods = wait_for(running, within=90, what="the five pods Running")
        for name, pod in pods.items():
            h = a if name.endswith("-a") else b
            assert pod["spec"]["nodeName"] == h.name
            assert ipaddress.ip_address(pod["status"]["podIP"]) in ipaddress.ip_network(
                cidr_a if h is a else cidr_b)
        ip_a, ip_b = pods["web-a"]["status"]["podIP"], pods["web-b"]["status"]["podIP"]

        # Pods reach the pod on the other node by its pod IP.
        def fetch(pod: str, url: str) -> str:
            done = _exec(cluster, ns, pod, f"timeout 5 wget -q -O - {url}")  # busybox 1.35's -T crashes
            return done.stdout if done.returncode == 0 else ""
        assert wait_for(lambda: fetch("client-a", f"http://{ip_b}/"), what="A → B by pod IP") \
            == "hello-from-mn-b\n"
        assert wait_for(lambda: fetch("client-b", f"http://{ip_a}/"), what="B → A by pod IP") \
            == "hello-from-mn-a\n"

        # ... and through ClusterIPs whose only backend is on the other node. A's nftables proxy DNATs to
        # the endpoint; B's userspace proxy redirects the ClusterIP to its own listener.
        svc_ip = {name: _json(cluster, "get", "service", "-n", ns, name)["spec"]["clusterIP"]
                  for name in ("web-a", "web-b")}

        def table(h: Host) -> str:
            return h.run("nft", "list", "table", "ip", "pyk8s").stdout
        wait_for(lambda: all(ip in table(a) for ip in (svc_ip["web-a"], svc_ip["web-b"], ip_a, ip_b)),
                 what="the Services' DNAT rules on A")
        wait_for(lambda: all(ip in table(b) for ip in svc_ip.values()), what="the Services' redirects on B")
        assert wait_for(lambda: fetch("client-a", f"http://{svc_ip['web-b']}:8080/"),
                        what="A → ClusterIP → B (nftables)") == "hello-from-mn-b\n"
        assert wait_for(lambda: fetch("client-b", f"http://{svc_ip['web-a']}:8080/"),
                        what="B → ClusterIP → A (userspace)") == "hello-from-mn-a\n"

        # The cluster DNS answers a pod on B with the Services' IPs.
        def resolve(name: str) -> str:
            done = _exec(cluster, ns, "client-b", f"nslookup {name}.{ns}.svc.cluster.local")
            return done.stdout if done.returncode == 0 and svc_ip[name] in done.stdout else ""
        assert svc_ip["web-b"] in wait_for(lambda: resolve("web-b"), what="DNS from a pod on B")
        assert svc_ip["web-a"] in wait_for(lambda: resolve("web-a"), what="DNS from a pod on B")
        assert wait_for(lambda: fetch("client-b", "http://web-a:8080/"), what="B → web-a by name") \
            == "hello-from-mn-a\n"

        # The API server through the `kubernetes` Service: the real kubectl inside a pod on A, with its
        # in-cluster config (KUBERNETES_SERVICE_HOST, the service account's token and CA, the serving
        # certificate checked against the Service IP); without a static kubectl, a TCP connect.
        if _is_static(KUBECTL):
            def api_from_pod() -> str:
                done = cluster.kubectl("exec", "-n", ns, "kubectl-a", "--", "/kubectl", "get", "--raw",
                                       "/api", check=False, timeout=30)
                return done.stdout if done.returncode == 0 else ""
            api = json.loads(wait_for(api_from_pod, what="the API through the kubernetes Service from pod A"))
            assert api["kind"] == "APIVersions" and "v1" in api["versions"]
            denied = cluster.kubectl("exec", "-n", ns, "kubectl-a", "--", "/kubectl", "get", "secrets",
                                     check=False)
            user = f"system:serviceaccount:{ns}:default"
            assert f'User "{user}" cannot list resource "secrets"' in denied.stderr, denied.stderr
        else:
            wait_for(lambda: _exec(cluster, ns, "kubectl-a", "nc -w 3 kubernetes.default.svc 443 </dev/null")
                     .returncode == 0, what="a TCP connection to the kubernetes Service from pod A")
        endpoints = _json(cluster, "get", "endpoints", "-n", "default", "kubernetes")
        assert endpoints["subsets"][0]["addresses"] == [{"ip": HOST_IP}]

        # Each proxy speaks as system:kube-proxy through a CSR of its own, approved for the join token.
        csrs = _json(cluster, "get", "csr")["items"]
        proxy_csrs = [c for c in csrs if c["spec"]["signerName"] == "kubernetes.io/kube-apiserver-client"]
        assert len(proxy_csrs) == 2
        assert all(c["spec"]["username"].startswith("system:bootstrap:") and c["status"].get("certificate")
                   for c in proxy_csrs)
        pod_netns = {h.name: _pod_netns_files(h) for h in (a, b)}
        assert len(pod_netns[a.name]) == 3 and len(pod_netns[b.name]) == 2, pod_netns
    finally:
        cluster.kubectl("delete", "namespace", ns, "--wait=false", check=False)

    # Pods deleted: no sandbox namespace, overlay mount or container process of theirs stays behind.
    wait_for(lambda: not _json(cluster, "get", "pods", "-n", ns)["items"] if
             cluster.kubectl("get", "namespace", ns, check=False).returncode == 0 else True,
             within=60, what="the pods gone")
    for h in (a, b):
        wait_for(lambda h=h: not _mounts_under(h.data_dir), what=f"{h.name}'s mounts gone")
        wait_for(lambda h=h: not _cgroup_pids(h.cgroup_root), what=f"no container left in {h.cgroup_root}")
        wait_for(lambda h=h: not any(os.path.exists(p) for p in pod_netns[h.name]),
                 what=f"{h.name}'s pod network namespaces gone")
