"""Service ClusterIP and NodePort allocation, as Kubernetes' service REST storage does it.

The services in the store are the only record of what is allocated: the in-memory sets are rebuilt from
them at start (the repair pass) and changed only around a service write, in one synchronous step on the
event loop (so concurrent requests never get the same address). A write that fails gives back what it
took; what an update or a delete frees is released only once the write succeeded. A crash therefore
loses nothing and leaks nothing: the next start reads the services again.

This holds for one API server process per store, which is how pyk8s runs.
"""

from __future__ import annotations

import ipaddress
import itertools
import random
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import orjson

from pyk8s.api import errors
from pyk8s.api.errors import Cause
from pyk8s.apiserver.interfaces import Obj
from pyk8s.store.protocol import Store

DEFAULT_SERVICE_CIDR = "10.43.0.0/16"
DEFAULT_NODE_PORT_RANGE = (30000, 32767)
DNS_OFFSET = 10  # 10.43.0.10: the cluster DNS, handed out only when asked for by address
_IP_FAMILY = {4: "IPv4", 6: "IPv6"}

__all__ = [
    "DEFAULT_NODE_PORT_RANGE",
    "DEFAULT_SERVICE_CIDR",
    "ServiceAllocator",
    "dns_service_ip",
    "first_service_ip",
]


def first_service_ip(service_cidr: str) -> str:
    """The `kubernetes` service's address: the first address after the network address."""
    net = ipaddress.ip_network(service_cidr, strict=False)
    return str(net.network_address + 1)


def dns_service_ip(service_cidr: str) -> str:
    net = ipaddress.ip_network(service_cidr, strict=False)
    return str(net.network_address + DNS_OFFSET)


