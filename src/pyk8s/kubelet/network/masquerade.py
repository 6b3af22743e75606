"""The node's masquerade rule: pod traffic leaving the cluster CIDR goes out with the node's address.

The bridge plugin's own `ipMasq` would do this per pod (a nat chain and three rules for each ADD, and
as many iptables runs again for DEL: most of an ADD's time), and it exempts only the node's pod CIDR,
so traffic to pods on other nodes would be masqueraded too. One node-wide chain exempting the whole
cluster CIDR is cheaper and right; it is written once per kubelet start, atomically.
"""

from __future__ import annotations

import asyncio

_COMMENT = "pyk8s: masquerade pod traffic leaving the cluster"


def chain_name(bridge: str) -> str:
    return f"PYK8S-MASQ-{bridge}"[:28]  # iptables' chain name limit


async def _iptables(binary: str, *args: str, stdin: bytes | None = None) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        binary, *args, stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    out, _ = await proc.communicate(stdin)
    return proc.returncode or 0, out.decode(errors="replace")


def _jump(pod_cidr: str, chain: str) -> list[str]:
    return ["POSTROUTING", "-s", pod_cidr, "-m", "comment", "--comment", _COMMENT, "-j", chain]


async def ensure(bridge: str, pod_cidr: str, cluster_cidr: str) -> None:
    """(Re)write the chain and make sure POSTROUTING sends the pod CIDR's traffic through it."""
    chain = chain_name(bridge)
    # Declaring the chain in a --noflush restore creates or empties it: one atomic rewrite.
    rules = (
        f"*nat\n:{chain} - [0:0]\n"
        f"-A {chain} -d {cluster_cidr} -j RETURN\n"
        f"-A {chain} -d 224.0.0.0/4 -j RETURN\n"
        f"-A {chain} -j MASQUERADE\n"
        "COMMIT\n"
    )
    rc, out = await _iptables("iptables-restore", "-w", "--noflush", stdin=rules.encode())
    if rc != 0:
        raise RuntimeError(f"iptables-restore of {chain} failed: {out.strip()}")
    sources = await _jump_sources(chain)
    for stale in sources - {pod_cidr}:  # the node's pod CIDR changed
        await _iptables("iptables", "-w", "-t", "nat", "-D", *_jump(stale, chain))
    if pod_cidr not in sources:
        rc, out = await _iptables("iptables", "-w", "-t", "nat", "-A", *_jump(pod_cidr, chain))
        if rc != 0:
            raise RuntimeError(f"adding the jump to {chain} failed: {out.strip()}")


async def _jump_sources(chain: str) -> set[str]:
    """The source CIDRs of POSTROUTING's jumps to `chain`."""
    _, listing = await _iptables("iptables", "-w", "-t", "nat", "-S", "POSTROUTING")
    sources = set()
    for line in listing.splitlines():
        words = line.split()
        if words[:2] == ["-A", "POSTROUTING"] and words[-2:] == ["-j", chain] and "-s" in words:
            sources.add(words[words.index("-s") + 1])
    return sources


async def remove(bridge: str) -> None:
    """Remove the chain and every POSTROUTING jump to it (idempotent)."""
    chain = chain_name(bridge)
    for source in await _jump_sources(chain):
        await _iptables("iptables", "-w", "-t", "nat", "-D", *_jump(source, chain))
    await _iptables("iptables", "-w", "-t", "nat", "-F", chain)
    await _iptables("iptables", "-w", "-t", "nat", "-X", chain)
