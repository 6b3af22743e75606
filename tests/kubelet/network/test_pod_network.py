"""Pods wired by the reference CNI plugins: reachability, hostPort, masquerade, clean teardown, restart."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import os
import random
import secrets
import subprocess
from collections.abc import Iterator

import pytest

from pyk8s.kubelet.cri import PortMapping
from pyk8s.kubelet.network import CNIError, PodNetwork
from pyk8s.kubelet.network.masquerade import chain_name
from tests.kubelet.network.conftest import CNI_BIN, Node, in_pod_until_ok, ip, tcp_read


def sid() -> str:
    return secrets.token_hex(16)


def touch(path: str) -> None:
    with open(path, "w"):
        pass


def exists(path: str) -> bool:
    return os.path.exists(path)


def reservations(net: PodNetwork) -> list[str]:
    """host-local's reservation files (one per allocated IP)."""
    d = os.path.join(net.state_dir, "ipam", "pyk8s")
    if not os.path.isdir(d):
        return []
    return [n for n in os.listdir(d) if n != "lock" and not n.startswith("last_reserved_ip")]


async def nat_rules(node: Node) -> str:
    rc, out = await node.run("iptables-save", "-t", "nat")
    assert rc == 0, out
    return out


async def veths(node: Node) -> str:
    rc, out = await node.run("ip", "-o", "link", "show", "type", "veth")
    assert rc == 0, out
    return out


async def no_veths(node: Node, deadline: float = 5.0) -> None:
    """No veth is left on the node (the kernel destroys a dead netns's links asynchronously)."""
    loop = asyncio.get_running_loop()
    end = loop.time() + deadline
    while (left := await veths(node)) != "":
        assert loop.time() < end, f"veths left: {left}"
        await asyncio.sleep(0.05)


async def test_two_pods_reach_each_other_and_the_node(node: Node, net: PodNetwork) -> None:
    a, b = sid(), sid()
    ns_a, ns_b = await net.create_netns(a), await net.create_netns(b)
    ip_a = await net.setup(a, ns_a, [])
    ip_b = await net.setup(b, ns_b, [])
    subnet = ipaddress.ip_network(node.cidr)
    assert ip_a != ip_b
    assert ipaddress.ip_address(ip_a) in subnet and ipaddress.ip_address(ip_b) in subnet
    # eth0 in the pod carries the IP; lo is up (the loopback plugin).
    rc, out = await node.in_pod(ns_a, "ip", "-o", "addr", "show")
    assert rc == 0 and f"inet {ip_a}/24" in out and "inet 127.0.0.1/8" in out, out

    await in_pod_until_ok(node, ns_a, "/bin/busybox", "ping", "-c", "1", "-W", "2", ip_b)
    await in_pod_until_ok(node, ns_b, "/bin/busybox", "ping", "-c", "1", "-W", "2", node.gateway)
    await node.serve_pong(ns_a, 5000)
    out = await in_pod_until_ok(node, ns_b, "/bin/busybox", "nc", "-w", "2", ip_a, "5000")
    assert out.strip() == "pong"
    # The node reaches the pod too (the bridge is the gateway, on the node).
    assert (await tcp_read(ip_a, 5000)).strip() == b"pong"


@contextlib.contextmanager
def outside_host(node: Node, near: str, far: str) -> Iterator[str]:
    """A netns linked to the node by a veth (node side `near`/30, its side `far`/30), with a route
    back to the node's pod CIDR only through the node, and a rule counting what arrives by source."""
    outside = f"pyk8s-out-{secrets.token_hex(3)}"
    ip("netns", "add", outside)
    try:
        veth = f"pko{secrets.token_hex(3)}"
        ip("-n", node.name, "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", outside)
        ip("-n", node.name, "addr", "add", f"{near}/30", "dev", veth)
        ip("-n", node.name, "link", "set", veth, "up")
        ip("-n", outside, "addr", "add", f"{far}/30", "dev", "eth0")
        ip("-n", outside, "link", "set", "eth0", "up")
        ip("-n", outside, "route", "add", node.cidr, "via", near)
        yield outside
    finally:
        ip("netns", "del", outside)


