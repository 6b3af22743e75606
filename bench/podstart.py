"""Pod start benchmark on one real node: `pyk8s server --disable-agent` plus a real `pyk8s agent` (runc, the
seed busybox image, `imagePullPolicy: IfNotPresent`, so no registry is ever contacted).

For each network mode (hostNetwork pods, and pods on the pod network through CNI: the kubelet's own
bridge `pyk8s0` and masquerade chain, removed at the end): PODS pods created at once over HTTPS, each
timed from its create request to the moment a watch (started before the creates) sees it Running; then
one pod alone, created → Running → deleted → gone, repeated. In the same run, for scale, `runc run -d`
of a busybox container without pyk8s (bundle from /bin/busybox), repeated. Prints a table; the last line
is one JSON object (`p50_s`, `p99_s`, `single_p50_s` are those of the first mode measured).

    .venv/bin/python bench/podstart.py [--pods 30] [--single 10] [--network both|host|pod]
                                       [--profile OUT]   # py-spy record of the agent during the burst
                                       [--acct]          # CPU of the processes that ended, by name

Each burst also reports, per step, the median time after create at which its pods finished the step (from
the files the step writes, and the watch), and the CPU per pod of the server, the agent (and the processes
it waited for: CNI plugins), the container monitors (with their `runc run`) and the container cgroups.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

import aiohttp

from bench.stats import pct
from tests.support.cluster import Agent, Cluster, client_ssl, start_agent, start_cluster, wait_for

NS = "default"
NFT_TABLE = "pyk8s"  # the service proxy's
PODS = f"/api/v1/namespaces/{NS}/pods"


PROFILE_RATE = 200  # --profile-rate: py-spy samples per second
PROFILE_GIL = False  # --profile-gil: only the thread holding the GIL (Python's own CPU; no syscalls)
SA_TOKEN = True  # --no-sa-token: pods without the projected service-account token volume


def pod(name: str, host_network: bool) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": {"app": "podstart"}},
            "spec": {"hostNetwork": host_network, "terminationGracePeriodSeconds": 1,
                     "automountServiceAccountToken": SA_TOKEN,
                     "containers": [{"name": "c", "image": "busybox", "imagePullPolicy": "IfNotPresent",
                                     "command": ["sleep", "3600"]}]}}


class Watcher:
    """One watch on the namespace's pods: when each pod was first seen Running, and when it went."""

    def __init__(self, session: aiohttp.ClientSession) -> None:
        self.session = session
        self.bound: dict[str, float] = {}  # first seen with a nodeName (scheduled)
        self.running: dict[str, float] = {}
        self.status: dict[str, float] = {}  # first seen with a status the kubelet wrote
        self.changes: dict[str, int] = {}  # watch events per pod until it is Running (create, bind, status …)
        self.gone: dict[str, float] = {}
        self.changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        async with self.session.get(PODS) as r:
            rv = (await r.json())["metadata"]["resourceVersion"]
        ready = asyncio.Event()
        self._task = asyncio.create_task(self._run(rv, ready))
        await ready.wait()

    async def _run(self, rv: str, ready: asyncio.Event) -> None:
        params = {"watch": "1", "resourceVersion": rv, "allowWatchBookmarks": "false"}
        async with self.session.get(PODS, params=params, timeout=aiohttp.ClientTimeout(total=None)) as r:
            assert r.status == 200, await r.text()
            ready.set()
            async for line in r.content:
                if not line.strip():
                    continue
                now = time.perf_counter()
                ev = json.loads(line)
                obj = ev["object"]
                name = obj["metadata"]["name"]
                if name not in self.running:
                    self.changes[name] = self.changes.get(name, 0) + 1
                if (obj.get("spec") or {}).get("nodeName"):
                    self.bound.setdefault(name, now)
                if ev["type"] == "DELETED":
                    self.gone.setdefault(name, now)
                else:
                    if obj.get("status", {}).get("containerStatuses"):
                        self.status.setdefault(name, now)
                    if obj.get("status", {}).get("phase") == "Running":
                        self.running.setdefault(name, now)
                self.changed.set()

    async def until(self, check: Any, within: float, what: str) -> None:
        deadline = time.monotonic() + within
        while not check():
            if self._task is not None and self._task.done():
                self._task.result()
                raise RuntimeError("the watch ended")
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"timed out after {within:.0f}s waiting for {what}")
            self.changed.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self.changed.wait(), min(left, 1.0))

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)


