"""Pod networking for one node: a network namespace per sandbox wired by the reference CNI plugins.

The network list is `bridge` (a node bridge that is the pods' gateway, hairpin on) with `host-local`
IPAM from the node's pod CIDR, `portmap` for hostPorts (only when the pod has some: it costs iptables
work). `lo` is brought up by `loopback` as a network of its own, attached concurrently with the pod
network (as containerd does), so it adds no latency. Masquerading is one node-wide rule (see
masquerade.py) rather than the bridge plugin's per-pod `ipMasq`. Like libcni, every ADD's config
and result are kept under the state dir, so DEL gets the same config and prevResult and the pod IP
is known again after a kubelet restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import os
import re
import shutil
import subprocess
import threading
from collections.abc import AsyncIterator
from typing import Any

import orjson

from pyk8s.kubelet import cri
from pyk8s.kubelet.network import cni, masquerade, netns

NETWORK_NAME = "pyk8s"
IFNAME = "eth0"
LOOPBACK: cni.JSON = {"cniVersion": cni.CNI_VERSION, "name": "cni-loopback",
                      "plugins": [{"type": "loopback"}]}
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,199}$")


class PodNetwork:
    def __init__(self, state_dir: str, cni_bin_dir: str = "/usr/lib/cni", bridge: str = "pyk8s0", *,
                 netns_dir: str = "/run/netns", cluster_cidr: str = "",
                 parallel_adds: int = 0) -> None:
        """`cluster_cidr`: pod traffic to it is not masqueraded (default: the node's pod CIDR).
        `parallel_adds`: ADDs run at once (default: one per CPU)."""
        self.state_dir = state_dir
        self.bin_dirs = [cni_bin_dir]
        self.bridge = bridge
        self.netns_dir = netns_dir
        self.pod_cidr = ""
        self.cluster_cidr = str(ipaddress.ip_network(cluster_cidr, strict=False)) if cluster_cidr else ""
        self._results_dir = os.path.join(state_dir, "results")
        self._netns_records = os.path.join(state_dir, "netns")
        self._ipam_dir = os.path.join(state_dir, "ipam")
        for d in (self._results_dir, self._netns_records, self._ipam_dir):
            os.makedirs(d, mode=0o700, exist_ok=True)
        self._locks: dict[str, list[Any]] = {}  # sandbox id -> [lock, users]
        # The first ADD creates the bridge and its gateway address; concurrent first ADDs would race
        # on them, so ADDs wait for one to have succeeded (then they run in parallel). The node's
        # masquerade rule is written before it.
        self._bridge_lock = asyncio.Lock()
        self._bridge_ready = False
        # ADDs are CPU-bound plugin runs: a burst run all at once finishes all at once, late; a few at a
        # time in arrival order gives the same throughput and most pods their IP much sooner.
        self._add_slots = asyncio.Semaphore(parallel_adds or os.cpu_count() or 2)

    # -- configuration -------------------------------------------------------------------------------

    def set_pod_cidr(self, cidr: str) -> None:
        net = ipaddress.ip_network(cidr, strict=False)
        if net.version != 4:
            raise ValueError(f"pod CIDR {cidr}: only IPv4 is supported")
        if str(net) != self.pod_cidr:
            self.pod_cidr = str(net)
            self._bridge_ready = False  # the masquerade rule follows the pod CIDR

    def conflist(self, port_mappings: list[cri.PortMapping]) -> cni.JSON:
        """The CNI network configuration list for a pod with these hostPort mappings."""
        if not self.pod_cidr:
            raise RuntimeError("pod CIDR is not set (set_pod_cidr) yet")
        plugins: list[cni.JSON] = [{
            "type": "bridge",
            "bridge": self.bridge,
            "isGateway": True,
            "ipMasq": False,  # masquerade.py does it once for the node
            "hairpinMode": True,
            "ipam": {
                "type": "host-local",
                "ranges": [[{"subnet": self.pod_cidr}]],
                "routes": [{"dst": "0.0.0.0/0"}],
                "dataDir": self._ipam_dir,
            },
        }]
        if port_mappings:
            plugins.append({"type": "portmap", "snat": True, "capabilities": {"portMappings": True}})
        return {"cniVersion": cni.CNI_VERSION, "name": NETWORK_NAME, "plugins": plugins}

    @staticmethod
    def runtime_config(port_mappings: list[cri.PortMapping]) -> cni.JSON:
        if not port_mappings:
            return {}
        return {"portMappings": [
            {"hostPort": p.host_port, "containerPort": p.container_port, "protocol": p.protocol.lower(),
             "hostIP": p.host_ip}
            for p in port_mappings
        ]}

    # -- network namespaces ----------------------------------------------------------------------------

    def netns_path(self, sandbox_id: str) -> str:
        return os.path.join(self.netns_dir, f"pyk8s-{_checked_id(sandbox_id)}")

    def create_netns_sync(self, sandbox_id: str) -> str:
        """A new network namespace pinned on a file (it outlives this process); returns its path. File and
        namespace work: for a thread (the runtime's, as it prepares the rest of the sandbox)."""
        path = self.netns_path(sandbox_id)
        netns.create_netns_sync(path)
        _write(os.path.join(self._netns_records, _checked_id(sandbox_id)), path.encode())
        return path

    async def create_netns(self, sandbox_id: str) -> str:
        return await asyncio.to_thread(self.create_netns_sync, sandbox_id)

    async def delete_netns(self, netns_path: str) -> None:
        await netns.delete_netns(netns_path)
        base = os.path.basename(netns_path)
        if base.startswith("pyk8s-"):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(os.path.join(self._netns_records, base.removeprefix("pyk8s-")))

    # -- CNI ADD / DEL / CHECK -------------------------------------------------------------------------

    async def setup(self, sandbox_id: str, netns_path: str, port_mappings: list[cri.PortMapping]) -> str:
        """Wire the sandbox's netns into the pod network; returns the pod IP. A failed ADD is undone."""
        _checked_id(sandbox_id)
        port_mappings = [p for p in port_mappings if p.host_port > 0]  # containerPort alone maps nothing
        conflist = self.conflist(port_mappings)
        runtime_config = self.runtime_config(port_mappings)
        async with self._lock(sandbox_id):
            cached = self._load(sandbox_id)
            if cached is not None and cached.get("result") and netns.is_netns(netns_path):
                # Set up already (a retried call): a second ADD would be refused by host-local, and
                # rolling that back would tear down the network the pod has.
                return pod_ip(cached["result"])
            # Recorded before ADD, so a crash mid-ADD still leaves what DEL needs to clean up.
            self._save(sandbox_id, {"netns": netns_path, "conflist": conflist,
                                    "runtimeConfig": runtime_config, "result": None})
            try:
                async with self._add_slots:
                    done = await asyncio.gather(
                        self._add(sandbox_id, netns_path, conflist, runtime_config),
                        cni.add_network_list(self.bin_dirs, LOOPBACK, sandbox_id, netns_path, "lo", {}),
                        return_exceptions=True)
                for outcome in done:
                    if isinstance(outcome, BaseException):
                        raise outcome
                result, lo_result = done
                assert isinstance(result, dict) and isinstance(lo_result, dict)
                ip = pod_ip(result)
            except BaseException:
                with contextlib.suppress(Exception):
                    await self._teardown_locked(sandbox_id, netns_path, port_mappings)
                raise
            self._save(sandbox_id, {"netns": netns_path, "conflist": conflist,
                                    "runtimeConfig": runtime_config, "result": result,
                                    "loopbackResult": lo_result})
            return ip

    async def _add(self, sandbox_id: str, netns_path: str, conflist: cni.JSON,
                   runtime_config: cni.JSON) -> cni.JSON:
        if self._bridge_ready:
            return await cni.add_network_list(self.bin_dirs, conflist, sandbox_id, netns_path, IFNAME,
                                              runtime_config)
        async with self._bridge_lock:
            if not self._bridge_ready:
                await masquerade.ensure(self.bridge, self.pod_cidr, self.cluster_cidr or self.pod_cidr)
            result = await cni.add_network_list(self.bin_dirs, conflist, sandbox_id, netns_path, IFNAME,
                                                runtime_config)
            self._bridge_ready = True
            return result

    async def teardown(self, sandbox_id: str, netns_path: str, port_mappings: list[cri.PortMapping]) -> None:
        """Undo setup: veth, IP reservation, masquerade and hostPort rules. Idempotent."""
        _checked_id(sandbox_id)
        async with self._lock(sandbox_id):
            await self._teardown_locked(sandbox_id, netns_path, port_mappings)

    async def _teardown_locked(self, sandbox_id: str, netns_path: str,
                               port_mappings: list[cri.PortMapping]) -> None:
        cached = self._load(sandbox_id)
        if cached is not None:
            conflist, runtime_config = cached["conflist"], cached["runtimeConfig"]
            result = cached.get("result")
        elif self.pod_cidr:
            port_mappings = [p for p in port_mappings if p.host_port > 0]
            conflist, runtime_config = self.conflist(port_mappings), self.runtime_config(port_mappings)
            result = None
        else:
            return  # never set up by this node: no config, nothing of ours to delete
        alive = netns.is_netns(netns_path)
        # The spec lets the runtime pass no netns once it is gone; the plugins then free what they can.
        path = netns_path if alive else ""
        done = await asyncio.gather(
            cni.del_network_list(self.bin_dirs, conflist, sandbox_id, path, IFNAME, runtime_config, result),
            cni.del_network_list(self.bin_dirs, LOOPBACK, sandbox_id, path, "lo", {},
                                 (cached or {}).get("loopbackResult")),
            return_exceptions=True)
        for outcome in done:
            if isinstance(outcome, BaseException):
                raise outcome
        if not alive and result:
            # The kernel removes a veth once its netns dies, but asynchronously, and never while a
            # process still holds the netns: delete the host end ourselves.
            await _delete_links([str(i["name"]) for i in result.get("interfaces") or []
                                 if not i.get("sandbox") and i.get("name") != self.bridge])
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._result_path(sandbox_id))

    async def check(self, sandbox_id: str, netns_path: str) -> None:
        """CNI CHECK of a set-up sandbox; raises CNIError (or LookupError if it was never set up)."""
        cached = self._load(sandbox_id)
        if cached is None or cached.get("result") is None:
            raise LookupError(f"sandbox {sandbox_id} has no pod network")
        await cni.check_network_list(self.bin_dirs, cached["conflist"], sandbox_id, netns_path, IFNAME,
                                     cached["runtimeConfig"], cached["result"])
        await cni.check_network_list(self.bin_dirs, LOOPBACK, sandbox_id, netns_path, "lo", {},
                                     cached["loopbackResult"])

    async def status(self, sandbox_id: str, netns_path: str) -> str | None:
        """The pod IP of a set-up sandbox whose netns still exists (also after a restart), else None."""
        cached = self._load(sandbox_id)
        if cached is None or cached.get("result") is None or not netns.is_netns(netns_path):
            return None
        try:
            return pod_ip(cached["result"])
        except ValueError:
            return None

    # -- for tests -------------------------------------------------------------------------------------

    def cleanup_all(self) -> None:
        """Tear down every sandbox this state dir knows, delete its netns, the masquerade rule, the
        bridge and the state dir."""
        def run() -> None:
            asyncio.run(self._cleanup_all())

        # Its own thread and loop, so it works both inside and outside a running event loop.
        thread = threading.Thread(target=run, name="pod-network-cleanup")
        thread.start()
        thread.join()
        subprocess.run(["ip", "link", "del", self.bridge], capture_output=True, check=False)
        shutil.rmtree(self.state_dir, ignore_errors=True)

    async def _cleanup_all(self) -> None:
        self._locks.clear()
        self._bridge_lock = asyncio.Lock()  # the old one belongs to another loop
        for name in _listdir(self._results_dir):
            sandbox_id = name.removesuffix(".json")
            cached = self._load(sandbox_id) or {}
            with contextlib.suppress(Exception):
                await self.teardown(sandbox_id, str(cached.get("netns", "")), [])
        for sandbox_id in _listdir(self._netns_records):
            path = _read_text(os.path.join(self._netns_records, sandbox_id))
            with contextlib.suppress(OSError):
                await self.delete_netns(path)
        await masquerade.remove(self.bridge)

    # -- state -----------------------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def _lock(self, sandbox_id: str) -> AsyncIterator[None]:
        """One operation per sandbox at a time; the lock is dropped when nobody holds or awaits it."""
        entry = self._locks.setdefault(sandbox_id, [asyncio.Lock(), 0])
        entry[1] += 1
        try:
            async with entry[0]:
                yield
        finally:
            entry[1] -= 1
            if entry[1] == 0:
                del self._locks[sandbox_id]

    def _result_path(self, sandbox_id: str) -> str:
        return os.path.join(self._results_dir, f"{sandbox_id}.json")

    def _save(self, sandbox_id: str, record: dict[str, Any]) -> None:
        _write(self._result_path(sandbox_id), orjson.dumps(record))

    def _load(self, sandbox_id: str) -> dict[str, Any] | None:
        try:
            with open(self._result_path(sandbox_id), "rb") as f:
                record = orjson.loads(f.read())
        except (FileNotFoundError, orjson.JSONDecodeError):
            return None
        return record if isinstance(record, dict) else None


def pod_ip(result: cni.JSON) -> str:
    """The first IPv4 address of a CNI result, without its prefix length."""
    for entry in result.get("ips") or []:
        address = str(entry.get("address", "")).split("/")[0]
        with contextlib.suppress(ValueError):
            if ipaddress.ip_address(address).version == 4:
                return address
    raise ValueError(f"CNI result has no IPv4 address: {result!r}")


async def _delete_links(names: list[str]) -> None:
    for name in names:
        proc = await asyncio.create_subprocess_exec(
            "ip", "link", "del", name, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
        await proc.wait()  # "Cannot find device" is fine: it is gone already


def _checked_id(sandbox_id: str) -> str:
    if not _ID.match(sandbox_id):
        raise ValueError(f"invalid sandbox id {sandbox_id!r}")
    return sandbox_id


def _write(path: str, data: bytes) -> None:
    """Atomically: a reader (or a restart) never sees half a record."""
    tmp = f"{path}.tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def _read_text(path: str) -> str:
    with open(path) as f:
        return f.read()


def _listdir(path: str) -> list[str]:
    try:
        return [n for n in os.listdir(path) if not n.endswith(".tmp")]
    except FileNotFoundError:
        return []
