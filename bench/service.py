"""Service proxy benchmark: HTTP through a ClusterIP in nftables and userspace mode beside direct pod IP,
and the time from an API change to rules in place with many services, measured in the same run.

Topology (tests/proxy/netns.py): a node network namespace with a bridge, a backend pod serving HTTP, a
client pod. Requests per second: a Python asyncio load generator in the client pod, one new connection
per request (HTTP/1.0, as `ab` without -k), 16 at a time, to the pod IP directly and to a ClusterIP whose
one endpoint is that pod. Both proxies run at once, each as its own process in the node namespace with
its own table, each serving only its own service (service-proxy-name label); the three targets are
loaded in turn, ROUNDS times; a mode's figure against direct is the median of its per-round ratios.
Sync latency: a ServiceProxy (nftables mode) follows SERVICES services with ENDPOINTS endpoints each;
then, one change at a time, an EndpointSlice is updated (an endpoint replaced) or a service created or
deleted, and the time from the API write to the proxy's nft transaction having completed is recorded.
The last line is one JSON object.

    .venv/bin/python bench/service.py [--seconds 3] [--services 1000] [--endpoints 10] [--changes 60]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from aiohttp import web

from bench.stats import pct
from pyk8s.api.catalog import lookup
from pyk8s.client.client import Client
from pyk8s.client.transport import HTTPTransport
from pyk8s.proxy import ServiceProxy
from tests.proxy.netns import InNetns, ProxyThread, Topology, topology, wait_listening
from tests.support.apiserver import start_server

SERVICES = lookup("", "v1", "services")
SLICES = lookup("discovery.k8s.io", "v1", "endpointslices")
CONCURRENCY = 16


# --- load ------------------------------------------------------------------------------------------


async def _load(ip: str, port: int, seconds: float) -> float:
    loop = asyncio.get_running_loop()
    end = loop.time() + seconds
    done = 0
    failed = 0

    async def worker() -> None:
        nonlocal done, failed
        while loop.time() < end:
            try:
                reader, writer = await asyncio.open_connection(ip, port)
                writer.write(b"GET / HTTP/1.0\r\nHost: bench\r\n\r\n")
                data = await reader.read()
                writer.close()
            except OSError:
                failed += 1
                continue
            if data.startswith(b"HTTP/1.") and b" 200 " in data[:16]:
                done += 1
            else:
                failed += 1

    started = loop.time()
    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    if failed > done // 100:
        raise RuntimeError(f"{failed} requests failed to {ip}:{port}")
    return done / (loop.time() - started)


def load(ns: InNetns, ip: str, port: int, seconds: float) -> float:
    return ns.call(lambda: asyncio.run(_load(ip, port, seconds)))


def proxy_child(args: argparse.Namespace) -> None:
    """The proxy as its own process (run inside the node namespace by `ip netns exec`)."""

    async def main() -> None:
        client = Client(HTTPTransport("http://localhost", unix_socket=args.socket))
        proxy = ServiceProxy(client, node_name="bench", mode=args.mode, table=args.table,
                             cluster_cidr=args.cidr, service_proxy_name=args.mode)
        task = asyncio.create_task(proxy.run())
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await proxy.cleanup()
        await client.close()

    asyncio.run(main())


@contextlib.contextmanager
def proxy_process(topo: Topology, socket_path: str, mode: str) -> Any:
    proc = subprocess.Popen(["ip", "netns", "exec", topo.node, sys.executable, __file__, "--proxy-child",
                             "--socket", socket_path, "--mode", mode, "--table", f"{topo.prefix}{mode[0]}",
                             "--cidr", topo.cidr])
    try:
        yield proc
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# --- API objects -----------------------------------------------------------------------------------


def service(name: str, proxy_name: str | None = None) -> dict[str, Any]:
    labels = {"service.kubernetes.io/service-proxy-name": proxy_name} if proxy_name else {}
    return {"metadata": {"name": name, "namespace": "default", "labels": labels},
            "spec": {"ports": [{"name": "http", "port": 80, "targetPort": 8080}], "selector": {"app": name}}}


def endpoint_slice(name: str, ips: list[str]) -> dict[str, Any]:
    return {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": f"{name}-1", "namespace": "default",
                         "labels": {"kubernetes.io/service-name": name}},
            "addressType": "IPv4", "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
            "endpoints": [{"addresses": [ip], "conditions": {"ready": True}} for ip in ips]}


def fake_ips(i: int, n: int) -> list[str]:
    """n addresses, distinct per i, that no test pod has (the rules are measured, not the traffic)."""
    return [f"10.{120 + k // 65536 % 100}.{k // 256 % 256}.{k % 256}" for k in range(i * n, i * n + n)]


async def in_batches(coros: list[Any], size: int = 32) -> None:
    for k in range(0, len(coros), size):
        await asyncio.gather(*coros[k:k + size])


def _applied(proxy: ServiceProxy, key: str, ip: str | None) -> bool:
    """The service port is in place (with an endpoint at `ip`, if given)."""
    sp = proxy.applied.get(key)
    return sp is not None and (ip is None or any(ep.ip == ip for ep in sp.endpoints))


async def sync_latency(client: Client, topo: Topology, socket_path: str, n_services: int, n_endpoints: int,
                       changes: int) -> dict[str, float]:
    assert SERVICES is not None and SLICES is not None
    thread = ProxyThread(topo, socket_path, mode="nftables")
    proxy = thread.start()
    try:
        t0 = time.monotonic()
        await in_batches([client.create(SERVICES, service(f"s{i}"), "default") for i in range(n_services)])
        await in_batches([client.create(SLICES, endpoint_slice(f"s{i}", fake_ips(i, n_endpoints)), "default")
                          for i in range(n_services)])
        created = time.monotonic() - t0

        def total() -> int:
            return sum(len(sp.endpoints) for k, sp in proxy.applied.items() if k.startswith("default/s"))

        end = time.monotonic() + 300
        while total() < n_services * n_endpoints:
            assert time.monotonic() < end, f"only {total()} endpoints applied"
            await asyncio.sleep(0.05)
        initial = time.monotonic() - t0
        samples: list[float] = []
        for c in range(changes):
            i = c % n_services
            key = f"default/s{i}:http/tcp"
            started = time.monotonic()
            want_ip = None
            if c % 3 == 2:  # a new service with one endpoint
                name = f"extra{c}"
                await client.create(SERVICES, service(name), "default")
                await client.create(SLICES, endpoint_slice(name, fake_ips(100000 + c, 1)), "default")
                key = f"default/{name}:http/tcp"
            else:  # replace one endpoint of an existing service
                want_ip = fake_ips(200000 + c, 1)[0]
                old = await client.get(SLICES, f"s{i}-1", "default")
                old["endpoints"][0]["addresses"] = [want_ip]
                await client.update(SLICES, old, "default")
            while not _applied(proxy, key, want_ip):
                assert time.monotonic() - started < 30, f"change {c} never applied"
                await asyncio.sleep(0.002)
            samples.append(time.monotonic() - started)
        rules = topo.nft("list", "table", "ip", topo.prefix).count("dnat to")
        return {"sync_p50_s": pct(samples, 0.5), "sync_p99_s": pct(samples, 0.99), "sync_max_s": max(samples),
                "initial_sync_s": initial, "create_objects_s": created, "dnat_rules": rules}
    finally:
        await asyncio.to_thread(thread.stop)


async def main(args: argparse.Namespace) -> None:
    assert SERVICES is not None and SLICES is not None
    server = await start_server()
    tmp = tempfile.mkdtemp()
    socket_path = os.path.join(tmp, "api.sock")
    await web.UnixSite(server.test_server.runner, socket_path).start()  # type: ignore[arg-type]
    client = Client(HTTPTransport(server.url))
    try:
        with topology(backends=("a",)) as topo:
            client_ns = InNetns(topo.pods["client"])
            pod = topo.ips["a"]
            targets = {"direct": (pod, 8080)}
            for mode in ("nftables", "userspace"):
                # one service per proxy, each proxy serving only its own (service-proxy-name), so both run
                # at once and the runs can alternate: the machine's load drifts less between them
                svc = await client.create(SERVICES, service(f"web-{mode}", mode), "default")
                await client.create(SLICES, endpoint_slice(f"web-{mode}", [pod]), "default")
                targets[mode] = (svc["spec"]["clusterIP"], 80)
            rps: dict[str, list[float]] = {k: [] for k in targets}
            with proxy_process(topo, socket_path, "nftables"), proxy_process(topo, socket_path, "userspace"):
                for ip, port in targets.values():
                    await asyncio.to_thread(wait_listening, client_ns, ip, port, 30.0)
                    await asyncio.to_thread(load, client_ns, ip, port, 0.5)  # warm-up
                for _ in range(args.rounds):
                    for k, (ip, port) in targets.items():
                        rps[k].append(await asyncio.to_thread(load, client_ns, ip, port, args.seconds))
            results = {k: statistics.median(v) for k, v in rps.items()}
            direct = results["direct"]
            # the ratio within each round (runs seconds apart), then the median over rounds: the shared
            # machine's load drifts more between rounds than within one
            ratio = {k: statistics.median(x / d for x, d in zip(v, rps["direct"], strict=True))
                     for k, v in rps.items()}
            print(f"median of {args.rounds} alternating runs of {args.seconds:g}s, "
                  f"{CONCURRENCY} connections at a time")
            for k, label in (("direct", "direct pod IP"), ("nftables", "ClusterIP nftables"),
                             ("userspace", "ClusterIP userspace")):
                print(f"{label:20} {results[k]:9.0f} req/s  {ratio[k]:5.2f}x  "
                      f"runs {[round(x) for x in rps[k]]}")
            sync = await sync_latency(client, topo, socket_path, args.services, args.endpoints, args.changes)
            print(f"{args.services} services x {args.endpoints} endpoints: objects created in "
                  f"{sync['create_objects_s']:.1f}s, all in place after {sync['initial_sync_s']:.1f}s; "
                  f"change → rules p50 {sync['sync_p50_s'] * 1000:.0f} ms, "
                  f"p99 {sync['sync_p99_s'] * 1000:.0f} ms "
                  f"({args.changes} changes)")
            client_ns.close()
    finally:
        await client.close()
        await server.stop()
    print(json.dumps({"direct_rps": round(direct, 1),
                      "nft_rps": round(results["nftables"], 1),
                      "userspace_rps": round(results["userspace"], 1),
                      "nft_vs_direct": round(ratio["nftables"], 3),
                      "userspace_vs_direct": round(ratio["userspace"], 3),
                      "sync_p50_s": round(sync["sync_p50_s"], 4), "sync_p99_s": round(sync["sync_p99_s"], 4),
                      "services": args.services, "endpoints": args.services * args.endpoints,
                      "concurrency": CONCURRENCY}))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=1.0)
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--services", type=int, default=1000)
    parser.add_argument("--endpoints", type=int, default=10)
    parser.add_argument("--changes", type=int, default=60)
    parser.add_argument("--proxy-child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--socket", help=argparse.SUPPRESS)
    parser.add_argument("--mode", default="nftables", help=argparse.SUPPRESS)
    parser.add_argument("--table", help=argparse.SUPPRESS)
    parser.add_argument("--cidr", help=argparse.SUPPRESS)
    ns = parser.parse_args()
    if ns.proxy_child:
        proxy_child(ns)
    else:
        asyncio.run(main(ns))
