"""RuncRuntime: cri.RuntimeService over runc (and runsc for the `runsc` handler).

All state lives under `state_dir` (sandboxes/<id>/, containers/<id>/), so a new runtime object after a
kubelet restart finds every sandbox and container again; containers run under their own monitor
process (monitor.py) and never depend on the kubelet being alive. Each sandbox and container directory
is a small tmpfs of its own, as containerd keeps its task state in /run: a pod start writes some twenty
small files, and on a busy ext4 every new inode costs a scan past the recently deleted ones (up to ms
each, more than the rest of the kubelet's work for the pod). Only a container's writable layer
(rw/<id>/upper and work, for overlayfs) is on disk. Like /run, the tmpfs do not survive a reboot, nor
do the containers.

A sandbox holds no process: its IPC and UTS namespaces (hostname set) are created by one `unshare` and
kept alive by bind mounts under the sandbox directory, as the network namespace is by the network
plugin (or by us, with only loopback, when there is no PodNetwork). Containers join them by path.

runsc (handler `runsc`): the pod gets one gVisor sandbox whose root container is a pause process
(busybox sleep); the pod's containers join it as runsc subcontainers through the CRI annotations
(io.kubernetes.cri.container-type / sandbox-id), sharing one gVisor kernel. Without /bin/busybox each
container is a gVisor sandbox of its own in the pod's network namespace. runsc of this Debian release
cannot use its own netstack in a pod's namespace on this kernel (it takes every namespace for the root
one), so it is started inside the pod's namespace with --network=host (gVisor's hostinet there).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import glob
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Protocol, TypeVar

import orjson

from pyk8s.kubelet import cri
from pyk8s.kubelet.runtime import nsutil, spec
from pyk8s.kubelet.runtime.securepath import UnsafePathError, check_working_dir
from pyk8s.kubelet.runtime.streams import AttachStream, ExecStream, stream_pair

MONITOR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "monitor.py")
PAUSE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "pause.py")
CGROUP_ROOT = "/sys/fs/cgroup"
PAUSE_BINARY = "/bin/busybox"  # static: the gVisor pod sandbox's pause process
T = TypeVar("T")


class PodNetwork(Protocol):
    """What the runtime needs of `pyk8s.kubelet.network.PodNetwork`."""

    def netns_path(self, sandbox_id: str) -> str: ...

    def create_netns_sync(self, sandbox_id: str) -> str: ...

    async def setup(self, sandbox_id: str, netns_path: str, port_mappings: list[cri.PortMapping]) -> str: ...

    async def teardown(self, sandbox_id: str, netns_path: str,
                       port_mappings: list[cri.PortMapping]) -> None: ...

    async def delete_netns(self, netns_path: str) -> None: ...


class NotFoundError(KeyError):
    """No sandbox or container with that id."""


class ContainerStartError(RuntimeError):
    """runc could not start the container (bad binary, missing file …): runc's message. The container
    is then exited with reason ContainerCannotRun and exit code 128."""


def _write_json(path: str, obj: Any) -> None:
    tmp = f"{path}.{secrets.token_hex(4)}.tmp"  # concurrent writers never share a temporary file
    with open(tmp, "wb") as f:  # one write: json.dump would write each small piece of the OCI spec
        f.write(orjson.dumps(obj))
    os.replace(tmp, path)


def _write_monitor_conf(path: str, conf: dict[str, list[str]]) -> None:
    """The monitor's settings in a format it reads without importing json (see monitor.read_config)."""
    lines = []
    for key, values in conf.items():
        if any("\t" in v or "\n" in v for v in values):
            raise ValueError(f"{key}: tabs and newlines are not allowed: {values!r}")
        lines.append("\t".join([key, *values]))
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def _read_json(path: str) -> Any:
    try:
        with open(path, "rb") as f:
            return orjson.loads(f.read())
    except (OSError, ValueError):
        return None


async def _off_loop(fn: Callable[..., T], *args: Any) -> T:
    """fn(*args) in a thread, so the event loop serves other pods meanwhile. A thread cannot be stopped:
    when cancelled, its work is let finish before the caller's cleanup runs."""
    task = asyncio.ensure_future(asyncio.to_thread(fn, *args))
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        await asyncio.wait([task])
        raise


async def _run(*cmd: str, check: bool = True) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(*cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                                stderr=subprocess.STDOUT)
    out, _ = await proc.communicate()
    text = out.decode(errors="replace").strip()
    if check and proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:4])}…: {text}")
    return proc.returncode or 0, text


def _last_error(log_path: str) -> str:
    """The last error runc/runsc wrote to its JSON log."""
    message = ""
    with contextlib.suppress(OSError), open(log_path) as f:
        for line in f:
            with contextlib.suppress(ValueError):
                entry = json.loads(line)
                if entry.get("level") in ("error", "fatal"):
                    message = entry.get("msg", "")
    return message or "no message"