# -- where a burst pod's time and the node's CPU go ------------------------------------------------------

HZ = os.sysconf("SC_CLK_TCK")
STEPS = ("bound", "volumes_begin", "sandbox_begin", "netns", "cni_done", "sandbox_ready", "volumes_ready",
         "container_create", "bundle", "started", "status_seen", "running_seen")


def _mtime(path: Path) -> float | None:
    try:
        return path.lstat().st_mtime
    except OSError:
        return None


def _proc_cpu(pid: int) -> tuple[float, float]:
    """(own CPU s, waited-for children's CPU s) of a process; zeros if it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0, 0.0
    return (int(fields[11]) + int(fields[12])) / HZ, (int(fields[13]) + int(fields[14])) / HZ


def _system_busy() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine so far."""
    values = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]
    return (sum(values) - idle) / HZ, sum(values) / HZ


def disk_timeline(data_dir: Path, names: list[str]) -> tuple[dict[str, dict[str, float]], dict[str, float]]:
    """When each pod's runtime, network and volume steps finished, from the files each step writes (wall
    clock), and the CPU of its container monitor (with the `runc run` it waited for) and of its container
    cgroup (runc init and the container's process)."""
    runtime, network = data_dir / "agent" / "runtime", data_dir / "agent" / "network"
    volumes = data_dir / "agent" / "volumes" / "pods"
    wanted = set(names)
    out: dict[str, dict[str, float]] = {}
    by_sandbox: dict[str, str] = {}
    cpu = {"monitor_s": 0.0, "runc_run_s": 0.0, "container_cgroup_s": 0.0}
    for sdir in (runtime / "sandboxes").iterdir():
        rec = json.loads((sdir / "sandbox.json").read_text())
        name = rec["config"]["name"]
        if name not in wanted:
            continue
        by_sandbox[rec["id"]] = name
        steps = out.setdefault(name, {})
        for step, path in (("sandbox_begin", sdir / "hostname"), ("sandbox_ready", sdir / "sandbox.json"),
                           ("netns", network / "netns" / rec["id"]),
                           ("cni_done", network / "results" / f"{rec['id']}.json")):
            t = _mtime(path)
            if t is not None:
                steps[step] = t
        # A plugin's directory changes only when a volume directory is made in it: the volumes' first step.
        for plugin in (volumes / rec["config"]["pod_uid"] / "volumes").glob("*"):
            t = _mtime(plugin)
            if t is not None:
                steps["volumes_begin"] = min(t, steps.get("volumes_begin", t))
        for data in (volumes / rec["config"]["pod_uid"] / "volumes").glob("*/*/..data"):
            t = _mtime(data)
            if t is not None:
                steps["volumes_ready"] = max(t, steps.get("volumes_ready", 0.0))
        steps["_cgroup"] = rec["config"].get("cgroup_parent") or ""  # type: ignore[assignment]
    for cdir in (runtime / "containers").iterdir():
        rec = json.loads((cdir / "container.json").read_text())
        name = by_sandbox.get(rec["sandbox_id"])
        if name is None:
            continue
        steps = out[name]
        for step, file in (("container_create", "container.json"), ("bundle", "config.json"),
                           ("started", "started.json")):
            t = _mtime(cdir / file)
            if t is not None:
                steps[step] = t
        started = json.loads((cdir / "started.json").read_text())
        own, children = _proc_cpu(started["monitor_pid"])
        cpu["monitor_s"] += own
        cpu["runc_run_s"] += children
        cgroup = str(steps["_cgroup"]).strip("/")
        usage = Path("/sys/fs/cgroup/cpuacct") / cgroup / rec["id"] / "cpuacct.usage"
        with contextlib.suppress(OSError, ValueError):
            cpu["container_cgroup_s"] += int(usage.read_text()) / 1e9
    for steps in out.values():
        steps.pop("_cgroup", None)
    return out, cpu


