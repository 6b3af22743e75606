"""`pyk8s agent`: join a cluster as a node.

The agent trusts the server through the join token's CA hash and gets its client certificate through a
CertificateSigningRequest (`pyk8s.kubelet.bootstrap`), then runs a kubelet (`pyk8s.kubelet.kubelet`).
`--hollow COUNT` instead plays COUNT kwok-style nodes `<node-name>-0 …` (default prefix `hollow`) that run
no containers. In hollow mode the agent holds one client certificate, CN `system:node:<prefix>`, for all
of its nodes. The Node authorizer and NodeRestriction admission (`pyk8s.apiserver.auth.node`) tie a node's
certificate to its own Node, Lease and pods; they let the identity `system:node:<prefix>` also speak for
the nodes `<prefix>-<digits>` that carry the hollow label `type=hollow` (which every hollow Node is created
with), and never for a node without it.

A real node also serves the kubelet's HTTPS API (`pyk8s.kubelet.server`: logs, exec, attach,
port-forward, /pods, /stats/summary) on `--kubelet-port`, which its Node advertises; runs the service
proxy (`--proxy-mode`) as `system:kube-proxy` with a client certificate of its own, obtained with the join
token as k3s agents do (`pyk8s.kubelet.bootstrap.proxy_credentials`); and keeps routes to the other
nodes' pod CIDRs through their node IPs (`pyk8s.kubelet.routes`). `--cgroup-root` keeps the pod cgroups
of several agents on one machine apart.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import socket
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pyk8s.cli.images import DEFAULT_DATA_DIR
from pyk8s.util.tasks import cancel_and_wait

if TYPE_CHECKING:
    from pyk8s.client.client import Client


def add_parser(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser("agent", help="join a cluster as a node")
    p.add_argument("--server", required=True, help="the API server, https://HOST:PORT")
    p.add_argument("--token", required=True,
                   help="the join token K10<ca hash>::<id>.<secret> (the server's DATA_DIR/token)")
    p.add_argument("--data-dir", default=f"{DEFAULT_DATA_DIR}/agent",
                   help="where the agent keeps its certificate")
    p.add_argument("--node-name", default="", help="the node name (hollow mode: the prefix, default hollow)")
    p.add_argument("--node-ip", default="", help="the node's InternalIP (default: the default route's)")
    p.add_argument("--kubelet-port", type=int, default=10250,
                   help="the kubelet's HTTPS API (logs, exec, attach, port-forward); 0: any free port")
    p.add_argument("--proxy-mode", choices=("nftables", "userspace"), default="nftables",
                   help="how the node's service proxy forwards: nftables rules or userspace round robin")
    p.add_argument("--cluster-cidr", default="10.42.0.0/16",
                   help="the pod network (as the server's); pod traffic within it is not masqueraded")
    p.add_argument("--cgroup-root", default="/kubepods",
                   help="the cgroup the node's pods go under (one per agent when several share a machine)")
    p.add_argument("--node-lease-duration-seconds", type=int, default=40, metavar="SECONDS",
                   help="the node Lease's duration, renewed every quarter of it (the kubelet's "
                        "nodeLeaseDurationSeconds); the server's --node-monitor-grace-period is no shorter")
    p.add_argument("--hollow", type=int, default=0, metavar="COUNT",
                   help="play COUNT hollow nodes that run no containers (for tests and benchmarks)")
    p.add_argument("--hollow-cpu", default="32")
    p.add_argument("--hollow-memory", default="256Gi")
    p.add_argument("--hollow-pods", type=int, default=110)
    p.add_argument("--hollow-complete-after", type=float, default=1.0, metavar="SECONDS",
                   help="how long a pod with restartPolicy Never or OnFailure runs before it succeeds")
    p.set_defaults(run=run)


HOLLOW_NICE = 5  # the niceness of a hollow agent (see run)


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from pyk8s.api.errors import StatusError
    from pyk8s.kubelet.bootstrap import BootstrapError

    try:
        if args.hollow > 0:
            from pyk8s.server.loop import run_loop

            # Hollow nodes stand for kubelets on other machines: beside a server on the same machine they
            # take only the CPU it leaves (bench/scheduler on two cores: pods/s 336 against 291, medians
            # of four paired runs, each pair in its favour).
            os.nice(HOLLOW_NICE)
            # The server's loop settings: uvloop, and a collector that does not rescan the informer's
            # thousands of cached pods every few hundred allocations.
            run_loop(_run_hollow(args))
        else:
            asyncio.run(_run_kubelet(args))
    except BootstrapError as e:
        print(f"pyk8s agent: {e}", file=sys.stderr)
        return 1
    except StatusError as e:  # the server refused us: a wrong or expired token, missing permissions
        print(f"pyk8s agent: the server answered {e.code} {e.reason}: {e.message}", file=sys.stderr)
        return 1
    except OSError as e:
        print(f"pyk8s agent: {e}", file=sys.stderr)
        return 1
    return 0


def _stop_on_signals() -> asyncio.Event:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    return stop


async def _serve_until_stopped(task: asyncio.Task[None], registered: asyncio.Event, ready: str,
                               stop: asyncio.Event, client: Client) -> None:
    """Print `ready` once `registered` is set, then wait for a signal or the end of `task`; a failure of
    `task` ends the agent with its error. Always closes `client`."""
    waiter = asyncio.create_task(stop.wait())
    try:
        registered_wait = asyncio.create_task(registered.wait())
        await asyncio.wait({task, registered_wait}, return_when=asyncio.FIRST_COMPLETED)
        if registered.is_set():
            print(f"pyk8s agent: ready ({ready})", flush=True)
        registered_wait.cancel()
        await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
        if task.done():
            task.result()
    finally:
        await cancel_and_wait([task, waiter])
        await client.close()


async def _run_hollow(args: argparse.Namespace) -> None:
    from pyk8s.kubelet.bootstrap import bootstrap_credentials, node_client
    from pyk8s.kubelet.hollow import HollowConfig, HollowNodes

    prefix = args.node_name or "hollow"
    stop = _stop_on_signals()
    creds = await bootstrap_credentials(args.server, args.token, prefix, Path(args.data_dir))
    # COUNT kubelets' worth of status writes and lease renewals: 8 connections, a real node's share, would
    # queue them (a 1,000-replica Deployment took 3x longer to become available).
    client = node_client(creds, pool_size=100)
    nodes = HollowNodes(client, HollowConfig(
        prefix=prefix, count=args.hollow, cpu=args.hollow_cpu, memory=args.hollow_memory,
        pods=args.hollow_pods, complete_after=args.hollow_complete_after,
        lease_duration=args.node_lease_duration_seconds))
    task = asyncio.create_task(nodes.run(), name="hollow nodes")
    await _serve_until_stopped(task, nodes.registered,
                               f"{args.hollow} hollow nodes on {socket.gethostname()}", stop, client)


async def _run_kubelet(args: argparse.Namespace) -> None:
    """A real node: the kubelet over runc, the node's image store, CNI and volumes, the service proxy and
    the routes to the other nodes' pods."""
    from pyk8s.kubelet.bootstrap import bootstrap_credentials, node_client, proxy_credentials
    from pyk8s.kubelet.kubelet import build_kubelet
    from pyk8s.proxy import ServiceProxy
    from pyk8s.server.node import serve_node

    name = args.node_name or socket.gethostname().lower()
    stop = _stop_on_signals()
    data_dir = Path(args.data_dir)
    creds = await bootstrap_credentials(args.server, args.token, name, data_dir)
    proxy_creds = await proxy_credentials(args.server, args.token, data_dir)
    client = node_client(creds)
    proxy_client = node_client(proxy_creds, pool_size=10, user_agent="pyk8s-agent/kube-proxy")
    try:
        kubelet = build_kubelet(client, name, args.data_dir, node_ip=args.node_ip or None,
                                kubelet_port=args.kubelet_port, cluster_cidr=args.cluster_cidr,
                                cgroup_root=args.cgroup_root, lease_duration=args.node_lease_duration_seconds)
        proxy = ServiceProxy(proxy_client, node_name=name,
                             mode="userspace" if args.proxy_mode == "userspace" else "nftables",
                             cluster_cidr=args.cluster_cidr)
    except BaseException:
        await client.close()
        await proxy_client.close()
        raise
    task = asyncio.create_task(serve_node(kubelet, client, creds.ca_pem, kubelet_port=args.kubelet_port,
                                          proxy=proxy), name="kubelet")
    try:
        await _serve_until_stopped(task, kubelet.node.registered, f"node {name}", stop, client)
    finally:
        await proxy_client.close()
