"""The proxy's nftables table: rendering the desired rules and applying them in one transaction per sync.

The structure follows Kubernetes' nftables proxier (pkg/proxy/nftables): verdict maps keep the rule
count flat — `service-ips` maps ClusterIP . protocol . port to a per-service chain, `service-nodeports`
maps protocol . port (on a local destination address) to a chain that marks for masquerade first; a
service chain spreads new connections with `numgen random mod N vmap` over per-endpoint chains that
DNAT. Services without endpoints are in the `no-endpoint-*` maps, whose verdict jumps to a chain that
rejects (TCP reset, ICMP port-unreachable), checked in filter chains that run before NAT.
Session affinity is kube-proxy's: one dynamic set of client addresses per endpoint with the affinity
timeout, refreshed on each new connection and consulted before the random spread.

Only the table is touched: other software's tables are left alone. A sync sends one `nft -f` script —
one kernel transaction, so packets never see half a ruleset — that rewrites the maps and only the chains
whose rules changed; the first sync (and any after a failure) replaces the whole table.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from pyk8s.proxy.model import ServicePort

__all__ = ["NftError", "NftTable", "Ruleset", "render"]

MASQ_MARK = "0x4000"
# Marked inline (one statement) rather than by a jump to kube-proxy's mark-for-masquerade chain.
_MARK = f"meta mark set meta mark or {MASQ_MARK}"
_MAPS = {
    "service-ips": "ipv4_addr . inet_proto . inet_service : verdict",
    "service-nodeports": "inet_proto . inet_service : verdict",
    "no-endpoint-services": "ipv4_addr . inet_proto . inet_service : verdict",
    "no-endpoint-nodeports": "inet_proto . inet_service : verdict",
}


class NftError(RuntimeError):
    pass


@dataclass
class Ruleset:
    """The table's variable part: chains (name → rules), map elements, affinity sets (name → timeout)."""

    chains: dict[str, tuple[str, ...]] = field(default_factory=dict)
    maps: dict[str, list[str]] = field(default_factory=lambda: {m: [] for m in _MAPS})
    sets: dict[str, int] = field(default_factory=dict)


def _h(*parts: object) -> str:
    return hashlib.sha256("|".join(map(str, parts)).encode()).hexdigest()[:16]


def svc_chain(sp: ServicePort) -> str:
    return f"svc-{_h(sp.key)}"


def render(ports: Iterable[ServicePort], *, cluster_cidr: str | None,
           redirect_ports: dict[str, int] | None = None) -> Ruleset:
    """The rules for these service ports. With `redirect_ports` (userspace mode: service port key →
    local proxy port) a service port is redirected to the proxy's listener instead of DNATed to
    endpoints; NodePorts are then left to the listener, which binds them itself."""
    rs = Ruleset()
    userspace = redirect_ports is not None
    for sp in ports:
        proto = sp.protocol.lower()
        name = svc_chain(sp)
        if not sp.endpoints:
            for ip in sp.cluster_ips:
                rs.maps["no-endpoint-services"].append(f"{ip} . {proto} . {sp.port} : goto reject-chain")
            if sp.node_port:
                rs.maps["no-endpoint-nodeports"].append(f"{proto} . {sp.node_port} : goto reject-chain")
            continue
        if userspace:
            assert redirect_ports is not None
            local = redirect_ports.get(sp.key)
            if not local:
                continue
            rs.chains[name] = (f"meta l4proto {proto} redirect to :{local}",)
            for ip in sp.cluster_ips:
                rs.maps["service-ips"].append(f"{ip} . {proto} . {sp.port} : goto {name}")
            continue
        for ip in sp.cluster_ips:
            rs.maps["service-ips"].append(f"{ip} . {proto} . {sp.port} : goto {name}")
        if sp.node_port:
            ext = f"ext-{_h(sp.key)}"
            rs.chains[ext] = (_MARK, f"goto {name}")
            rs.maps["service-nodeports"].append(f"{proto} . {sp.node_port} : goto {ext}")
        rules: list[str] = []
        if cluster_cidr:  # traffic from outside the pod network must come back through this node
            rules.append(f"ip saddr != {cluster_cidr} {_MARK}")
        ep_chains = []
        for ep in sp.endpoints:
            ep_name = f"ep-{_h(sp.key, ep.ip, ep.port)}"
            ep_chains.append(ep_name)
            ep_rules = [f"ip saddr {ep.ip} {_MARK}"]  # hairpin: a pod reaching itself
            if sp.affinity_timeout:
                aff = f"aff-{_h(sp.key, ep.ip, ep.port, sp.affinity_timeout)}"
                rs.sets[aff] = sp.affinity_timeout
                rules.append(f"ip saddr @{aff} goto {ep_name}")
                ep_rules.append(f"update @{aff} {{ ip saddr }}")
            ep_rules.append(f"meta l4proto {proto} dnat to {ep.ip}:{ep.port}")
            rs.chains[ep_name] = tuple(ep_rules)
        if len(ep_chains) == 1:
            rules.append(f"goto {ep_chains[0]}")
        else:
            vmap = ", ".join(f"{i} : goto {c}" for i, c in enumerate(ep_chains))
            rules.append(f"numgen random mod {len(ep_chains)} vmap {{ {vmap} }}")
        rs.chains[name] = tuple(rules)
    return rs