class Accounting:
    """BSD process accounting (acct(2)) over the burst: the CPU of every process that ended meanwhile (runc,
    CNI plugins, …), by command name. Machine-wide: other users' processes show up under their names."""

    def __init__(self, path: Path) -> None:
        import ctypes
        self.path = path
        self.libc = ctypes.CDLL(None, use_errno=True)
        path.write_bytes(b"")

    def __enter__(self) -> Accounting:
        if self.libc.acct(str(self.path).encode()) != 0:
            raise OSError("acct(2) failed")
        return self

    def __exit__(self, *exc: object) -> None:
        self.libc.acct(None)

    @staticmethod
    def _comp(v: int) -> float:  # comp_t: 13-bit mantissa, 3-bit base-8 exponent
        return float((v & 0x1FFF) << (3 * (v >> 13)))

    def by_command(self) -> dict[str, tuple[int, float]]:
        """command → (processes, CPU seconds)."""
        import struct
        data = self.path.read_bytes()
        out: dict[str, tuple[int, float]] = {}
        for off in range(0, len(data) - 63, 64):
            rec = data[off:off + 64]
            if rec[1] != 3:  # acct_v3 only
                continue
            utime, stime = struct.unpack_from("<HH", rec, 32)
            comm = rec[48:64].split(b"\0", 1)[0].decode(errors="replace")
            n, t = out.get(comm, (0, 0.0))
            out[comm] = (n + 1, t + (self._comp(utime) + self._comp(stime)) / 100)  # AHZ = 100
        return out


class Observer:
    """The burst's timeline per pod and the CPU per process, for `measure` (start → finish(names, starts))."""

    def __init__(self, data_dir: Path, pids: dict[str, int], acct: bool, profile: Any) -> None:
        self.data_dir, self.pids, self.acct_on, self.profile = data_dir, pids, acct, profile
        self.result: dict[str, Any] = {}

    def start(self) -> None:
        self.stop_profile = self.profile() if self.profile else None
        self.acct = None
        if self.acct_on:
            self.acct = Accounting(Path(tempfile.mkdtemp(prefix="podstart-acct-")) / "acct")
        if self.acct is not None:
            self.acct.__enter__()
        self.cpu0 = {what: _proc_cpu(pid) for what, pid in self.pids.items()}
        self.sys0 = _system_busy()

    def finish(self, watcher: Watcher, names: list[str], starts: list[float]) -> None:
        sys1 = _system_busy()
        cpu1 = {what: _proc_cpu(pid) for what, pid in self.pids.items()}
        if self.acct is not None:
            self.acct.__exit__()
        if self.stop_profile:
            self.stop_profile()
        n = len(names)
        offset = time.time() - time.perf_counter()  # watch times are perf_counter, files wall clock
        steps, monitors = disk_timeline(self.data_dir, names)
        timeline: dict[str, list[float]] = {s: [] for s in STEPS}
        for name, t0 in zip(names, starts, strict=True):
            seen = dict(steps.get(name, {}))
            for step, d in (("bound", watcher.bound), ("status_seen", watcher.status),
                            ("running_seen", watcher.running)):
                if name in d:
                    seen[step] = d[name] + offset
            for step in STEPS:
                if step in seen:
                    timeline[step].append(seen[step] - (t0 + offset))
        cpu: dict[str, float] = {}
        for what in self.pids:
            cpu[f"{what}_s"] = cpu1[what][0] - self.cpu0[what][0]
            cpu[f"{what}_children_s"] = cpu1[what][1] - self.cpu0[what][1]
        cpu.update(monitors)
        busy, total = sys1[0] - self.sys0[0], sys1[1] - self.sys0[1]
        self.result = {
            "timeline_p50_s": {s: round(statistics.median(v), 3) for s, v in timeline.items() if v},
            "cpu_per_pod_ms": {k: round(1000 * v / n, 1) for k, v in cpu.items()},
            "watch_events_per_pod": statistics.median(watcher.changes.get(x, 0) for x in names),
            "machine": {"busy_cpu_s": round(busy, 2),
                        "cpus_busy": round(busy / total * (os.cpu_count() or 1), 2) if total else 0.0},
        }
        if self.acct is not None:
            rows = sorted(self.acct.by_command().items(), key=lambda kv: -kv[1][1])
            self.result["exited_processes"] = {c: {"n": k, "cpu_ms_per_pod": round(1000 * t / n, 1)}
                                               for c, (k, t) in rows[:15]}
            shutil.rmtree(self.acct.path.parent, ignore_errors=True)


