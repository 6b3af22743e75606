"""ServiceProxy: follows Services and EndpointSlices and keeps the node's service rules current.

Informer handlers only mark a service dirty (kube-proxy's change tracker); one sync loop turns the
dirty services into service ports and applies the whole state — at most once per `min_sync_interval`
(batching a burst of changes into one nft transaction) and as soon as that allows after a change.
Rendering is cached per Service, so a sync costs one service's work plus one nft transaction.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import time
from collections.abc import Sequence
from typing import Any, Literal

from pyk8s.api.catalog import require
from pyk8s.client.cache import DeletedFinalStateUnknown, object_key
from pyk8s.client.client import Client
from pyk8s.client.informer import SharedInformerFactory
from pyk8s.proxy.model import ServicePort, build_service_ports, service_key_of_slice
from pyk8s.proxy.nft import NftTable, Ruleset, render
from pyk8s.proxy.userspace import UserspaceProxier

__all__ = ["ServiceProxy"]

log = logging.getLogger(__name__)

Obj = dict[str, Any]
_SERVICE_INDEX = "service"
PROXY_NAME_LABEL = "service.kubernetes.io/service-proxy-name"
HEADLESS_LABEL = "service.kubernetes.io/headless"


SERVICES = require("", "Service")
ENDPOINT_SLICES = require("discovery.k8s.io", "EndpointSlice")


class ServiceProxy:
    """The node's service proxy, `mode` "nftables" (DNAT in the kernel) or "userspace" (forwarding here).

    NodePorts answer on every local address (found with `fib daddr type local`). `nft` is the command
    that runs nft (default: nft on PATH, else /usr/sbin/nft; a test may prefix it to reach a network
    namespace).
    After each successful sync `applied` holds the service ports in place, keyed by `ServicePort.key`.
    Like kube-proxy, it serves the Services without a `service.kubernetes.io/service-proxy-name` label,
    or with `service_proxy_name`, only those labelled with that name.
    """

    def __init__(self, client: Client, *, node_name: str,
                 mode: Literal["nftables", "userspace"] = "nftables", table: str = "pyk8s",
                 cluster_cidr: str | None = "10.42.0.0/16", nft: Sequence[str] | None = None,
                 min_sync_interval: float = 0.1, retry_interval: float = 1.0,
                 listen_address: str = "0.0.0.0", udp_idle_timeout: float = 60.0,
                 service_proxy_name: str | None = None) -> None:
        if mode not in ("nftables", "userspace"):
            raise ValueError(f"unknown proxy mode {mode!r}")
        self.client = client
        self.node_name = node_name
        self.mode = mode
        self.cluster_cidr = cluster_cidr
        self.min_sync_interval = min_sync_interval
        self.retry_interval = retry_interval
        self.table = NftTable(table, nft=nft or (shutil.which("nft") or "/usr/sbin/nft",))
        self.userspace = (UserspaceProxier(listen_address=listen_address, udp_idle_timeout=udp_idle_timeout)
                          if mode == "userspace" else None)
        self.factory = SharedInformerFactory(client)
        # kube-proxy's selector: a service labelled for another proxy, or headless, is not ours.
        ours = (f"{PROXY_NAME_LABEL}={service_proxy_name}" if service_proxy_name else f"!{PROXY_NAME_LABEL}")
        self.services = self.factory.informer(SERVICES, label_selector=f"{ours},!{HEADLESS_LABEL}")
        self.slices = self.factory.informer(ENDPOINT_SLICES)
        self.slices.add_index(_SERVICE_INDEX, lambda o: [k] if (k := service_key_of_slice(o)) else [])
        self.applied: dict[str, ServicePort] = {}
        self.syncs = 0
        self.last_sync_seconds = 0.0
        self._dirty: set[str] = set()
        self._all_dirty = True
        self._changed = asyncio.Event()
        self._ports: dict[str, list[ServicePort]] = {}
        self._rules: dict[str, Ruleset] = {}
        self._redirects: dict[str, int] = {}
        self._warned_no_nft = False

    # --- change tracking ---------------------------------------------------------------------------

    def _mark(self, key: str | None) -> None:
        if key:
            self._dirty.add(key)
            self._changed.set()

    def _on_service(self, *objs: Obj | DeletedFinalStateUnknown) -> None:
        self._mark(object_key(objs[-1]))

    def _on_slice(self, *objs: Obj | DeletedFinalStateUnknown) -> None:
        for obj in objs:
            if isinstance(obj, DeletedFinalStateUnknown):
                obj = obj.obj
            self._mark(service_key_of_slice(obj))

    # --- the loop ----------------------------------------------------------------------------------

    async def run(self) -> None:
        """Follow the API and keep the rules current until cancelled (then call `cleanup()` to remove
        them, or leave them in place for a restart to take over)."""
        self.services.add_handler(self._on_service, self._on_service, self._on_service)
        self.slices.add_handler(self._on_slice, self._on_slice, self._on_slice)
        self.factory.start()
        try:
            await self.factory.wait_for_sync()
            self._changed.set()
            while True:
                await self._changed.wait()
                started = time.monotonic()
                try:
                    await self.sync()
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("service proxy: sync failed; retrying in %.1fs", self.retry_interval)
                    self._all_dirty = True
                    self._changed.set()
                    await asyncio.sleep(self.retry_interval)
                    continue
                await asyncio.sleep(max(0.0, self.min_sync_interval - (time.monotonic() - started)))
        finally:
            await self.factory.stop()

    async def sync(self) -> None:
        """Apply every change seen so far."""
        self._changed.clear()
        started = time.monotonic()
        dirty = set(self._dirty)
        self._dirty.clear()
        if self._all_dirty:
            dirty = {object_key(s) for s in self.services.lister.list()} | set(self._ports)
            self._all_dirty = False
        try:
            for key in dirty:
                self._refresh(key)
            all_ports = [sp for ports in self._ports.values() for sp in ports]
            if self.userspace is not None:
                redirects = await self.userspace.update(all_ports)
                if redirects != self._redirects:
                    self._redirects = redirects
                    dirty |= set(self._ports)  # the rules name the listeners' ports
            for key in dirty:
                self._render(key)
            try:
                await self.table.sync(self._merged())
            except FileNotFoundError:
                if self.userspace is None:
                    raise
                # A host without nft: the listeners still serve NodePorts; ClusterIPs need the redirect.
                if not self._warned_no_nft:
                    log.warning("service proxy: no nft command; ClusterIPs are not redirected to the "
                                "userspace proxy, only NodePorts answer")
                    self._warned_no_nft = True
        except BaseException:
            self._dirty |= dirty
            raise
        self.applied = {sp.key: sp for sp in all_ports}
        self.syncs += 1
        self.last_sync_seconds = time.monotonic() - started

    def _refresh(self, key: str) -> None:
        svc = self.services.indexer.get(key)
        if svc is None:
            self._ports.pop(key, None)
            return
        self._ports[key] = build_service_ports(svc, self.slices.indexer.by_index(_SERVICE_INDEX, key))

    def _render(self, key: str) -> None:
        ports = self._ports.get(key)
        if not ports:
            self._rules.pop(key, None)
            return
        self._rules[key] = render(ports, cluster_cidr=self.cluster_cidr,
                                  redirect_ports=self._redirects if self.userspace is not None else None)

    def _merged(self) -> Ruleset:
        rs = Ruleset()
        for part in self._rules.values():
            rs.chains.update(part.chains)
            rs.sets.update(part.sets)
            for m, elements in part.maps.items():
                rs.maps[m] += elements
        return rs

    async def cleanup(self) -> None:
        """Remove everything this proxy installed: the nft table and the userspace listeners."""
        if self.userspace is not None:
            await self.userspace.close()
        with contextlib.suppress(FileNotFoundError):
            await self.table.delete()
        self.applied = {}