def packets_from(outside: str, source: str) -> int:
    """Packets the outside host received from `source` (a counting rule added on first use)."""
    rule = ["INPUT", "-s", source, "-p", "icmp"]
    check = subprocess.run(["ip", "netns", "exec", outside, "iptables", "-w", "-C", *rule], check=False,
                           capture_output=True)
    if check.returncode != 0:
        subprocess.run(["ip", "netns", "exec", outside, "iptables", "-w", "-A", *rule], check=True)
        return 0
    out = subprocess.run(["ip", "netns", "exec", outside, "iptables", "-w", "-nvxL", "INPUT"], check=True,
                         capture_output=True, text=True).stdout
    return sum(int(line.split()[0]) for line in out.splitlines()[2:] if f" {source} " in line)


async def test_masquerade_for_traffic_leaving_the_cluster_cidr(node: Node, net: PodNetwork) -> None:
    with outside_host(node, "198.51.100.1", "198.51.100.2") as outside:
        s = sid()
        path = await net.create_netns(s)
        pod_ip = await net.setup(s, path, [])
        for source in (pod_ip, "198.51.100.1"):
            packets_from(outside, source)  # installs the counting rules
        await in_pod_until_ok(node, path, "/bin/busybox", "ping", "-c", "1", "-W", "2", "198.51.100.2")
        assert packets_from(outside, "198.51.100.1") >= 1  # it came from the node's address
        assert packets_from(outside, pod_ip) == 0
        rules = await nat_rules(node)
        assert f"-A POSTROUTING -s {node.cidr}" in rules and f"-j {chain_name(node.bridge)}" in rules


async def test_no_masquerade_inside_the_cluster_cidr(node: Node, tmp_path: str) -> None:
    """A pod on another node (an address in the cluster CIDR) sees the pod's own IP."""
    third = int(node.cidr.split(".")[2])
    other = f"10.88.{(third + 1) % 254 + 1}"
    net = PodNetwork(os.path.join(str(tmp_path), "cni"), CNI_BIN, node.bridge, cluster_cidr="10.88.0.0/16")
    net.set_pod_cidr(node.cidr)
    try:
        with outside_host(node, f"{other}.1", f"{other}.2") as outside:
            s = sid()
            path = await net.create_netns(s)
            pod_ip = await net.setup(s, path, [])
            for source in (pod_ip, f"{other}.1"):
                packets_from(outside, source)  # installs the counting rules
            await in_pod_until_ok(node, path, "/bin/busybox", "ping", "-c", "1", "-W", "2", f"{other}.2")
            assert packets_from(outside, pod_ip) >= 1
            assert packets_from(outside, f"{other}.1") == 0
    finally:
        net.cleanup_all()
    assert chain_name(node.bridge) not in await nat_rules(node)  # cleanup_all removed the node rule


async def test_host_port_reaches_the_pod_from_node_loopback_and_address(node: Node, net: PodNetwork) -> None:
    # The node's own address (on lo: this kernel has no dummy links).
    ip("-n", node.name, "addr", "add", "192.0.2.10/32", "dev", "lo")
    s = sid()
    path = await net.create_netns(s)
    host_port = random.randint(20000, 30000)
    # A containerPort without hostPort maps nothing (as Kubernetes).
    mappings = [PortMapping(container_port=8080, host_port=host_port), PortMapping(9, host_port=0)]
    pod_ip = await net.setup(s, path, mappings)
    await node.serve_pong(path, 8080)
    assert (await tcp_read(pod_ip, 8080)).strip() == b"pong"
    assert (await tcp_read("127.0.0.1", host_port)).strip() == b"pong"
    assert (await tcp_read("192.0.2.10", host_port)).strip() == b"pong"
    # A second pod reaches the first through the node's hostPort too (hairpin/SNAT path).
    other = sid()
    other_path = await net.create_netns(other)
    await net.setup(other, other_path, [])
    out = await in_pod_until_ok(node, other_path, "/bin/busybox", "nc", "-w", "2", "192.0.2.10",
                                str(host_port))
    assert out.strip() == "pong"
    # Even a pod reaching its own hostPort comes back to itself (hairpin mode).
    out = await in_pod_until_ok(node, path, "/bin/busybox", "nc", "-w", "2", "192.0.2.10", str(host_port))
    assert out.strip() == "pong"