async def create(s: aiohttp.ClientSession, body: dict[str, Any]) -> float:
    t0 = time.perf_counter()
    async with s.post(PODS, json=body) as r:
        assert r.status == 201, (r.status, await r.text())
    return t0


async def delete(s: aiohttp.ClientSession, name: str) -> None:
    async with s.delete(f"{PODS}/{name}") as r:
        assert r.status in (200, 202, 404), (r.status, await r.text())


async def measure(url: str, kubeconfig: Path, n: int, singles: int, host_network: bool,
                  observer: Observer | None = None) -> dict[str, Any]:
    conn = aiohttp.TCPConnector(ssl=client_ssl(kubeconfig), limit=0)
    tag = "h" if host_network else "p"
    async with aiohttp.ClientSession(url, connector=conn) as s:
        w = Watcher(s)
        await w.start()
        # One warm connection per concurrent create: the burst times pod start, not the client's TLS.
        async def warm() -> None:
            async with s.get(PODS, params={"limit": "1"}) as r:
                await r.read()
        await asyncio.gather(*(warm() for _ in range(n)))
        try:
            names = [f"burst-{tag}-{i}" for i in range(n)]
            if observer is not None:
                observer.start()
            starts = await asyncio.gather(*(create(s, pod(x, host_network)) for x in names))
            await w.until(lambda: all(x in w.running for x in names), 120, f"{n} pods Running")
            if observer is not None:  # before the deletes: the pods' files tell when each step ended
                observer.finish(w, names, starts)
            burst = [w.running[x] - t0 for x, t0 in zip(names, starts, strict=True)]
            bound = [w.bound[x] - t0 for x, t0 in zip(names, starts, strict=True)]
            await asyncio.gather(*(delete(s, x) for x in names))
            await w.until(lambda: all(x in w.gone for x in names), 120, f"{n} pods gone")

            single: list[float] = []
            for i in range(singles):
                name = f"single-{tag}-{i}"
                t0 = await create(s, pod(name, host_network))
                await w.until(lambda n=name: n in w.running, 60, f"{name} Running")
                single.append(w.running[name] - t0)
                await delete(s, name)
                await w.until(lambda n=name: n in w.gone, 60, f"{name} gone")
        finally:
            await w.stop()
    return {"burst": burst, "bound": bound, "single": single,
            "observed": observer.result if observer is not None else {}}


# -- bare runc -------------------------------------------------------------------------------------------

def runc_baseline(repeats: int) -> dict[str, float]:
    """`runc run -d` of busybox `sleep` (rootfs: /bin/busybox) and its `runc delete -f`, medians."""
    tmp = Path(tempfile.mkdtemp(prefix="podstart-runc-"))
    root, bundle = tmp / "root", tmp / "bundle"
    (bundle / "rootfs" / "bin").mkdir(parents=True)
    shutil.copy2("/bin/busybox", bundle / "rootfs" / "bin" / "busybox")
    for applet in ("sh", "sleep"):
        (bundle / "rootfs" / "bin" / applet).symlink_to("busybox")
    subprocess.run(["runc", "spec", "--bundle", str(bundle)], check=True)
    spec = json.loads((bundle / "config.json").read_text())
    spec["process"]["terminal"] = False
    spec["process"]["args"] = ["/bin/sleep", "3600"]
    (bundle / "config.json").write_text(json.dumps(spec))
    runs, deletes = [], []
    try:
        for i in range(repeats):
            cid = f"podstart-{secrets.token_hex(4)}-{i}"
            t0 = time.perf_counter()
            subprocess.run(["runc", "--root", str(root), "run", "-d", "--bundle", str(bundle), cid],
                           check=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)  # a pipe would stay open in the container
            t1 = time.perf_counter()
            subprocess.run(["runc", "--root", str(root), "delete", "-f", cid], check=True,
                           capture_output=True)
            deletes.append(time.perf_counter() - t1)
            runs.append(t1 - t0)
    finally:
        listing = subprocess.run(["runc", "--root", str(root), "list", "-q"], capture_output=True, text=True)
        for cid in listing.stdout.split():
            subprocess.run(["runc", "--root", str(root), "delete", "-f", cid], capture_output=True)
        shutil.rmtree(tmp, ignore_errors=True)
    return {"run": statistics.median(runs), "delete": statistics.median(deletes)}