def _static_band(size: int, step: int, cap: int) -> int:
    """Kubernetes' split (KEP-3070, KEP-3668): a lower band of min(max(16, size/step), cap) is kept
    for addresses and ports asked for by value; automatic picks come from the upper band first."""
    return min(max(16, size // step), cap)


def _go_strings(values: list[Any]) -> str:
    return "[]string{" + ", ".join(f'"{v}"' for v in values) + "}"


def _invalid(name: str, path: str, shown: str, detail: str) -> errors.StatusError:
    cause = Cause("FieldValueInvalid", f"Invalid value: {shown}: {detail}", path)
    return errors.invalid("Service", name, [cause])


def _spec(svc: Obj) -> dict[str, Any]:
    spec = svc.get("spec")
    return spec if isinstance(spec, dict) else {}


def _ports(svc: Obj) -> list[dict[str, Any]]:
    return [p for p in _spec(svc).get("ports") or [] if isinstance(p, dict)]


def _needs_cluster_ip(svc: Obj) -> bool:
    return _spec(svc).get("type") != "ExternalName"


def _headless(svc: Obj) -> bool:
    spec = _spec(svc)
    ips = spec.get("clusterIPs") or []
    return spec.get("clusterIP") == "None" or (isinstance(ips, list) and ips[:1] == ["None"])


def _needs_node_ports(svc: Obj) -> bool:
    return _spec(svc).get("type") in ("NodePort", "LoadBalancer")


def _allocates_node_ports(svc: Obj) -> bool:
    spec = _spec(svc)
    if spec.get("type") == "NodePort":
        return True
    return spec.get("type") == "LoadBalancer" and spec.get("allocateLoadBalancerNodePorts", True) is not False


def cluster_ips_of(svc: Obj) -> list[str]:
    """The addresses a stored service holds."""
    if not _needs_cluster_ip(svc) or _headless(svc):
        return []
    spec = _spec(svc)
    ips = spec.get("clusterIPs") or ([spec["clusterIP"]] if spec.get("clusterIP") else [])
    return [ip for ip in ips if isinstance(ip, str) and ip]


def node_ports_of(svc: Obj) -> set[int]:
    if not _needs_node_ports(svc):
        return set()
    return {p["nodePort"] for p in _ports(svc) if isinstance(p.get("nodePort"), int) and p["nodePort"]}


class _Pool:
    """A range of integers, some taken; picks at random from the upper band, then the lower."""

    def __init__(self, first: int, last: int, band: int, reserved: frozenset[int] = frozenset()) -> None:
        self.first, self.last = first, last
        self.band_start = min(first + band, last)
        self.reserved = reserved  # never handed out automatically
        self.used: set[int] = set()

    def __contains__(self, n: int) -> bool:
        return self.first <= n <= self.last

    def take(self, n: int) -> bool:
        if n in self.used:
            return False
        self.used.add(n)
        return True

    def take_next(self) -> int | None:
        for lo, hi in ((self.band_start, self.last), (self.first, self.band_start - 1)):
            if lo > hi:
                continue
            start = random.randint(lo, hi)
            for n in itertools.chain(range(start, hi + 1), range(lo, start)):
                if n not in self.used and n not in self.reserved:
                    self.used.add(n)
                    return n
        return None

    def release(self, n: int) -> None:
        self.used.discard(n)


class _Txn:
    """What one write took (given back if the write fails) and frees (released once it succeeded)."""

    def __init__(self, alloc: ServiceAllocator) -> None:
        self.alloc = alloc
        self.ips: list[int] = []
        self.ports: list[int] = []
        self.free_ips: list[int] = []
        self.free_ports: list[int] = []

    def revert(self) -> None:
        for ip in self.ips:
            self.alloc.ips.release(ip)
        for port in self.ports:
            self.alloc.ports.release(port)

    def commit(self) -> None:
        for ip in self.free_ips:
            self.alloc.ips.release(ip)
        for port in self.free_ports:
            self.alloc.ports.release(port)


class ServiceAllocator:
    def __init__(
        self, service_cidr: str = DEFAULT_SERVICE_CIDR, node_ports: tuple[int, int] = DEFAULT_NODE_PORT_RANGE
    ) -> None:
        self.network = ipaddress.ip_network(service_cidr, strict=False)
        self.family = _IP_FAMILY[self.network.version]
        base = int(self.network.network_address)
        # Usable: from the first address after the network address; IPv4 keeps its broadcast address.
        last = int(self.network.broadcast_address) - (1 if self.network.version == 4 else 0)
        size = last - base
        reserved = frozenset({base + 1, base + DNS_OFFSET})
        self.ips = _Pool(base + 1, last, _static_band(size, 16, 256), reserved)
        self.port_range = f"{node_ports[0]}-{node_ports[1]}"
        port_band = _static_band(node_ports[1] - node_ports[0] + 1, 32, 128)
        self.ports = _Pool(node_ports[0], node_ports[1], port_band)

    # -- repair --------------------------------------------------------------------------------------

    async def repair(self, store: Store, prefix: str = "/registry/core/services/") -> None:
        """Rebuild the allocations from the services in the store (at start, before serving)."""
        self.ips.used.clear()
        self.ports.used.clear()
        after: str | None = None
        while True:
            page = await store.list(prefix, limit=500, continue_after=after)
            for kv in page.items:
                try:
                    svc = orjson.loads(kv.value)
                except orjson.JSONDecodeError:
                    continue
                if isinstance(svc, dict):
                    self._mark(svc)
            if not page.more or not page.items:
                return
            after = page.items[-1].key

    def _mark(self, svc: Obj) -> None:
        for ip in cluster_ips_of(svc):
            n = self._ip_int(ip)
            if n is not None:
                self.ips.used.add(n)
        for port in node_ports_of(svc):
            if port in self.ports:
                self.ports.used.add(port)

    def _ip_int(self, ip: str) -> int | None:
        try:
            addr = ipaddress.ip_address(ip)
        except ValueError:
            return None
        return int(addr) if addr in self.network else None

    # -- one write -----------------------------------------------------------------------------------

    @contextmanager
    def transaction(self, svc: Obj, old: Obj | None, dry_run: bool = False) -> Iterator[None]:
        """Fill and take `svc`'s addresses and ports (422 when a requested one is out of range or taken);
        the body of the `with` is the write. Failure gives back what was taken; success releases what
        `old` held and `svc` no longer does. A dry run takes nothing for good."""
        txn = _Txn(self)
        if isinstance(svc.get("spec"), dict):  # a patched spec may share its lists with `old`'s
            svc["spec"] = orjson.loads(orjson.dumps(svc["spec"]))
        try:
            if old is not None:
                _drop_type_dependent_fields(svc, old)
                _patch_allocated_values(svc, old)
            self._alloc_ips(svc, old, txn)
            self._alloc_ports(svc, old, txn)
        except BaseException:
            txn.revert()
            raise
        try:
            yield
        except BaseException:
            txn.revert()
            raise
        if dry_run:
            txn.revert()
        else:
            txn.commit()

    def release(self, svc: Obj) -> None:
        """A deleted service gives back everything it held."""
        for ip in cluster_ips_of(svc):
            n = self._ip_int(ip)
            if n is not None:
                self.ips.release(n)
        for port in node_ports_of(svc):
            self.ports.release(port)

    def _alloc_ips(self, svc: Obj, old: Obj | None, txn: _Txn) -> None:
        spec = svc.setdefault("spec", {})
        name = svc.get("metadata", {}).get("name", "")
        old_ips = cluster_ips_of(old) if old is not None else []
        if not _needs_cluster_ip(svc):
            for ip in old_ips:  # to ExternalName: the address goes
                n = self._ip_int(ip)
                if n is not None:
                    txn.free_ips.append(n)
            return
        if _headless(svc):
            spec["clusterIP"] = "None"
            spec["clusterIPs"] = ["None"]
            for ip in old_ips:
                n = self._ip_int(ip)
                if n is not None:
                    txn.free_ips.append(n)
            return
        ips = spec.get("clusterIPs") or ([spec["clusterIP"]] if spec.get("clusterIP") else [])
        if not isinstance(ips, list):
            return  # validation reports it
        requested = ips[0] if ips and isinstance(ips[0], str) else ""
        if old_ips and requested == old_ips[0]:
            return  # kept (validation refuses a changed address)
        if old_ips and requested:
            return  # a change of address: validation refuses it
        for ip in old_ips:
            n = self._ip_int(ip)
            if n is not None:
                txn.free_ips.append(n)
        if requested:
            try:
                addr = ipaddress.ip_address(requested)
            except ValueError:
                return  # validation reports a malformed address
            if addr not in self.network or int(addr) not in self.ips:
                detail = (
                    f"failed to allocate IP {requested}: the provided IP ({requested}) is not in the valid "
                    f"range. The range of valid IPs is {self.network}"
                )
                raise _invalid(name, "spec.clusterIPs", _go_strings(ips), detail)
            if not self.ips.take(int(addr)):
                detail = f"failed to allocate IP {requested}: provided IP is already allocated"
                raise _invalid(name, "spec.clusterIPs", _go_strings(ips), detail)
            txn.ips.append(int(addr))
            chosen = str(addr)
        else:
            n = self.ips.take_next()
            if n is None:
                raise errors.internal("failed to allocate a serviceIP: range is full")
            txn.ips.append(n)
            chosen = str(ipaddress.ip_address(n))
        spec["clusterIP"] = chosen
        spec["clusterIPs"] = [chosen]
        spec["ipFamilies"] = [self.family]
        spec["ipFamilyPolicy"] = spec.get("ipFamilyPolicy") or "SingleStack"

    def _alloc_ports(self, svc: Obj, old: Obj | None, txn: _Txn) -> None:
        name = svc.get("metadata", {}).get("name", "")
        old_ports = node_ports_of(old) if old is not None else set()
        if not _needs_node_ports(svc):
            txn.free_ports.extend(p for p in old_ports if p in self.ports)
            return
        auto = _allocates_node_ports(svc)
        by_port: dict[Any, int] = {}  # one node port serves a port number over several protocols
        taken_now: set[int] = set()
        for i, port in enumerate(_ports(svc)):
            requested = port.get("nodePort") or 0
            if not isinstance(requested, int):
                continue  # validation reports it
            if not requested:
                if port.get("port") in by_port:
                    port["nodePort"] = by_port[port.get("port")]
                    continue
                if not auto:
                    continue
                n = self.ports.take_next()
                if n is None:
                    raise errors.internal("failed to allocate a nodePort: range is full")
                txn.ports.append(n)
                taken_now.add(n)
                port["nodePort"] = n
            elif requested not in old_ports and requested not in taken_now:
                if requested not in self.ports:
                    detail = "provided port is not in the valid range. The range of valid ports is "
                    detail += self.port_range
                    raise _invalid(name, f"spec.ports[{i}].nodePort", str(requested), detail)
                if not self.ports.take(requested):
                    raise _invalid(name, f"spec.ports[{i}].nodePort", str(requested),
                                   "provided port is already allocated")  # fmt: skip
                txn.ports.append(requested)
                taken_now.add(requested)
            by_port.setdefault(port.get("port"), port["nodePort"])
        kept = node_ports_of(svc)
        txn.free_ports.extend(p for p in old_ports if p not in kept and p in self.ports)


def _drop_type_dependent_fields(svc: Obj, old: Obj) -> None:
    """A type change drops the values the old type had allocated, unless the client changed them
    (Kubernetes' dropTypeDependentFields): `kubectl patch -p '{"spec":{"type":"ClusterIP"}}'` on a
    NodePort service works, while a node port the client sets on purpose is still refused."""
    spec, old_spec = svc.setdefault("spec", {}), _spec(old)
    if _needs_cluster_ip(old) and not _needs_cluster_ip(svc):
        for key in ("clusterIP", "clusterIPs", "ipFamilies", "ipFamilyPolicy"):
            if spec.get(key) == old_spec.get(key):
                spec.pop(key, None)
    if _needs_node_ports(old) and not _needs_node_ports(svc):
        ports, old_ports = _ports(svc), _ports(old)
        if [p.get("nodePort") for p in ports] == [p.get("nodePort") for p in old_ports[: len(ports)]]:
            for port in ports:
                port.pop("nodePort", None)
    keys = ("externalTrafficPolicy", "allocateLoadBalancerNodePorts")
    same = {k for k in keys if spec.get(k) == old_spec.get(k)}
    if _externally_accessible(old) and not _externally_accessible(svc) and "externalTrafficPolicy" in same:
        spec.pop("externalTrafficPolicy", None)
    lb_gone = old_spec.get("type") == "LoadBalancer" and spec.get("type") != "LoadBalancer"
    if lb_gone and "allocateLoadBalancerNodePorts" in same:
        spec.pop("allocateLoadBalancerNodePorts", None)


def _externally_accessible(svc: Obj) -> bool:
    spec = _spec(svc)
    return _needs_node_ports(svc) or (spec.get("type") == "ClusterIP" and bool(spec.get("externalIPs")))


def _patch_allocated_values(svc: Obj, old: Obj) -> None:
    """An update that leaves out the allocated values keeps them (Kubernetes' patchAllocatedValues):
    `kubectl replace` and apply of a manifest without clusterIP or nodePort must not reallocate."""
    spec, old_spec = svc.setdefault("spec", {}), _spec(old)
    if _needs_cluster_ip(old) and _needs_cluster_ip(svc):
        if not spec.get("clusterIP") and old_spec.get("clusterIP"):
            spec["clusterIP"] = old_spec["clusterIP"]
        if not spec.get("clusterIPs") and old_spec.get("clusterIPs"):
            spec["clusterIPs"] = list(old_spec["clusterIPs"])
    if _needs_node_ports(old) and _needs_node_ports(svc):
        used = node_ports_of(old) & node_ports_of(svc)
        by_name = {p.get("name", ""): p.get("nodePort") for p in _ports(old)}
        for port in _ports(svc):
            if not port.get("nodePort"):
                value = by_name.get(port.get("name", ""))
                if isinstance(value, int) and value and value not in used:
                    port["nodePort"] = value