async def test_teardown_leaves_nothing_and_is_idempotent(node: Node, net: PodNetwork) -> None:
    s = sid()
    path = await net.create_netns(s)
    ports = [PortMapping(container_port=80, host_port=random.randint(20000, 30000))]
    pod_ip = await net.setup(s, path, ports)
    rules = await nat_rules(node)
    assert s in rules and "CNI-DN-" in rules
    assert len(reservations(net)) == 1
    assert "veth" in await veths(node)
    assert await net.status(s, path) == pod_ip

    await net.teardown(s, path, ports)
    rules = await nat_rules(node)
    assert s not in rules and "CNI-DN-" not in rules
    assert pod_ip not in rules
    assert reservations(net) == []
    assert await veths(node) == ""
    assert await net.status(s, path) is None
    await net.teardown(s, path, ports)  # again: nothing to do, no error

    await net.delete_netns(path)
    assert not exists(path)
    assert os.path.basename(path) not in ip("netns", "list")
    await net.delete_netns(path)  # again: fine


async def test_teardown_after_the_netns_is_gone_still_frees_everything(node: Node, net: PodNetwork) -> None:
    s = sid()
    path = await net.create_netns(s)
    await net.setup(s, path, [])
    await net.delete_netns(path)
    await net.teardown(s, path, [])
    rules = await nat_rules(node)
    assert s not in rules
    assert reservations(net) == []
    await no_veths(node)


async def test_status_is_found_again_by_a_new_instance(node: Node, net: PodNetwork) -> None:
    s = sid()
    path = await net.create_netns(s)
    pod_ip = await net.setup(s, path, [])
    restarted = PodNetwork(net.state_dir, CNI_BIN, node.bridge)
    assert await restarted.status(s, path) == pod_ip
    await restarted.check(s, path)  # CNI CHECK: bridge, veth and address are as ADD left them
    assert await restarted.status(sid(), path) is None
    # The restarted instance tears it down from the cached config, without a pod CIDR set.
    await restarted.teardown(s, path, [])
    assert reservations(net) == []
    assert await veths(node) == ""


async def test_a_failed_add_is_rolled_back_and_reported(node: Node, net: PodNetwork) -> None:
    s = sid()
    missing = f"/run/netns/pyk8s-missing-{s}"
    with pytest.raises(CNIError) as info:
        await net.setup(s, missing, [])
    assert info.value.plugin == "bridge" and info.value.command == "ADD"
    assert missing in str(info.value)
    assert reservations(net) == []
    assert s not in await nat_rules(node)
    assert await net.status(s, missing) is None


async def test_twenty_concurrent_setups_get_distinct_ips_and_tear_down_cleanly(
    node: Node, net: PodNetwork
) -> None:
    ids = [sid() for _ in range(20)]
    paths = await asyncio.gather(*(net.create_netns(s) for s in ids))
    base = random.randint(20000, 29000)
    ports = {s: [PortMapping(container_port=80, host_port=base + i)] if i < 3 else []
             for i, s in enumerate(ids)}
    ips = await asyncio.gather(*(net.setup(s, p, ports[s]) for s, p in zip(ids, paths, strict=True)))
    assert len(set(ips)) == 20
    assert all(ipaddress.ip_address(a) in ipaddress.ip_network(node.cidr) for a in ips)
    assert len(reservations(net)) == 20
    # The last pod reaches the first: all share one working bridge.
    await in_pod_until_ok(node, paths[-1], "/bin/busybox", "ping", "-c", "1", "-W", "2", ips[0])

    await asyncio.gather(*(net.teardown(s, p, ports[s]) for s, p in zip(ids, paths, strict=True)))
    await asyncio.gather(*(net.delete_netns(p) for p in paths))
    assert reservations(net) == []
    assert await veths(node) == ""
    rules = await nat_rules(node)
    assert not any(s in rules for s in ids) and "CNI-DN-" not in rules
    assert not any(exists(p) for p in paths)


async def test_a_repeated_setup_returns_the_same_ip_without_a_second_reservation(
    node: Node, net: PodNetwork
) -> None:
    s = sid()
    path = await net.create_netns(s)
    first = await net.setup(s, path, [])
    assert await net.setup(s, path, []) == first
    assert len(reservations(net)) == 1
    await in_pod_until_ok(node, path, "/bin/busybox", "ping", "-c", "1", "-W", "2", node.gateway)


async def test_create_netns_refuses_a_live_one_and_replaces_a_stale_file(net: PodNetwork) -> None:
    s = sid()
    path = await net.create_netns(s)
    with pytest.raises(FileExistsError):
        await net.create_netns(s)
    await net.delete_netns(path)
    touch(path)  # what a crash between creating the file and mounting on it leaves
    assert await net.create_netns(s) == path
    assert "pyk8s-" + s in ip("netns", "list")
    ip("netns", "exec", os.path.basename(path), "true")  # raises unless it is a namespace

