"""Footprint benchmark: `pyk8s server` with its own node (kubelet over runc, the service proxy, the cluster
DNS) on SQLite, against the budgets in DESIGN.md.

1. Start-up: from starting `pyk8s server` on an empty data dir to `pyk8s: ready`, to the node Ready, to the
   first pod Running (busybox from the seed image the node builds at start, `imagePullPolicy:
   IfNotPresent`, on the pod network), each seen by this process (a separate one) through watches. The pod
   is created once the node is Ready, as a person waiting for the node would.
2. Idle: with that pod running, once start-up work has settled (CPU of the process tree below --settle-cpu
   % over 5 s, or --settle-max s passed), memory and CPU of the server's process tree: the server, its
   children (components, kubelet) and the runtime's container monitors (which name the data dir; the
   containers' own processes, in pod PID namespaces, are the workload and are left out). Memory as RSS
   (each process's resident set; shared pages counted in every process) and PSS (shared pages divided
   among their sharers: /proc/PID/smaps_rollup); CPU as utime+stime (+ reaped children's) from /proc over
   --window s, the median of --windows windows.

k3s is not installed here: its figures are quoted from DESIGN.md, not measured. Only one real node can run
on a machine (bridge `pyk8s0`, nft table `ip pyk8s`, kubelet port 10250, DNS on port 53): the bench waits
up to --wait-host s for another one to go. At the end it removes the pod, stops the server and removes
what the node leaves on the host (containers, netns, bridge, masquerade rule, nft table, monitors).

    .venv/bin/python bench/footprint.py [--window 30] [--windows 3] [--profile OUT]  # py-spy, idle
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import socket
import statistics
import struct
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

import aiohttp

from bench.podstart import Watcher, bridge_exists, cleanup_node, leftovers
from tests.support.cluster import Cluster, client_ssl, start_cluster

BUDGET = {"memory_mb": 150, "cpu_pct": 2.0, "first_pod_s": 5.0}
K3S = {"memory_mb": 500, "first_pod_s": 50}  # quoted from DESIGN.md; k3s is not installed here
NFT_TABLE = "pyk8s"
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")
PFN_MASK = (1 << 55) - 1
POD = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "first", "namespace": "default"},
       "spec": {"terminationGracePeriodSeconds": 1,
                "containers": [{"name": "c", "image": "busybox", "imagePullPolicy": "IfNotPresent",
                                "command": ["sleep", "3600"]}]}}


# -- the host --------------------------------------------------------------------------------------------

def node_ip() -> str:
    """The default route's source address, where the server's node serves the cluster DNS."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.connect(("192.0.2.1", 9))  # TEST-NET-1: only picks a route, sends nothing
        return str(s.getsockname()[0])


def host_busy() -> list[str]:
    """What another node holds that ours would need."""
    busy = []
    if bridge_exists():
        busy.append("bridge pyk8s0")
    if subprocess.run(["nft", "list", "table", "ip", NFT_TABLE], capture_output=True).returncode == 0:
        busy.append(f"nft table ip {NFT_TABLE}")
    for kind, addr, port in ((socket.SOCK_STREAM, "0.0.0.0", 10250), (socket.SOCK_DGRAM, node_ip(), 53)):
        with socket.socket(socket.AF_INET, kind) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind((addr, port))
            except OSError:
                busy.append(f"port {port}")
    return busy


def wait_host_free(within: float) -> None:
    deadline = time.monotonic() + within
    while busy := host_busy():
        if time.monotonic() > deadline:
            raise RuntimeError(f"another pyk8s node holds the host after {within:.0f}s: {busy}")
        print(f"footprint: waiting for another node to go ({', '.join(busy)})", flush=True)
        time.sleep(10)


def unmount_below(data_dir: Path) -> None:
    """Mounts the node left under its data dir (a pod's volumes when a run failed half-way), deepest first."""
    with open("/proc/self/mounts") as f:
        points = [line.split()[1] for line in f if line.split()[1].startswith(f"{data_dir}/")]
    for point in sorted(points, key=len, reverse=True):
        subprocess.run(["umount", point], capture_output=True)


# -- /proc -----------------------------------------------------------------------------------------------