def _base(table: str, family: str) -> str:
    """The fixed chains: hooks, the services dispatch, masquerading, the no-endpoint check."""
    return f"""table {family} {table} {{
  comment "rules of the pyk8s service proxy"
{"".join(f"  map {m} {{ type {t}; }}{chr(10)}" for m, t in _MAPS.items())}
  chain masquerading {{
    meta mark and {MASQ_MARK} == 0 return
    meta mark set meta mark xor {MASQ_MARK}
    masquerade fully-random
  }}
  chain services {{
    ip daddr . meta l4proto . th dport vmap @service-ips
    fib daddr type local ip daddr != 127.0.0.0/8 meta l4proto . th dport vmap @service-nodeports
  }}
  chain reject-chain {{
    meta l4proto tcp reject with tcp reset
    reject
  }}
  chain service-endpoints-check {{ ip daddr . meta l4proto . th dport vmap @no-endpoint-services; }}
  chain nodeport-endpoints-check {{
    fib daddr type local ip daddr != 127.0.0.0/8 meta l4proto . th dport vmap @no-endpoint-nodeports
  }}
  chain nat-prerouting {{ type nat hook prerouting priority dstnat; policy accept; jump services; }}
  chain nat-output {{ type nat hook output priority -100; policy accept; jump services; }}
  chain nat-postrouting {{ type nat hook postrouting priority srcnat; policy accept; jump masquerading; }}
  chain filter-input {{
    type filter hook input priority -110; policy accept;
    ct state new jump nodeport-endpoints-check
    ct state new jump service-endpoints-check
  }}
  chain filter-forward {{
    type filter hook forward priority -110; policy accept;
    ct state new jump service-endpoints-check
  }}
  chain filter-output {{
    type filter hook output priority -110; policy accept;
    ct state new jump service-endpoints-check
    ct state new jump nodeport-endpoints-check
  }}
}}
"""


def _set_def(name: str, timeout: int) -> str:
    return f"set {name} {{ type ipv4_addr; flags dynamic,timeout; timeout {timeout}s; }}"


class NftTable:
    """The pyk8s-owned table in one network namespace; `sync()` makes it match a Ruleset."""

    def __init__(self, table: str = "pyk8s", *, family: str = "ip", nft: Sequence[str] = ("nft",)) -> None:
        self.table = table
        self.family = family
        self.nft = tuple(nft)
        self._applied: Ruleset | None = None  # what the kernel holds; None = unknown, rewrite all

    def script(self, rs: Ruleset) -> str:
        """The nft script that turns the applied ruleset into `rs` (all of it when nothing is known)."""
        t = f"{self.family} {self.table}"
        old = self._applied
        out: list[str] = []
        if old is None:
            out += [f"add table {t}", f"delete table {t}", _base(self.table, self.family)]
            old = Ruleset()
        # Order matters inside the transaction: a rule or map element may name only chains and sets that
        # exist already, so sets and empty new chains come first, then rules, then the maps.
        for name, timeout in rs.sets.items():
            if name not in old.sets:
                out.append(f"add {_set_def(name, timeout).replace('set ', f'set {t} ', 1)}")
        changed = [n for n, rules in rs.chains.items() if old.chains.get(n) != rules]
        out += [f"add chain {t} {n}" for n in changed if n not in old.chains]
        for name in changed:
            if name in old.chains:
                out.append(f"flush chain {t} {name}")
            out += [f"add rule {t} {name} {r}" for r in rs.chains[name]]
        # Maps are rewritten whole: cheap (one element per service port) and never stale.
        for m in _MAPS:
            if old.maps[m] != rs.maps[m]:
                out.append(f"flush map {t} {m}")
                if rs.maps[m]:
                    out.append(f"add element {t} {m} {{ {', '.join(rs.maps[m])} }}")
        # Deletions last: nothing refers to these chains and sets any more.
        gone = [n for n in old.chains if n not in rs.chains]
        out += [f"flush chain {t} {n}" for n in gone]
        out += [f"delete chain {t} {n}" for n in gone]
        out += [f"delete set {t} {n}" for n in old.sets if n not in rs.sets]
        return "\n".join(out) + "\n"

    async def sync(self, rs: Ruleset) -> None:
        script = self.script(rs)
        try:
            await self._run(["-f", "-"], script)
        except BaseException:
            self._applied = None  # the kernel's state is unknown: rewrite everything next time
            raise
        self._applied = rs

    async def delete(self) -> None:
        """Remove the table (and nothing else); absent already is fine."""
        self._applied = None
        await self._run(["-f", "-"], f"add table {self.family} {self.table}\n"
                                     f"delete table {self.family} {self.table}\n")

    async def _run(self, args: list[str], stdin: str) -> None:
        proc = await asyncio.create_subprocess_exec(
            *self.nft, *args, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE)
        _, err = await proc.communicate(stdin.encode())
        if proc.returncode != 0:
            raise NftError(f"nft failed ({proc.returncode}): {err.decode(errors='replace').strip()[:2000]}")