# -- the node --------------------------------------------------------------------------------------------

def start_node(cluster: Cluster, data_dir: Path, name: str) -> Agent:
    agent = start_agent(cluster, data_dir, "--node-name", name, "--node-ip", "127.0.0.1",
                        "--kubelet-port", "0")
    wait_for(lambda: "pyk8s agent: ready" in agent.log.read_text() or agent.process.poll() is not None,
             within=60, what="the agent ready")
    if agent.process.poll() is not None:
        raise RuntimeError("the agent ended:\n" + agent.log.read_text()[-3000:])
    env = dict(os.environ, KUBECONFIG=str(cluster.kubeconfig))

    def node_ready() -> bool:
        out = subprocess.run(["kubectl", "get", "node", name, "-o", "json"], capture_output=True, text=True,
                             env=env)
        if out.returncode != 0:
            return False
        node = json.loads(out.stdout)
        ready = any(c["type"] == "Ready" and c["status"] == "True"
                    for c in node.get("status", {}).get("conditions", []))
        return ready and bool(node["spec"].get("podCIDR"))
    wait_for(node_ready, within=60, what="the node Ready with a podCIDR")
    return agent


def cleanup_node(data_dir: Path, pod_network_used: bool) -> None:
    """Whatever the kubelet left: sandboxes and containers, then the pod network (bridge, masquerade)."""
    from pyk8s.kubelet.images import ImageStore
    from pyk8s.kubelet.network import PodNetwork
    from pyk8s.kubelet.runtime import RuncRuntime

    runtime_dir = data_dir / "agent" / "runtime"
    network = PodNetwork(str(data_dir / "agent" / "network"))

    async def clean() -> None:
        rt = RuncRuntime(str(runtime_dir), ImageStore.for_data_dir(data_dir), network)
        for sb in await rt.list_pod_sandboxes():
            await rt.stop_pod_sandbox(sb.id)
            for c in await rt.list_containers(sb.id):
                await rt.remove_container(c.id)
            await rt.remove_pod_sandbox(sb.id)

    if runtime_dir.is_dir():
        asyncio.run(clean())
    if pod_network_used:
        network.cleanup_all()  # netns, masquerade chain, bridge pyk8s0
    # Volumes of pods a failed run never deleted (the kubelet unmounts them only when a pod goes).
    with open("/proc/mounts") as f:
        points = [line.split()[1] for line in f if line.split()[1].startswith(f"{data_dir}/")]
    for point in sorted(points, reverse=True):  # deepest first
        subprocess.run(["umount", point], capture_output=True)
    # The agent's service proxy leaves its table (its rules outlive a restart, as kube-proxy's do).
    subprocess.run(["nft", "delete", "table", "ip", NFT_TABLE], capture_output=True)
    # The runtime's monitor server outlives the kubelet by design (containers survive a kubelet restart);
    # with no containers left it is ours to end.
    procs = our_processes(data_dir)
    for pid in procs:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 5
    while procs and time.monotonic() < deadline:
        procs = {p: c for p, c in procs.items() if Path(f"/proc/{p}").exists()}
        time.sleep(0.05)


def bridge_exists() -> bool:
    return subprocess.run(["ip", "link", "show", "pyk8s0"], capture_output=True).returncode == 0


def our_processes(data_dir: Path) -> dict[int, str]:
    """Processes whose command line names the node's data dir (the runtime's container monitors)."""
    found = {}
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            with contextlib.suppress(OSError):
                cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                if str(data_dir) in cmd:
                    found[int(pid)] = cmd
    return found


