"""Pod CIDRs for nodes (Kubernetes' node-ipam-controller with the RangeAllocator).

Each Node gets `spec.podCIDR`/`podCIDRs`: the lowest free subnet of `cluster_cidr` with
`node_cidr_mask_size` bits. The set in use is rebuilt from the nodes themselves (their handlers run on the
informer's first list, before any node is reconciled), so a restarted controller never hands out a CIDR
twice; a deleted node's CIDR is free again.
"""

from __future__ import annotations

import ipaddress
import logging
from typing import Any

from pyk8s.api.catalog import require
from pyk8s.api.errors import StatusError
from pyk8s.client.cache import DeletedFinalStateUnknown
from pyk8s.client.controller import Controller, RetryLater
from pyk8s.client.events import WARNING
from pyk8s.controllers.manager import ControllerContext

__all__ = ["CIDRAllocator", "NodeIPAMController"]


NODES = require("", "Node")

log = logging.getLogger(__name__)


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class CIDRAllocator:
    """The subnets of one cluster CIDR, by index; `occupy` marks one taken, `allocate` takes the lowest."""

    def __init__(self, cluster_cidr: str, mask_size: int) -> None:
        self.network: Network = ipaddress.ip_network(cluster_cidr, strict=False)
        if mask_size < self.network.prefixlen or mask_size > self.network.max_prefixlen:
            raise ValueError(f"node CIDR mask size {mask_size} does not fit cluster CIDR {cluster_cidr}")
        self.mask_size = mask_size
        self.size = 1 << (mask_size - self.network.prefixlen)
        self._used: set[int] = set()
        self._next = 0

    def _index(self, cidr: str) -> int | None:
        try:
            net = ipaddress.ip_network(cidr, strict=False)
        except ValueError:
            return None
        if net.version != self.network.version or net.prefixlen != self.mask_size \
                or not net.subnet_of(self.network):  # type: ignore[arg-type]
            return None
        return (int(net.network_address) - int(self.network.network_address)) >> (
            self.network.max_prefixlen - self.mask_size)

    def occupy(self, cidr: str) -> bool:
        i = self._index(cidr)
        if i is None:
            return False
        self._used.add(i)
        return True

    def release(self, cidr: str) -> None:
        i = self._index(cidr)
        if i is not None:
            self._used.discard(i)

    def allocate(self) -> str | None:
        """The next free subnet (round-robin from the last one handed out, as Kubernetes' CidrSet)."""
        for step in range(self.size):
            i = (self._next + step) % self.size
            if i not in self._used:
                self._used.add(i)
                self._next = (i + 1) % self.size
                shift = self.network.max_prefixlen - self.mask_size
                addr = ipaddress.ip_address(int(self.network.network_address) + (i << shift))
                return f"{addr}/{self.mask_size}"
        return None

    def __len__(self) -> int:
        return len(self._used)


def _cidrs(node: dict[str, Any]) -> list[str]:
    spec = node.get("spec") or {}
    return list(spec.get("podCIDRs") or ([spec["podCIDR"]] if spec.get("podCIDR") else []))


class NodeIPAMController(Controller):
    name = "nodeipam"

    def __init__(self, ctx: ControllerContext) -> None:
        super().__init__(workers=1)
        self.client = ctx.client
        self.recorder = ctx.recorder("cidrAllocator")
        opts = ctx.options
        self.allocator = CIDRAllocator(opts.cluster_cidr, opts.node_cidr_mask_size)
        inf = ctx.informers.informer(NODES)
        self.nodes = inf.lister
        inf.add_handler(self._added, self._updated, self._deleted)

    def _added(self, node: dict[str, Any]) -> None:
        for cidr in _cidrs(node):
            self.allocator.occupy(cidr)
        if not _cidrs(node):
            self.enqueue(node)

    def _updated(self, old: dict[str, Any], new: dict[str, Any]) -> None:
        self._added(new)

    def _deleted(self, obj: dict[str, Any] | DeletedFinalStateUnknown) -> None:
        node = obj.obj if isinstance(obj, DeletedFinalStateUnknown) else obj
        for cidr in _cidrs(node):
            self.allocator.release(cidr)

    async def reconcile(self, key: str) -> float | None:
        node = self.nodes.get(key)
        if node is None or _cidrs(node) or (node.get("metadata") or {}).get("deletionTimestamp"):
            return None
        cidr = self.allocator.allocate()
        if cidr is None:
            self.recorder.record(node, WARNING, "CIDRNotAvailable",
                                 f"Node {key} status is now: CIDRNotAvailable")
            raise RetryLater(f"no pod CIDR left in {self.allocator.network} for node {key}")
        try:
            await self.client.patch(NODES, key, {"spec": {"podCIDR": cidr, "podCIDRs": [cidr]}})
        except StatusError as e:
            self.allocator.release(cidr)
            if e.code == 404:
                return None
            self.recorder.record(node, WARNING, "CIDRAssignmentFailed",
                                 f"Node {key} status is now: CIDRAssignmentFailed")
            raise
        log.info("nodeipam: node %s gets pod CIDR %s", key, cidr)
        return None