def _stat(pid: int) -> list[str]:
    raw = Path(f"/proc/{pid}/stat").read_text()
    return raw[raw.rindex(")") + 2:].split()  # fields from the 3rd (state) on; comm may hold spaces


def _cmdline(pid: int) -> str:
    return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()


def tree(root: int, data_dir: Path) -> dict[int, str]:
    """The server's processes: its descendants and the container monitors (which name the data dir), and
    theirs, without processes in another PID namespace (the pods' own)."""
    parents: dict[int, int] = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            with contextlib.suppress(OSError, ValueError, IndexError):
                parents[int(name)] = int(_stat(int(name))[1])
    own_ns = os.readlink(f"/proc/{root}/ns/pid")
    members = {root}
    for pid in parents:
        with contextlib.suppress(OSError):
            if str(data_dir) in _cmdline(pid):
                members.add(pid)
    grew = True
    while grew:
        grew = False
        for pid, ppid in parents.items():
            if ppid in members and pid not in members:
                members.add(pid)
                grew = True
    found = {}
    for pid in members:
        with contextlib.suppress(OSError):
            if os.readlink(f"/proc/{pid}/ns/pid") == own_ns:
                found[pid] = _cmdline(pid)
    return found


def _socket_owner(port: int, proto: str, pids: dict[int, str]) -> int | None:
    """Which of `pids` holds the socket bound to `port` (/proc/net/{tcp,udp}{,6})."""
    inodes = set()
    for table in (f"/proc/net/{proto}", f"/proc/net/{proto}6"):
        with contextlib.suppress(OSError), open(table) as f:
            for line in list(f)[1:]:
                cols = line.split()
                if int(cols[1].rsplit(":", 1)[1], 16) == port:
                    inodes.add(f"socket:[{cols[9]}]")
    for pid in pids:
        with contextlib.suppress(OSError):
            for fd in os.listdir(f"/proc/{pid}/fd"):
                with contextlib.suppress(OSError):
                    if os.readlink(f"/proc/{pid}/fd/{fd}") in inodes:
                        return pid
    return None


def labels(root: int, procs: dict[int, str], data_dir: Path) -> dict[int, str]:
    """A name per process: the kubelet holds port 10250, the components process DNS port 53 (else each is
    known by the name the supervisor gives it on its command line)."""
    named = {root: "server"}
    kubelet = _socket_owner(10250, "tcp", procs)
    components = _socket_owner(53, "udp", procs)
    for pid, cmd in procs.items():
        if pid == root:
            continue
        if pid == kubelet or (kubelet is None and "pyk8s.server.supervisor kubelet" in cmd):
            named[pid] = "kubelet + proxy"
        elif pid == components or (components is None and "pyk8s.server.supervisor components" in cmd):
            named[pid] = "components"
        elif str(data_dir) in cmd:
            named[pid] = "container monitor"
        else:
            named[pid] = cmd.split()[0].rsplit("/", 1)[-1][:24] if cmd else "?"
    return named


def memory(pid: int) -> tuple[int, int, int]:
    """(RSS, PSS, anonymous) in bytes, from /proc/PID/smaps_rollup."""
    fields = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
        key, _, value = line.partition(":")
        fields[key] = int(value.split()[0]) * 1024
    return fields["Rss"], fields["Pss"], fields["Anonymous"]