def leftovers(data_dir: Path, pod_network_used: bool) -> list[str]:
    """What the bench would leave on the machine: runc containers, netns, mounts, processes."""
    found = []
    for root in ("runc-root", "runsc-root"):
        state = data_dir / "agent" / "runtime" / root
        if state.is_dir():
            out = subprocess.run(["runc", "--root", str(state), "list", "-q"], capture_output=True, text=True)
            found += [f"runc container {c}" for c in out.stdout.split()]
    records = data_dir / "agent" / "network" / "netns"
    if records.is_dir():
        found += [f"netns record {x}" for x in os.listdir(records)]
    with open("/proc/mounts") as f:
        found += [f"mount {line.split()[1]}" for line in f if str(data_dir) in line]
    found += [f"process {pid}: {cmd[:120]}" for pid, cmd in our_processes(data_dir).items()]
    if pod_network_used and bridge_exists():
        found.append("bridge pyk8s0")
    if subprocess.run(["nft", "list", "table", "ip", NFT_TABLE], capture_output=True).returncode == 0:
        found.append(f"nft table ip {NFT_TABLE}")
    return found


def perf_recorder(out: str) -> Any:
    """`perf record` of the whole machine (kernel and user, all processes) during the burst; Python frames
    are named where the interpreter has perf support on (PYTHONPERFSUPPORT=1 in the agent's environment)."""
    def start() -> Any:
        proc = subprocess.Popen(["perf", "record", "-F", "499", "-a", "-g", "-o", out],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.5)

        def stop() -> None:
            proc.send_signal(signal.SIGINT)
            proc.wait(60)
        return stop
    return start