def _stat_fields(pid: int) -> list[str] | None:
    """The fields of /proc/<pid>/stat after the command name (the state first); None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None


def _start_ticks(pid: int) -> int | None:
    """When the process started (clock ticks after boot): with the pid, it names one process for good."""
    fields = _stat_fields(pid)
    try:
        return None if fields is None else int(fields[19])
    except (ValueError, IndexError):
        return None


def _process_of(pid_file: str) -> list[int] | None:
    """[pid, start ticks] of the process a pid file names, if it runs."""
    try:
        with open(pid_file) as f:
            pid = int(f.read().strip())
    except (OSError, ValueError):
        return None
    ticks = _start_ticks(pid)
    return None if ticks is None else [pid, ticks]


def _remove_dir(path: str) -> None:
    """A sandbox's or container's directory and its tmpfs (a directory of an older layout has none)."""
    if os.path.ismount(path):
        nsutil.unmount(path)
    shutil.rmtree(path, ignore_errors=True)


def _alive(pid: int, start_ticks: int | None = None) -> bool:
    """The process exists, is not a zombie, and (if given) started at that time: not a reused pid."""
    fields = _stat_fields(pid)
    if fields is None:
        return False
    return fields[0] != "Z" and (start_ticks is None or int(fields[19]) == start_ticks)


async def _wait_exit(pid: int, seconds: float | None) -> bool:
    """Wait for a process that is not our child to end (pidfd: no polling). True if it did."""
    try:
        fd = os.pidfd_open(pid) if pid > 0 else -1
    except ProcessLookupError:
        return True
    if fd < 0:
        return True
    loop = asyncio.get_running_loop()
    done: asyncio.Future[None] = loop.create_future()

    def exited() -> None:
        if not done.done():
            done.set_result(None)

    loop.add_reader(fd, exited)
    try:
        await asyncio.wait_for(done, seconds)
        return True
    except TimeoutError:
        return False
    finally:
        loop.remove_reader(fd)
        os.close(fd)


class RuncRuntime:
    def __init__(self, state_dir: str, images: cri.ImageService, network: PodNetwork | None, *,
                 runc: str = "runc", runsc: str = "runsc") -> None:
        self.state_dir = os.path.abspath(state_dir)
        self.images = images
        self.network = network
        self.runc = shutil.which(runc) or runc
        self.runsc = shutil.which(runsc) or ""
        self.sandbox_root = os.path.join(self.state_dir, "sandboxes")
        self.container_root = os.path.join(self.state_dir, "containers")
        self.rw_root = os.path.join(self.state_dir, "rw")  # containers' writable layers, on disk
        for d in (self.sandbox_root, self.container_root, self.rw_root):
            os.makedirs(d, mode=0o700, exist_ok=True)
        self._version = ""
        self._pause_binary = os.path.exists(PAUSE_BINARY)
        self._server_lock = asyncio.Lock()
        # Starts are CPU-bound (runc): a burst started all at once finishes all at once, late; a few at a
        # time, in arrival order, gives the same throughput and most containers running much sooner.
        # Measured with 30 pods at once on 2 cores: p50 0.60 s with 4 slots, 0.76 s unlimited.
        self._start_slots = asyncio.Semaphore(2 * (os.cpu_count() or 1))
        # Container records never change once written: kept by id, so listing a pod's containers reads
        # only the records it has not seen (the directory listing stays the truth, also for records
        # another RuncRuntime on this state directory wrote or removed).
        self._records: dict[str, dict[str, Any]] = {}
        # started.json and exit.json are each written once (by the monitor, or by stop_container for a
        # monitor that is gone): once read they are kept, so a running container's status reads one file.
        self._written_once: dict[tuple[str, str], dict[str, Any]] = {}
        # Sandbox records as last parsed, by path, with the file's identity (see _load_sandbox).
        self._sandbox_records: dict[str, tuple[tuple[int, int, int], dict[str, Any]]] = {}

    # -- identity ---------------------------------------------------------------------------------------

    def handlers(self) -> list[str]:
        return ["runc", "runsc"] if self.runsc else ["runc"]

    def version(self) -> str:
        if not self._version:
            out = subprocess.run([self.runc, "--version"], capture_output=True, text=True).stdout
            first = out.split("\n", 1)[0].split()
            self._version = "runc://" + (first[2].split("+")[0] if len(first) > 2 else "unknown")
        return self._version

    def _tool(self, rec: dict[str, Any]) -> list[str]:
        """The runtime command line for a container (its record)."""
        if rec["kind"] == "runsc":
            return self._runsc(rec.get("netns", ""))
        return [self.runc, "--root", os.path.join(self.state_dir, "runc-root")]

    # -- sandboxes --------------------------------------------------------------------------------------

    def _sdir(self, sandbox_id: str) -> str:
        return f"{self.sandbox_root}/{sandbox_id.rpartition('/')[2]}"

    def _load_sandbox(self, sandbox_id: str) -> dict[str, Any]:
        """The sandbox's record (a copy: callers replace its fields, never change the values inside). Kept
        parsed while the file is the same (inode, mtime, size: every save replaces it), so the PLEG's relist
        and each pod sync pay one stat per sandbox instead of reading and parsing it."""
        path = f"{self._sdir(sandbox_id)}/sandbox.json"
        try:
            st = os.stat(path)
            hit = self._sandbox_records.get(path)
            if hit is None or hit[0] != (st.st_ino, st.st_mtime_ns, st.st_size):
                with open(path, "rb") as f:
                    st = os.fstat(f.fileno())
                    rec = orjson.loads(f.read())
                if not isinstance(rec, dict):
                    raise ValueError("not a record")
                hit = self._sandbox_records[path] = ((st.st_ino, st.st_mtime_ns, st.st_size), rec)
        except (OSError, ValueError):
            self._sandbox_records.pop(path, None)
            raise NotFoundError(f"pod sandbox {sandbox_id!r} not found") from None
        return dict(hit[1])

    def _save_sandbox(self, rec: dict[str, Any]) -> None:
        _write_json(os.path.join(self._sdir(rec["id"]), "sandbox.json"), rec)

    @staticmethod
    def _pod_cgroup(config: dict[str, Any]) -> str:
        return "/" + (config.get("cgroup_parent") or f"pyk8s/pod{config['pod_uid']}").strip("/")

    @staticmethod
    def _write_hosts(sdir: str, config: cri.SandboxConfig, pod_ip: str) -> None:
        """/etc/hosts as the kubelet manages it: the host's for hostNetwork, otherwise localhost entries
        and the pod's own IP and hostname; then the pod's hostAliases."""
        if config.host_network:
            with open("/etc/hosts") as f:
                hosts = f.read()
        else:
            hosts = ("# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost "
                     "ip6-loopback\nfe00::0\tip6-localnet\nfe00::0\tip6-mcastprefix\nfe00::1\tip6-allnodes\n"
                     "fe00::2\tip6-allrouters\n")
            if pod_ip:
                hosts += f"{pod_ip}\t{config.hostname}\n"
        if config.host_aliases:
            hosts += "\n# Entries added by HostAliases.\n"
            for ip, names in config.host_aliases:
                hosts += f"{ip}\t{chr(9).join(names)}\n"
        tmp = os.path.join(sdir, "hosts.tmp")
        with open(tmp, "w") as f:
            f.write(hosts)
        os.replace(tmp, os.path.join(sdir, "hosts"))

    def _write_files(self, sdir: str, config: cri.SandboxConfig) -> None:
        if config.host_network or self.network is None:  # otherwise written once the pod's IP is known
            self._write_hosts(sdir, config, "")
        if config.dns is None:
            with open("/etc/resolv.conf") as f:
                resolv = f.read()
        else:
            lines = [f"search {' '.join(config.dns.searches)}"] if config.dns.searches else []
            lines += [f"nameserver {s}" for s in config.dns.servers]
            if config.dns.options:
                lines.append(f"options {' '.join(config.dns.options)}")
            resolv = "\n".join(lines) + "\n"
        with open(os.path.join(sdir, "resolv.conf"), "w") as f:
            f.write(resolv)
        with open(os.path.join(sdir, "hostname"), "w") as f:
            f.write((socket.gethostname() if config.host_network else config.hostname) + "\n")

    async def run_pod_sandbox(self, config: cri.SandboxConfig) -> str:
        sandbox_id = secrets.token_hex(32)
        rec: dict[str, Any] = {
            "id": sandbox_id, "config": dataclasses.asdict(config), "state": "notready", "ip": "",
            "created_at": time.time(), "netns": "", "own_netns": False, "ipc": "", "uts": "",
        }
        try:
            await self._setup_sandbox(rec, config, self._sdir(sandbox_id))
        except BaseException:
            with contextlib.suppress(OSError):  # no directory yet: nothing to undo
                self._save_sandbox(rec)  # what there is to undo
            with contextlib.suppress(Exception):
                await self.remove_pod_sandbox(sandbox_id)
            raise
        return sandbox_id

    def _prepare_sandbox(self, rec: dict[str, Any], config: cri.SandboxConfig, sdir: str) -> list[str]:
        """The sandbox's directory, files and namespace mount points, and its first record (from here on
        cleanup knows what to undo, also after a kubelet restart); the `unshare` command line. File work
        only: run in a thread, so other pods' steps go on meanwhile."""
        ns = os.path.join(sdir, "ns")
        os.mkdir(sdir, mode=0o700)
        nsutil.mount_tmpfs(sdir)
        os.mkdir(ns, mode=0o700)
        self._write_files(sdir, config)
        unshare = ["unshare", f"--ipc={ns}/ipc"]
        if not config.host_network:
            unshare.append(f"--uts={ns}/uts")
            rec["uts"] = f"{ns}/uts"
            if self.network is None:  # an isolated namespace with loopback only
                unshare.append(f"--net={ns}/net")
                rec["netns"], rec["own_netns"] = f"{ns}/net", True
            else:  # made by _prepare_sandbox_holding, after this record is saved
                rec["netns"] = self.network.netns_path(rec["id"])
        for name in ("ipc", "uts", "net"):
            if any(a.startswith(f"--{name}=") for a in unshare):
                os.close(os.open(os.path.join(ns, name), os.O_CREAT | os.O_WRONLY, 0o444))  # a mount point
        rec["ipc"] = f"{ns}/ipc"
        self._save_sandbox(rec)
        return unshare

    def _prepare_sandbox_holding(self, rec: dict[str, Any], config: cri.SandboxConfig,
                                 sdir: str) -> list[str]:
        """_prepare_sandbox, then the IPC and UTS namespaces held and the network namespace made: one trip
        to a thread instead of three (a trip costs ~0.13 ms of CPU)."""
        unshare = self._prepare_sandbox(rec, config, sdir)
        if not rec["own_netns"]:
            try:
                nsutil.hold_ipc_uts(rec["ipc"], rec["uts"], config.hostname)
            except OSError as e:
                raise RuntimeError(f"pod sandbox namespaces: {e}") from e
            if not config.host_network and self.network is not None:
                self.network.create_netns_sync(rec["id"])
        return unshare

    async def _setup_sandbox(self, rec: dict[str, Any], config: cri.SandboxConfig, sdir: str) -> None:
        unshare = await _off_loop(self._prepare_sandbox_holding, rec, config, sdir)
        if rec["own_netns"]:  # with a network namespace to set up too: one process does it all
            await _run(*unshare, "/bin/sh", "-c", 'hostname "$1" && ip link set lo up', "-", config.hostname)
        elif not config.host_network and self.network is not None:
            rec["ip"] = await self.network.setup(rec["id"], rec["netns"], config.port_mappings)
            self._write_hosts(sdir, config, rec["ip"])
        if config.runtime_handler == "runsc" and self.runsc and self._pause_binary:
            await self._start_gvisor_sandbox(rec, config, sdir)
        elif config.share_process_namespace:
            await self._start_pause(rec)
        rec["state"] = "ready"
        self._save_sandbox(rec)

    async def _start_pause(self, rec: dict[str, Any]) -> None:
        """shareProcessNamespace: a pause process, PID 1 of a new PID namespace the containers join."""
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-S", "-I", PAUSE, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE)
        out, err = await proc.communicate()
        pid = int(out) if proc.returncode == 0 and out.strip().isdigit() else 0
        ticks = _start_ticks(pid) if pid else None
        if ticks is None:
            raise RuntimeError(f"pod sandbox pause process: {err.decode(errors='replace').strip()}")
        rec["pause"] = [pid, ticks]
        self._save_sandbox(rec)

    async def stop_pod_sandbox(self, sandbox_id: str) -> None:
        try:
            rec = self._load_sandbox(sandbox_id)
        except NotFoundError:
            return
        await asyncio.gather(*(self.stop_container(c.id, 0) for c in await self.list_containers(sandbox_id)
                               if c.state in ("running", "unknown")))
        if rec.get("gvisor"):
            await self._stop_gvisor_sandbox(rec)
        if rec.get("pause"):
            if _alive(*rec["pause"]):  # PID 1 of the namespace: SIGKILL is the one signal it takes from us
                os.kill(rec["pause"][0], signal.SIGKILL)
            rec["pause"] = None
        if rec["netns"]:
            if rec["own_netns"]:
                nsutil.unmount(rec["netns"])
            elif self.network is not None:
                mappings = [cri.PortMapping(**m) for m in rec["config"]["port_mappings"]]
                await self.network.teardown(sandbox_id, rec["netns"], mappings)
                await self.network.delete_netns(rec["netns"])
            rec["netns"] = ""
        for key in ("ipc", "uts"):
            if rec[key]:
                nsutil.unmount(rec[key])
                rec[key] = ""
        rec["state"] = "notready"
        self._save_sandbox(rec)

    # -- gVisor: one sandbox per pod --------------------------------------------------------------------

    def _runsc(self, netns: str, *flags: str) -> list[str]:
        """runsc, run inside the pod's network namespace (see the module docstring)."""
        nsenter = shutil.which("nsenter") or "nsenter"
        prefix = [nsenter, f"--net={netns}"] if netns and os.path.exists(netns) else []
        return [*prefix, self.runsc, "--root", os.path.join(self.state_dir, "runsc-root"), *flags]

    async def _start_gvisor_sandbox(self, rec: dict[str, Any], config: cri.SandboxConfig, sdir: str) -> None:
        """The pod's gVisor sandbox, its root container a pause process (busybox sleep, bound in from the
        host): the pod's containers join it as runsc subcontainers (CRI annotations), sharing one gVisor
        kernel, its IPC and UTS."""
        bundle = os.path.join(sdir, "gvisor")
        os.makedirs(os.path.join(bundle, "rootfs"), exist_ok=True)
        os.close(os.open(os.path.join(bundle, "rootfs", "busybox"), os.O_CREAT | os.O_WRONLY, 0o755))
        oci = {
            "ociVersion": "1.0.2",
            "process": {"terminal": False, "user": {"uid": 65535, "gid": 65535}, "cwd": "/",
                        "args": ["/busybox", "sleep", "2147483647"], "env": [f"PATH={spec.DEFAULT_PATH}"],
                        "noNewPrivileges": True},
            "root": {"path": os.path.join(bundle, "rootfs"), "readonly": True},
            "hostname": config.hostname,
            "mounts": [{"destination": "/busybox", "type": "bind", "source": PAUSE_BINARY,
                        "options": ["rbind", "ro"]}],
            "linux": {"namespaces": [{"type": t} for t in ("pid", "ipc", "uts", "mount")],
                      "cgroupsPath": f"{self._pod_cgroup(rec['config'])}/{rec['id']}",
                      # The pod's limits: gVisor's one kernel and every container in it are held to them
                      # by the host, as the pod cgroup holds a gVisor pod in Kubernetes.
                      "resources": spec.linux_resources(config.resources or cri.LinuxResources())},
            "annotations": {"io.kubernetes.cri.container-type": "sandbox",
                            "io.kubernetes.cri.sandbox-id": rec["id"]},
        }
        _write_json(os.path.join(bundle, "config.json"), oci)
        rec["gvisor"] = True
        self._save_sandbox(rec)
        tool = self._runsc(rec["netns"], "--network=host")
        log = os.path.join(bundle, "runsc.log")
        pid_file = os.path.join(bundle, "sandbox.pid")
        for step in (["create", "--bundle", bundle, "--pid-file", pid_file], ["start"]):
            # Not through _run: the sandbox process would hold a stdout pipe open for its lifetime.
            proc = await asyncio.create_subprocess_exec(
                *tool, "--log", log, "--log-format", "json", *step, rec["id"], stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            if await proc.wait() != 0:
                raise RuntimeError(f"gVisor sandbox: runsc {step[0]} failed: {_last_error(log)}")
        # The sandbox's host process: when it is gone (killed), the sandbox reports notready.
        rec["gvisor_pid"] = _process_of(pid_file)

    async def _stop_gvisor_sandbox(self, rec: dict[str, Any]) -> None:
        """Subcontainers are deleted while their sandbox still answers, then the sandbox itself."""
        tool = self._runsc(rec["netns"], "--network=host")
        subs = [c.id for c in await self.list_containers(rec["id"])]
        await asyncio.gather(*(_run(*tool, "delete", "--force", cid, check=False) for cid in subs))
        await _run(*tool, "kill", rec["id"], "SIGKILL", check=False)
        await _run(*tool, "delete", "--force", rec["id"], check=False)
        for leftover in glob.glob(os.path.join(tool[-2], f"*{rec['id']}*")):
            with contextlib.suppress(OSError):
                os.unlink(leftover)
        rec["gvisor"] = False
        self._save_sandbox(rec)

    async def remove_pod_sandbox(self, sandbox_id: str) -> None:
        try:
            rec = self._load_sandbox(sandbox_id)
        except NotFoundError:
            return
        await self.stop_pod_sandbox(sandbox_id)
        await asyncio.gather(*(self.remove_container(c.id) for c in await self.list_containers(sandbox_id)))
        self._remove_cgroup(self._pod_cgroup(rec["config"]))
        _remove_dir(self._sdir(sandbox_id))

    @staticmethod
    def _remove_cgroup(path: str) -> None:
        controllers: list[str] = []
        with contextlib.suppress(OSError):
            controllers = os.listdir(CGROUP_ROOT)
        for ctrl in controllers:
            with contextlib.suppress(OSError):
                os.rmdir(os.path.join(CGROUP_ROOT, ctrl, path.lstrip("/")))

    @staticmethod
    def _ns_held(path: str) -> bool:
        """A bind-mounted namespace file lives on nsfs, another device than its directory's; after a
        reboot only the empty file is left."""
        try:
            return os.stat(path).st_dev != os.stat(os.path.dirname(path)).st_dev
        except OSError:
            return False

    def _sandbox_status(self, rec: dict[str, Any]) -> cri.SandboxStatus:
        cfg = rec["config"]
        sdir = self._sdir(rec["id"])
        state = rec["state"]
        if state == "ready" and rec["ipc"] and not self._ns_held(rec["ipc"]):
            state = "notready"  # its namespaces are gone (the node rebooted)
        elif state == "ready" and rec["netns"] and not self._ns_held(rec["netns"]):
            state = "notready"  # its network namespace was deleted
        elif state == "ready" and rec.get("pause") and not _alive(*rec["pause"]):
            state = "notready"  # the shared PID namespace died with its pause process
        elif state == "ready" and rec.get("gvisor_pid") and not _alive(*rec["gvisor_pid"]):
            state = "notready"  # the gVisor sandbox was killed
        return cri.SandboxStatus(
            id=rec["id"], pod_uid=cfg["pod_uid"], namespace=cfg["namespace"], name=cfg["name"],
            state=state, ip=rec["ip"], created_at=rec["created_at"],
            runtime_handler=cfg["runtime_handler"], netns_path=rec["netns"],
            hosts_path=f"{sdir}/hosts", resolv_path=f"{sdir}/resolv.conf", hostname_path=f"{sdir}/hostname")

    async def pod_sandbox_status(self, sandbox_id: str) -> cri.SandboxStatus:
        return self._sandbox_status(self._load_sandbox(sandbox_id))

    async def list_pod_sandboxes(self) -> list[cri.SandboxStatus]:
        out = []
        found = sorted(os.listdir(self.sandbox_root))
        if len(self._sandbox_records) > len(found):  # records of sandboxes removed meanwhile
            present = {f"{self.sandbox_root}/{sid}/sandbox.json" for sid in found}
            self._sandbox_records = {k: v for k, v in self._sandbox_records.items() if k in present}
        for sid in found:
            with contextlib.suppress(NotFoundError):
                out.append(self._sandbox_status(self._load_sandbox(sid)))
        if len(out) < len(found):
            self._sweep_rebooted()
        return out

    def _sweep_rebooted(self, age: float = 60.0) -> None:
        """What a reboot left: sandbox and container directories whose tmpfs (and so whose records) went,
        and the writable layers of those containers. Only old ones: a directory being created has no
        tmpfs for a moment."""
        cutoff = time.time() - age
        for root, record in ((self.sandbox_root, "sandbox.json"), (self.container_root, "container.json")):
            for name in os.listdir(root):
                path = os.path.join(root, name)
                with contextlib.suppress(OSError):
                    if not os.path.ismount(path) and not os.path.exists(os.path.join(path, record)) \
                            and os.stat(path).st_mtime < cutoff:
                        shutil.rmtree(path, ignore_errors=True)
        containers = set(os.listdir(self.container_root))
        for name in os.listdir(self.rw_root):
            path = os.path.join(self.rw_root, name)
            with contextlib.suppress(OSError):
                if name not in containers and os.stat(path).st_mtime < cutoff:
                    shutil.rmtree(path, ignore_errors=True)

    # -- containers -------------------------------------------------------------------------------------

    def _cdir(self, container_id: str) -> str:
        return f"{self.container_root}/{container_id.rpartition('/')[2]}"

    def _load_container(self, container_id: str) -> dict[str, Any]:
        rec = _read_json(os.path.join(self._cdir(container_id), "container.json"))
        if rec is None:
            raise NotFoundError(f"container {container_id!r} not found")
        return dict(rec)

    async def create_container(self, sandbox_id: str, config: cri.ContainerConfig) -> str:
        sbox = self._load_sandbox(sandbox_id)
        if self._sandbox_status(sbox).state != "ready":  # as CRI runtimes refuse: the kubelet replaces it
            raise RuntimeError(f"pod sandbox {sandbox_id} is not ready")
        scfg = sbox["config"]
        kind = "runsc" if scfg["runtime_handler"] == "runsc" else "runc"
        if kind == "runsc" and not self.runsc:
            raise RuntimeError("runtime handler runsc is not installed on this node")
        image = await self.images.image_status(config.image)
        container_id = secrets.token_hex(32)
        try:
            await _off_loop(self._prepare_container, container_id, sbox, kind, image, config)
        except BaseException as e:
            with contextlib.suppress(Exception):
                await self.remove_container(container_id)
            if isinstance(e, UnsafePathError):
                raise ValueError(str(e)) from e
            raise
        return container_id

    @staticmethod
    def _pid_ns(sbox: dict[str, Any]) -> str:
        """The pod's shared PID namespace, if it has one; a pause that is gone (its pid perhaps reused) is
        an error, never a namespace to join."""
        if not sbox.get("pause"):
            return ""
        if not _alive(*sbox["pause"]):
            raise RuntimeError("the pod's shared process namespace is gone (its pause process ended)")
        return f"/proc/{sbox['pause'][0]}/ns/pid"

    def _prepare_container(self, container_id: str, sbox: dict[str, Any], kind: str,
                           image: cri.Image | None, config: cri.ContainerConfig) -> None:
        """The container's directory, record, rootfs (overlay mount), OCI bundle and monitor settings:
        file work only, run in a thread so that other pods' steps go on meanwhile."""
        sandbox_id, scfg = sbox["id"], sbox["config"]
        layers = self.images.layer_dirs(config.image)
        cdir = self._cdir(container_id)
        rootfs = os.path.join(cdir, "rootfs")
        os.mkdir(cdir, mode=0o700)
        nsutil.mount_tmpfs(cdir)
        os.mkdir(rootfs, mode=0o755)
        rw = os.path.join(self.rw_root, container_id)
        for d in ("upper", "work"):
            os.makedirs(os.path.join(rw, d), mode=0o755)
        log_path = ""
        if config.log_path:
            log_path = os.path.join(scfg["log_directory"], config.log_path)
            os.makedirs(os.path.dirname(log_path), exist_ok=True)
        rec = {
            "id": container_id, "sandbox_id": sandbox_id, "name": config.name, "attempt": config.attempt,
            "image": config.image, "image_id": image.id if image else config.image, "kind": kind,
            "created_at": time.time(), "log_path": log_path, "labels": config.labels,
            "netns": sbox["netns"] if kind == "runsc" else "",
            "annotations": config.annotations,
        }
        _write_json(os.path.join(cdir, "container.json"), rec)
        nsutil.mount_overlay(layers, os.path.join(rw, "upper"), os.path.join(rw, "work"), rootfs)
        check_working_dir(rootfs, config.working_dir)
        sandbox = spec.SandboxPaths(
            hostname=scfg["hostname"], netns=sbox["netns"], ipc_ns=sbox["ipc"], uts_ns=sbox["uts"],
            hosts_path=os.path.join(self._sdir(sandbox_id), "hosts"),
            resolv_path=os.path.join(self._sdir(sandbox_id), "resolv.conf"),
            hostname_path=os.path.join(self._sdir(sandbox_id), "hostname"),
            host_network=scfg["host_network"], pid_ns=self._pid_ns(sbox) if kind == "runc" else "")
        cgroups_path = f"{self._pod_cgroup(scfg)}/{container_id}"
        # runsc: each container is its own gVisor sandbox in the pod's network namespace (runsc
        # reads these annotations; "container" would join a runsc sandbox we do not run).
        annotations = {**config.annotations, "io.kubernetes.cri.container-type": "container",
                       "io.kubernetes.cri.sandbox-id": sandbox_id}
        if kind == "runsc" and not sbox.get("gvisor"):  # no pod sandbox: a gVisor sandbox of its own
            annotations.update({"io.kubernetes.cri.container-type": "sandbox",
                                "io.kubernetes.cri.sandbox-id": container_id})
        oci = spec.build(config, rootfs=rootfs, sandbox=sandbox, cgroups_path=cgroups_path,
                         image_config=image.config if image else None, gvisor=kind == "runsc",
                         annotations=annotations)
        _write_json(os.path.join(cdir, "config.json"), oci)
        # runsc of this Debian release takes every network namespace for the root one on this kernel
        # (its check looks for /proc/sys/net/core/rmem_default, which is now per namespace) and
        # refuses its own netstack there; so the sandbox is created inside the pod's namespace and
        # uses it directly (--network=host: gVisor's hostinet, in the pod's namespace). Every runsc
        # command runs there: its control socket is abstract, so it is per network namespace.
        global_flags = ["--network=host"] if kind == "runsc" else []
        # A gVisor subcontainer's memory is its sandbox's (one kernel, held to the pod's limit): an OOM kill
        # there is what ended it.
        memory_cgroup = (f"{self._pod_cgroup(scfg)}/{sandbox_id}" if kind == "runsc" and sbox.get("gvisor")
                         else cgroups_path)
        *prefix, runtime_path, _, root = self._tool(rec)  # [nsenter …] runtime --root ROOT
        conf: dict[str, list[str]] = {
            "kind": [kind], "runtime_path": [runtime_path], "root": [root],
            "global_flags": global_flags, "prefix": prefix, "id": [container_id],
            "bundle": [cdir], "log_path": [log_path], "tty": ["1" if config.tty else ""],
            "stdin": ["1" if config.stdin else ""], "stdin_once": ["1" if config.stdin_once else ""],
            "memory_cgroup": [f"{CGROUP_ROOT}/memory{memory_cgroup}"],
            "subcontainer": ["1" if kind == "runsc" and sbox.get("gvisor") else ""]}
        _write_monitor_conf(os.path.join(cdir, "monitor.conf"), conf)

    async def _spawn_monitor(self, *args: str) -> bytes:
        """Run monitor.py detached (it forks away at once); what it reports on stdout."""
        errlog = os.open(os.path.join(self.state_dir, "monitor.log"), os.O_WRONLY | os.O_CREAT | os.O_APPEND,
                         0o600)
        try:
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-S", "-I", MONITOR, *args, stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE, stderr=errlog)
        finally:
            os.close(errlog)
        out, _ = await proc.communicate()
        return out

    async def _ask_server(self, cdir: str) -> bytes:
        # Through a directory fd: the socket's full path may exceed the 108 bytes of sun_path.
        dirfd = os.open(self.state_dir, os.O_PATH)
        try:
            reader, writer = await asyncio.open_unix_connection(f"/proc/self/fd/{dirfd}/monitor.sock")
        finally:
            os.close(dirfd)
        try:
            writer.write(cdir.encode() + b"\n")
            await writer.drain()
            return await reader.read()
        finally:
            writer.close()

    async def _start_monitor(self, cdir: str) -> bytes:
        """A monitor forked by the runtime's monitor server (started on first use, found again after a
        kubelet restart); a monitor of its own if that server cannot be had."""
        try:
            return await self._ask_server(cdir)
        except OSError:
            pass
        async with self._server_lock:
            try:
                return await self._ask_server(cdir)
            except OSError:
                await self._spawn_monitor("--server", self.state_dir)
        try:
            return await self._ask_server(cdir)
        except OSError:
            return await self._spawn_monitor(cdir)

    async def close(self) -> None:
        """Stop the monitor server (running containers and their monitors are not touched)."""
        with contextlib.suppress(OSError):
            await self._ask_server("exit")

    async def start_container(self, container_id: str) -> None:
        self._load_container(container_id)
        cdir = self._cdir(container_id)
        if any(_read_json(os.path.join(cdir, f)) is not None for f in ("started.json", "exit.json")):
            raise RuntimeError(f"container {container_id} was already started")
        async with self._start_slots:
            out = await self._start_monitor(cdir)
        try:
            report = json.loads(out)
        except ValueError:
            report = {"ok": False, "message": f"container monitor failed: {out!r}"}
        if not report.get("ok"):
            raise ContainerStartError(report.get("message", "container could not be started"))

    def _status(self, rec: dict[str, Any]) -> cri.ContainerStatus:
        started = self._read_once(rec["id"], "started.json") or {}
        exited = self._read_once(rec["id"], "exit.json")
        st = cri.ContainerStatus(
            id=rec["id"], sandbox_id=rec["sandbox_id"], name=rec["name"], attempt=rec["attempt"],
            state="created", image=rec["image"], image_id=rec["image_id"], created_at=rec["created_at"],
            started_at=started.get("started_at", 0.0), log_path=rec["log_path"],
            labels=dict(rec["labels"]))
        if exited is not None:
            st.state = "exited"
            st.exit_code = exited["exit_code"]
            st.finished_at = exited["finished_at"]
            if exited.get("reason"):
                st.reason, st.message = exited["reason"], exited.get("message", "")
            elif exited.get("oom"):
                st.reason = "OOMKilled"
            else:
                st.reason = "Completed" if st.exit_code == 0 else "Error"
        elif started:
            if _alive(started["monitor_pid"], started.get("monitor_start")):
                st.state, st.pid = "running", started["pid"]
            else:
                st.state, st.reason = "unknown", "Error"
                st.message = "the container's monitor is gone"
        return st

    async def container_status(self, container_id: str) -> cri.ContainerStatus:
        return self._status(self._load_container(container_id))

    def _read_once(self, container_id: str, name: str) -> dict[str, Any] | None:
        found = self._written_once.get((container_id, name))
        if found is None:
            found = _read_json(os.path.join(self._cdir(container_id), name))
            if isinstance(found, dict):
                self._written_once[(container_id, name)] = found
        return found

    def _container_records(self) -> list[dict[str, Any]]:
        """Every container record on the node, in id order; only new ones are read from disk."""
        ids = sorted(os.listdir(self.container_root))
        present = set(ids)
        for gone in [cid for cid in self._records if cid not in present]:
            del self._records[gone]
        for key in [k for k in self._written_once if k[0] not in present]:
            del self._written_once[key]
        out = []
        for cid in ids:
            rec = self._records.get(cid)
            if rec is None:
                try:
                    rec = self._records[cid] = self._load_container(cid)
                except NotFoundError:  # being created or removed
                    continue
            out.append(rec)
        return out

    async def list_containers(self, sandbox_id: str | None = None) -> list[cri.ContainerStatus]:
        return [self._status(rec) for rec in self._container_records()
                if sandbox_id is None or rec["sandbox_id"] == sandbox_id]

    async def _kill(self, rec: dict[str, Any], sig: str) -> None:
        await _run(*self._tool(rec), "kill", rec["id"], sig, check=False)

    async def stop_container(self, container_id: str, grace_seconds: float) -> None:
        rec = self._load_container(container_id)
        started = _read_json(os.path.join(self._cdir(container_id), "started.json"))
        if not started or _read_json(os.path.join(self._cdir(container_id), "exit.json")) is not None:
            return
        monitor = started["monitor_pid"]
        if not _alive(monitor, started.get("monitor_start")):
            monitor = -1  # gone (and its pid perhaps reused): nothing to wait for
        if grace_seconds > 0 and monitor > 0:
            await self._kill(rec, "SIGTERM")
            if await _wait_exit(monitor, grace_seconds):
                return
        await self._kill(rec, "SIGKILL")
        if not await _wait_exit(monitor, 10):
            # A monitor that does not notice: end it so nothing is left running.
            with contextlib.suppress(ProcessLookupError):
                if monitor > 0:
                    os.kill(monitor, signal.SIGKILL)
        exit_path = os.path.join(self._cdir(container_id), "exit.json")
        if _read_json(exit_path) is None:  # its monitor was gone: record the end ourselves
            _write_json(exit_path, {"exit_code": 137, "finished_at": time.time(), "oom": False,
                                    "reason": "Error", "message": "killed; its monitor had gone"})

    async def remove_container(self, container_id: str) -> None:
        try:
            rec = self._load_container(container_id)
        except NotFoundError:  # perhaps its creation failed before the record was written
            self._remove_container_dirs(container_id)
            return
        status = self._status(rec)
        if status.state in ("running", "unknown"):
            await self.stop_container(container_id, 0)
        tool = self._tool(rec)
        await _run(*tool, "delete", "--force", container_id, check=False)
        if rec["kind"] == "runsc":  # runsc leaves its lock file behind
            for leftover in glob.glob(os.path.join(tool[-1], f"*{container_id}*")):
                with contextlib.suppress(OSError):
                    os.unlink(leftover)
        sbox = _read_json(os.path.join(self._sdir(rec["sandbox_id"]), "sandbox.json"))
        if sbox is not None:  # runc deletes the cgroup of a container it knows; make sure
            self._remove_cgroup(f"{self._pod_cgroup(sbox['config'])}/{container_id}")
        self._remove_container_dirs(container_id)

    def _remove_container_dirs(self, container_id: str) -> None:
        cdir = self._cdir(container_id)
        nsutil.unmount(os.path.join(cdir, "rootfs"))
        _remove_dir(cdir)
        shutil.rmtree(os.path.join(self.rw_root, os.path.basename(container_id)), ignore_errors=True)

    async def reopen_container_log(self, container_id: str) -> None:
        """CRI ReopenContainerLog: the kubelet renamed the log for rotation; the monitor starts a new
        file at log_path."""
        started = _read_json(os.path.join(self._cdir(container_id), "started.json"))
        if started and self._status(self._load_container(container_id)).state == "running":
            os.kill(started["monitor_pid"], signal.SIGUSR1)

    # -- exec, attach, port-forward ---------------------------------------------------------------------

    def _running(self, container_id: str) -> dict[str, Any]:
        rec = self._load_container(container_id)
        if self._status(rec).state != "running":
            raise RuntimeError(f"container {container_id} is not running")
        return rec

    async def _spawn_exec(self, container_id: str, cmd: list[str], *, stdin: bool,
                          tty: bool) -> ExecStream:
        rec = self._running(container_id)
        pid_file = os.path.join(self._cdir(container_id), f"exec-{secrets.token_hex(4)}.pid")
        argv = [*self._tool(rec), "exec", "--pid-file", pid_file]
        process_fd = -1
        if tty and rec["kind"] == "runc":
            argv += ["--tty", container_id, *cmd]
        elif tty:
            # runsc exec has no --tty: a process spec with `terminal` set makes gVisor take its stdio, our
            # pty, as the process's terminal (sizes, line discipline, SIGWINCH). Handed over in a pipe.
            process_fd = self._process_spec(container_id, cmd)
            argv += ["--process", f"/proc/self/fd/{process_fd}", container_id]
        else:
            argv += [container_id, *cmd]
        if tty:
            master, slave = os.openpty()

            def controlling_tty() -> None:  # runc reads its size from the terminal it runs on
                import fcntl
                import termios

                fcntl.ioctl(0, termios.TIOCSCTTY, 0)

            try:
                proc = await asyncio.create_subprocess_exec(
                    *argv, stdin=slave, stdout=slave, stderr=slave, start_new_session=True,
                    preexec_fn=controlling_tty, pass_fds=(process_fd,) if process_fd >= 0 else ())
            finally:
                os.close(slave)
                if process_fd >= 0:
                    os.close(process_fd)
            if not stdin:
                os.write(master, b"\x04")
            return ExecStream(proc, master, pid_file)
        proc = await asyncio.create_subprocess_exec(
            *argv, stdin=subprocess.PIPE if stdin else subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE)
        return ExecStream(proc, -1, pid_file)

    def _process_spec(self, container_id: str, cmd: list[str]) -> int:
        """The container's OCI process (user, env, cwd, capabilities) running `cmd` on a terminal, as the
        read end of a pipe that holds it."""
        with open(os.path.join(self._cdir(container_id), "config.json")) as f:
            process = dict(json.load(f)["process"])
        process.update(args=cmd, terminal=True)
        data = json.dumps(process).encode()
        read, write = os.pipe()
        try:
            if len(data) > 65536:  # more than a pipe holds without a reader
                raise RuntimeError("exec: the process spec is too large")
            os.write(write, data)
        except BaseException:
            os.close(read)
            raise
        finally:
            os.close(write)
        return read

    async def exec(self, container_id: str, cmd: list[str], *, stdin: bool, tty: bool) -> cri.Stream:
        return await self._spawn_exec(container_id, cmd, stdin=stdin, tty=tty)

    async def exec_sync(self, container_id: str, cmd: list[str], timeout_seconds: float) -> cri.ExecResult:
        stream = await self._spawn_exec(container_id, cmd, stdin=False, tty=False)

        async def collect(it: AsyncIterator[bytes]) -> bytes:
            return b"".join([chunk async for chunk in it])

        out_task = asyncio.ensure_future(collect(stream.stdout()))
        err_task = asyncio.ensure_future(collect(stream.stderr()))
        try:
            code = await asyncio.wait_for(stream.wait(), timeout_seconds if timeout_seconds > 0 else None)
        except TimeoutError:
            await stream.kill()
            await stream.wait()
            raise
        finally:
            with contextlib.suppress(OSError):
                os.unlink(stream.pid_file)
        return cri.ExecResult(exit_code=code, stdout=await out_task, stderr=await err_task)

    async def attach(self, container_id: str, *, stdin: bool, tty: bool) -> cri.Stream:
        self._running(container_id)
        cdir = self._cdir(container_id)
        # Through a directory fd: the socket's full path may exceed the 108 bytes of sun_path.
        dirfd = os.open(cdir, os.O_PATH)
        try:
            reader, writer = await asyncio.open_unix_connection(f"/proc/self/fd/{dirfd}/attach.sock")
        finally:
            os.close(dirfd)

        def exit_code() -> int:
            exited = _read_json(os.path.join(cdir, "exit.json"))
            return int(exited["exit_code"]) if exited else -1

        return AttachStream(reader, writer, exit_code)

    async def port_forward(self, sandbox_id: str, port: int) -> tuple[Callable[[bytes], Awaitable[None]],
                                                                       AsyncIterator[bytes]]:
        rec = self._load_sandbox(sandbox_id)
        loop = asyncio.get_running_loop()
        if rec["config"]["host_network"]:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        else:
            if not rec["netns"]:
                raise RuntimeError(f"pod sandbox {sandbox_id} has no network namespace")
            sock = await loop.run_in_executor(None, nsutil.socket_in_netns, rec["netns"])
        sock.setblocking(False)
        try:
            await loop.sock_connect(sock, ("127.0.0.1", port))
        except OSError:
            sock.close()
            raise
        return stream_pair(*await asyncio.open_connection(sock=sock))