def resident_pages(pid: int) -> set[int]:
    """The physical frames `pid` has resident (/proc/PID/pagemap; needs root to see frame numbers)."""
    frames: set[int] = set()
    with open(f"/proc/{pid}/maps") as maps, open(f"/proc/{pid}/pagemap", "rb") as pagemap:
        for line in maps:
            lo, hi = (int(x, 16) for x in line.split()[0].split("-"))
            if line.rstrip().endswith("[vsyscall]"):
                continue
            pagemap.seek(lo // PAGE * 8)
            raw = pagemap.read((hi - lo) // PAGE * 8)
            for (entry,) in struct.iter_unpack("<Q", raw):
                if entry >> 63 and entry & PFN_MASK:  # present, and a frame number we may see
                    frames.add(entry & PFN_MASK)
    return frames


def cpu_ticks(pid: int) -> int:
    """utime + stime, and the same of its reaped children (a runc or iptables it ran and waited for)."""
    f = _stat(pid)
    return int(f[11]) + int(f[12]) + int(f[13]) + int(f[14])


def sample(pids: dict[int, str]) -> dict[int, int]:
    out = {}
    for pid in pids:
        with contextlib.suppress(OSError):
            out[pid] = cpu_ticks(pid)
    return out


def cpu_window(root: int, data_dir: Path, seconds: float) -> tuple[float, dict[int, float]]:
    """% of one core the tree used over `seconds` (wall clock), in all and per process."""
    procs = tree(root, data_dir)
    t0, before = time.monotonic(), sample(procs)
    time.sleep(seconds)  # the measurement window itself, not synchronisation
    procs.update(tree(root, data_dir))
    after, t1 = sample(procs), time.monotonic()
    per = {pid: (after[pid] - before.get(pid, 0)) / CLK_TCK / (t1 - t0) * 100 for pid in after}
    return sum(per.values()), per


# -- the cluster -----------------------------------------------------------------------------------------

class FirstSeen(Watcher):
    """A watch on one collection from resourceVersion 0: when each named condition first held (and when
    an object was first deleted). podstart's Watcher, for any collection and condition."""

    def __init__(self, session: aiohttp.ClientSession, path: str, conditions: dict[str, Any]) -> None:
        super().__init__(session)
        self.path, self.conditions = path, conditions
        self.seen: dict[str, float] = {}
        self._task = asyncio.create_task(self._watch())

    async def _watch(self) -> None:
        params = {"watch": "1", "resourceVersion": "0", "allowWatchBookmarks": "false"}
        async with self.session.get(self.path, params=params,
                                    timeout=aiohttp.ClientTimeout(total=None)) as r:
            assert r.status == 200, await r.text()
            async for line in r.content:
                if not line.strip():
                    continue
                now = time.perf_counter()
                ev = json.loads(line)
                for what, check in self.conditions.items():
                    if what not in self.seen and ev["type"] != "DELETED" and check(ev["object"]):
                        self.seen[what] = now
                if ev["type"] == "DELETED":
                    self.seen.setdefault("deleted", now)
                self.changed.set()

    async def first(self, what: str, within: float) -> float:
        await self.until(lambda: what in self.seen, within, what)
        return self.seen[what]


def _ready(node: dict[str, Any]) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (node.get("status") or {}).get("conditions") or [])


async def first_pod(cluster: Cluster, t_start: float) -> dict[str, float]:
    """Node registered → node Ready → pod created → scheduled → Running, in seconds from `t_start`."""
    conn = aiohttp.TCPConnector(ssl=client_ssl(cluster.kubeconfig))
    async with aiohttp.ClientSession(cluster.url, connector=conn) as s:
        nodes = FirstSeen(s, "/api/v1/nodes", {"registered": lambda n: True, "ready": _ready})
        pods = FirstSeen(s, "/api/v1/namespaces/default/pods", {
            "scheduled": lambda p: bool((p.get("spec") or {}).get("nodeName")),
            "running": lambda p: (p.get("status") or {}).get("phase") == "Running"})
        try:
            await nodes.first("ready", 60)
            deadline = time.monotonic() + 30
            while True:  # the default ServiceAccount may still be on its way: a person would retry too
                t_create = time.perf_counter()
                async with s.post("/api/v1/namespaces/default/pods", json=POD) as r:
                    if r.status == 201:
                        break
                    body = await r.text()
                    if "serviceaccount" not in body.lower() or time.monotonic() > deadline:
                        raise RuntimeError(f"pod create: {r.status} {body}")
                await asyncio.sleep(0.05)
            await pods.first("running", 60)
            return {"node registered": nodes.seen["registered"] - t_start,
                    "node Ready": nodes.seen["ready"] - t_start, "pod created": t_create - t_start,
                    "pod scheduled": pods.seen["scheduled"] - t_start,
                    "pod Running": pods.seen["running"] - t_start}
        finally:
            await nodes.stop()
            await pods.stop()


async def delete_pod(cluster: Cluster) -> None:
    conn = aiohttp.TCPConnector(ssl=client_ssl(cluster.kubeconfig))
    async with aiohttp.ClientSession(cluster.url, connector=conn) as s:
        pods = FirstSeen(s, "/api/v1/namespaces/default/pods", {})
        try:
            async with s.delete("/api/v1/namespaces/default/pods/first") as r:
                assert r.status in (200, 202, 404), await r.text()
                if r.status == 404:
                    return
            await pods.first("deleted", 60)
        finally:
            await pods.stop()


def settle(root: int, data_dir: Path, below: float, within: float) -> float:
    """Wait until a 5 s window of the tree's CPU is below `below` %, at most `within` s; returns the wait."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < within:
        total, _ = cpu_window(root, data_dir, 5)
        if total < below:
            break
    return time.monotonic() - t0


def profile(pids: dict[int, str], out: str, seconds: float) -> list[subprocess.Popen[bytes]]:
    py_spy = Path(sys.executable).with_name("py-spy")
    return [subprocess.Popen([str(py_spy), "record", "-p", str(pid), "-f", "raw", "-r", "50", "-d",
                              str(int(seconds)), "--nonblocking", "-o", f"{out}.{name.split()[0]}.{pid}"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            for pid, name in pids.items() if name in ("server", "components", "kubelet + proxy")]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--window", type=float, default=30, help="seconds per idle CPU window")
    ap.add_argument("--windows", type=int, default=3)
    ap.add_argument("--settle-cpu", type=float, default=5.0, help="%% of a core the tree must fall below")
    ap.add_argument("--settle-max", type=float, default=60)
    ap.add_argument("--wait-host", type=float, default=900, help="how long to wait for another node to go")
    ap.add_argument("--log", default="", help="write the server's output (its children's too) to this file")
    ap.add_argument("--keep-for", type=float, default=0, help="hold the idle cluster so long, to inspect it")
    ap.add_argument("--profile", default="",
                    help="py-spy raw output (OUT.<process>.<pid>) of the idle windows")
    args = ap.parse_args()
    if os.geteuid() != 0 or not shutil.which("runc") or not shutil.which("nft") \
            or not os.path.exists("/bin/busybox"):
        print("footprint: needs root, runc, nft and busybox", file=sys.stderr)
        return 2
    wait_host_free(args.wait_host)

    t_start = time.perf_counter()
    cluster = start_cluster(agent=True)
    t_ready = time.perf_counter() - t_start
    data_dir = cluster.data_dir
    root = cluster.process.pid
    left: list[str] = []
    pod_gone = False
    try:
        startup = {"pyk8s: ready": t_ready, **asyncio.run(first_pod(cluster, t_start))}
        settled = settle(root, data_dir, args.settle_cpu, args.settle_max)
        procs = tree(root, data_dir)
        names = labels(root, procs, data_dir)
        spies = profile(names, args.profile, args.window * args.windows) if args.profile else []
        windows = [cpu_window(root, data_dir, args.window) for _ in range(args.windows)]
        for spy in spies:
            spy.wait(60)
        procs = tree(root, data_dir)
        names.update({p: n for p, n in labels(root, procs, data_dir).items() if p not in names})
        mem, frames = {}, set()
        for pid in procs:
            with contextlib.suppress(OSError):
                mem[pid] = memory(pid)
                frames |= resident_pages(pid)
        if args.keep_for:
            print(f"footprint: holding the idle cluster {args.keep_for:.0f} s: {names}", flush=True)
            time.sleep(args.keep_for)  # for a person to inspect it, not synchronisation
        asyncio.run(delete_pod(cluster))
        pod_gone = True
    except BaseException:
        print("pyk8s server's output (last 60 lines):\n" + "".join(cluster.output[-60:]), file=sys.stderr)
        raise
    finally:
        if not pod_gone and cluster.process.poll() is None:
            # After a failure too the kubelet is to unmount the pod's volumes and remove its sandbox.
            with contextlib.suppress(Exception):
                asyncio.run(delete_pod(cluster))
        code = cluster.stop()
        if args.log:
            Path(args.log).write_text("".join(cluster.output))
        cleanup_node(data_dir, pod_network_used=True)
        subprocess.run(["nft", "delete", "table", "ip", NFT_TABLE], capture_output=True)
        unmount_below(data_dir)
        left = leftovers(data_dir, pod_network_used=True) + [b for b in host_busy() if "port" not in b]
        if not left:
            shutil.rmtree(data_dir, ignore_errors=True)
        else:
            print("LEFT BEHIND: " + "; ".join(left), file=sys.stderr)

    cpu_total = statistics.median(w[0] for w in windows)
    rss = sum(m[0] for m in mem.values()) / 2**20
    pss = sum(m[1] for m in mem.values()) / 2**20
    unique = len(frames) * PAGE / 2**20
    print(f"pyk8s server with its own node on SQLite ({os.cpu_count()} CPUs, load average "
          f"{os.getloadavg()[0]:.2f}); k3s figures quoted from DESIGN.md, not measured here")
    print(f"{'start-up, s from starting the server':<40} {'pyk8s':>8} {'k3s':>8}")
    for what, t in startup.items():
        print(f"  {what:<38} {t:>8.2f} {K3S['first_pod_s'] if what == 'pod Running' else '':>8}")
    print(f"idle after {settled:.0f} s settling; CPU: median of {args.windows} windows of "
          f"{args.window:.0f} s")
    print(f"  {'process':<22} {'pid':>8} {'RSS MB':>8} {'PSS MB':>8} {'anon MB':>8} {'CPU %':>7}")
    for pid in sorted(mem, key=lambda p: -mem[p][1]):
        cpu = statistics.median(w[1].get(pid, 0.0) for w in windows)
        r, p, a = (x / 2**20 for x in mem[pid])
        print(f"  {names.get(pid, '?'):<22} {pid:>8} {r:>8.1f} {p:>8.1f} {a:>8.1f} {cpu:>7.2f}")
    anon = sum(m[2] for m in mem.values()) / 2**20
    print(f"  {'total':<22} {'':>8} {rss:>8.1f} {pss:>8.1f} {anon:>8.1f} {cpu_total:>7.2f}   "
          f"(CPU windows: {', '.join(f'{w[0]:.2f}' for w in windows)})")
    print(f"  resident pages of the whole tree, shared ones counted once: {unique:.1f} MB")
    first = startup["pod Running"]
    verdict = {"memory (tree)": (unique, BUDGET["memory_mb"]), "memory (PSS)": (pss, BUDGET["memory_mb"]),
               "memory (RSS sum)": (rss, BUDGET["memory_mb"]),
               "idle CPU %": (cpu_total, BUDGET["cpu_pct"]),
               "first pod Running s": (first, BUDGET["first_pod_s"])}
    print(f"{'budget':<22} {'pyk8s':>8} {'budget':>8} {'k3s':>8}")
    for what, (value, budget) in verdict.items():
        k3s = K3S["memory_mb"] if what.startswith("memory") else K3S["first_pod_s"] if "pod" in what else ""
        print(f"  {what:<20} {value:>8.2f} {'<= ' + str(budget):>8} {k3s!s:>8}  "
              f"{'ok' if value <= budget else 'OVER'}")
    if code != 0:
        print(f"pyk8s server exited with {code}:\n" + "".join(cluster.output[-30:]))
    out = {"ready_s": round(t_ready, 3), "node_ready_s": round(startup["node Ready"], 3),
           "first_pod_running_s": round(first, 3), "idle_tree_mb": round(unique, 1),
           "idle_rss_mb": round(rss, 1), "idle_pss_mb": round(pss, 1),
           "idle_cpu_pct": round(cpu_total, 2), "cpu_windows_pct": [round(w[0], 2) for w in windows],
           "window_s": args.window, "processes": len(mem), "settle_s": round(settled, 1),
           "k3s_quoted": K3S, "budget": BUDGET, "exit_code": code, "leftovers": left,
           "per_process": {f"{names.get(p, '?')}:{p}": {"rss_mb": round(mem[p][0] / 2**20, 1),
                                                        "pss_mb": round(mem[p][1] / 2**20, 1)} for p in mem}}
    print(json.dumps(out))
    return 1 if left or code != 0 else 0


if __name__ == "__main__":
    sys.exit(main())