def profiler(targets: dict[str, int], out: str | None) -> Any:
    """Start py-spy on the agent and the server for the burst (OUT.agent, OUT.server); returns the
    function that stops it."""
    if not out:
        return None
    py_spy = Path(sys.executable).with_name("py-spy")

    def start() -> Any:
        procs = [subprocess.Popen([str(py_spy), "record", "-p", str(pid), "-f", "raw",
                                   "-r", str(PROFILE_RATE), "-o", f"{out}.{what}", "--nonblocking",
                                   *(["--gil"] if PROFILE_GIL else [])],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                 for what, pid in targets.items()]
        time.sleep(0.5)  # py-spy attaches before the burst starts

        def stop() -> None:
            for proc in procs:
                proc.send_signal(signal.SIGINT)
            for proc in procs:
                proc.wait(30)
        return stop
    return start


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pods", type=int, default=30)
    ap.add_argument("--single", type=int, default=10)
    ap.add_argument("--runc", type=int, default=10)
    ap.add_argument("--network", choices=("both", "host", "pod"), default="both")
    ap.add_argument("--no-sa-token", action="store_true",
                    help="pods with automountServiceAccountToken: false (no TokenRequest per pod)")
    ap.add_argument("--acct", action="store_true",
                    help="process accounting (acct(2)) during each burst: CPU of the processes that ended, "
                         "by name")
    ap.add_argument("--perf", default="", help="perf record -a -g during the (first) burst into this file")
    ap.add_argument("--profile", default="", help="py-spy raw output for the agent during the (first) burst")
    ap.add_argument("--profile-rate", type=int, default=200, help="py-spy samples per second")
    ap.add_argument("--profile-gil", action="store_true",
                    help="py-spy samples only the GIL holder: Python's own CPU (a thread that made a syscall "
                         "and was preempted after waking another process is otherwise sampled as on-CPU)")
    args = ap.parse_args()
    global SA_TOKEN, PROFILE_RATE, PROFILE_GIL
    PROFILE_RATE, PROFILE_GIL = args.profile_rate, args.profile_gil
    SA_TOKEN = not args.no_sa_token
    if os.geteuid() != 0 or not shutil.which("runc"):
        print("podstart: needs root and runc", file=sys.stderr)
        return 2

    modes = {"both": [True, False], "host": [True], "pod": [False]}[args.network]
    if subprocess.run(["nft", "list", "table", "ip", NFT_TABLE], capture_output=True).returncode == 0:
        # Another node's service proxy (or one a crash left): ours would share its table, and remove it.
        print(f"podstart: nft table ip {NFT_TABLE} exists (another node is up, or a crash left it)",
              file=sys.stderr)
        return 2
    if False in modes and bridge_exists():
        # Someone else's kubelet owns the bridge: sharing it (and removing it at the end) would break theirs.
        print("podstart: bridge pyk8s0 exists already (another kubelet): pod network mode skipped")
        modes = [m for m in modes if m]
        if not modes:
            return 2
    runc = runc_baseline(args.runc)
    cluster = start_cluster()
    data_dir = cluster.data_dir / "node"
    node = f"podstart-{secrets.token_hex(3)}"
    results: dict[str, dict[str, Any]] = {}
    agent = None
    left: list[str] = []
    try:
        agent = start_node(cluster, data_dir, node)
        for host_network in modes:
            label = "hostNetwork" if host_network else "pod network"
            targets = {"agent": agent.process.pid, "server": cluster.process.pid}
            prof = profiler(targets, args.profile if not results else None)
            if args.perf and not results:
                prof = perf_recorder(args.perf)
            observer = Observer(data_dir, targets, args.acct, prof)
            results[label] = asyncio.run(measure(cluster.url, cluster.kubeconfig, args.pods, args.single,
                                                 host_network, observer))
    finally:
        if agent is not None:
            agent.stop()
        cluster.stop()
        cleanup_node(data_dir, pod_network_used=False in modes)
        left = leftovers(data_dir, False in modes)
        if not left:
            shutil.rmtree(cluster.data_dir, ignore_errors=True)

    print(f"pod start on one node ({os.cpu_count()} CPUs), busybox via runc, scheduled by pyk8s, "
          f"{'with' if SA_TOKEN else 'WITHOUT'} the service-account token volume")
    print(f"{'mode':<12} {'pods':>5} {'p50 s':>8} {'p99 s':>8} {'max s':>8} {'single p50':>11} "
          f"{'single p99':>11}")
    summary: dict[str, Any] = {}
    for label, r in results.items():
        b, s1 = r["burst"], r["single"]
        row = {"pods": len(b), "p50_s": round(pct(b, 0.5), 3), "p99_s": round(pct(b, 0.99), 3),
               "max_s": round(max(b), 3), "scheduled_p50_s": round(pct(r["bound"], 0.5), 3),
               "scheduled_max_s": round(max(r["bound"]), 3),
               "single_p50_s": round(statistics.median(s1), 3) if s1 else None,
               "single_p99_s": round(pct(s1, 0.99), 3) if s1 else None}
        print(f"{label:<12} {row['pods']:>5} {row['p50_s']:>8} {row['p99_s']:>8} {row['max_s']:>8} "
              f"{row['single_p50_s']!s:>11} {row['single_p99_s']!s:>11}   (scheduled: p50 "
              f"{row['scheduled_p50_s']} s, max {row['scheduled_max_s']} s)")
        summary[label] = row
        observed = r["observed"]
        if observed:
            tl = observed["timeline_p50_s"]
            print("   burst timeline, p50 s after create: " + ", ".join(f"{k} {v}" for k, v in tl.items()))
            print("   CPU ms per pod: " + ", ".join(f"{k.removesuffix('_s')} {v}"
                                                 for k, v in observed["cpu_per_pod_ms"].items())
                  + f"; machine busy {observed['machine']['cpus_busy']} of {os.cpu_count()} CPUs; "
                  f"watch events per pod until Running {observed['watch_events_per_pod']}")
            if "exited_processes" in observed:
                print("   ended processes, CPU ms per pod: " + ", ".join(
                    f"{c} {v['cpu_ms_per_pod']} ({v['n']})" for c, v in observed["exited_processes"].items()))
            row["observed"] = observed
    print(f"bare runc run -d: {runc['run']:.3f} s, runc delete -f: {runc['delete']:.3f} s "
          f"(medians of {args.runc})")
    if left:
        print("LEFT BEHIND: " + "; ".join(left))
    first = next(iter(summary.values()))
    out = {**first, "mode": next(iter(summary)), "sa_token": SA_TOKEN, "runc_run_s": round(runc["run"], 4),
           "runc_delete_s": round(runc["delete"], 4), "modes": summary, "leftovers": left}
    print(json.dumps(out))
    return 1 if left else 0


if __name__ == "__main__":
    sys.exit(main())
