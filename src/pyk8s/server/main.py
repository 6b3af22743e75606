"""`pyk8s server`: the control plane assembled in one asyncio process, in the manner of k3s.

Order of start: data dir → certificates and kubeconfig → store → API server over HTTPS and the loopback
socket → bootstrap objects (namespaces, RBAC policy, join token) → `/readyz` answers → controller
manager and scheduler → print `pyk8s: ready`. SIGTERM or SIGINT stops it in reverse order.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import ipaddress
import logging
import shutil
import signal
import socket
import ssl
import sys
from typing import Any

import aiohttp
from aiohttp import web

from pyk8s.api import catalog
from pyk8s.api.errors import StatusError
from pyk8s.apiserver import cacerts
from pyk8s.apiserver.admission_priority import PriorityAdmission
from pyk8s.apiserver.admission_serviceaccount import ServiceAccountAdmission
from pyk8s.apiserver.admission_tolerations import DefaultTolerationSeconds
from pyk8s.apiserver.app import API_SERVER, APIServer, APIServerConfig, create_app
from pyk8s.apiserver.auth import oidc
from pyk8s.apiserver.auth.audit import AuditLog
from pyk8s.apiserver.auth.policy import bootstrap_policy
from pyk8s.apiserver.auth.stack import (
    build_auth_stack,
    watch_cache_object,
    watch_cache_pod_changes,
    watch_cache_pods,
    watch_cache_revision,
)
from pyk8s.apiserver.interfaces import UserInfo
from pyk8s.apiserver.kubernetes_service import ensure_kubernetes_service
from pyk8s.apiserver.registry import RequestContext
from pyk8s.apiserver.service_alloc import dns_service_ip
from pyk8s.controllers.manager import ControllerOptions
from pyk8s.dns import dns_service_objects
from pyk8s.kubelet.node import default_node_ip
from pyk8s.server.config import ServerConfig
from pyk8s.server.loop import run_loop
from pyk8s.server.pki import Pki, ensure_pki
from pyk8s.server.supervisor import Supervised
from pyk8s.store.factory import open_store
from pyk8s.util.tasks import cancel_and_wait

log = logging.getLogger("pyk8s.server")

SYSTEM_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
COMPONENTS_NICE = 5  # the niceness of the controllers' and scheduler's process (see serve)
# RuntimeClass name → handler: a node's kubelet may not create RuntimeClasses (they are cluster-scoped),
# so the server registers the ones its machine's runtimes provide.
RUNTIME_CLASSES = {"runc": "runc", "gvisor": "runsc"}


def run_server(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    config = ServerConfig.from_args(args)
    try:
        run_loop(serve(config))
    except OSError as e:  # a taken port, an unwritable data dir: say so plainly
        print(f"pyk8s server: {e}", file=sys.stderr)
        return 1
    return 0


async def _ensure(api: APIServer, obj: dict[str, Any], follow: tuple[str, ...] = ()) -> None:
    """Create a bootstrap object unless it exists (restarts keep what users changed). Looked up first:
    a create of an existing Service fails on its taken ClusterIP (422) before the name clash (409).
    The `follow` fields of an existing object are brought back to `obj`'s (addresses that follow the
    node's IP across restarts)."""
    group = obj["apiVersion"].rpartition("/")[0] if "apiVersion" in obj else ""
    info = catalog.require(group, obj["kind"])
    meta = obj["metadata"]
    current = await api.get_object(info, meta.get("namespace", ""), meta["name"])
    if current is not None:
        if any(current.get(f) != obj[f] for f in follow):
            updated = {**current, **{f: obj[f] for f in follow}}
            ctx = RequestContext(UserInfo("system:apiserver", groups=("system:masters",)),
                                 field_manager="kube-apiserver")
            try:
                await api.registry.update(info, meta.get("namespace", ""), meta["name"], updated, ctx)
            except StatusError as e:
                if e.code != 409:  # someone else wrote it meanwhile: theirs stands until the next start
                    raise
        return
    try:
        await api.create_object(info, obj)
    except StatusError as e:
        if e.code != 409:
            raise


async def bootstrap(api: APIServer, pki: Pki, config: ServerConfig, advertised: str,
                    dns_address: str) -> None:
    for ns in SYSTEM_NAMESPACES:
        await _ensure(api, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
    # Pods reach the API at the first service IP; it points at the advertised address, which they reach
    # (loopback would be the pod's own).
    await ensure_kubernetes_service(api, config.service_cidr, advertised, config.https_port)
    if not config.disable_dns:
        # kube-system/kube-dns: the cluster DNS the components process serves on `dns_address`.
        dns_ip = dns_service_ip(config.service_cidr)
        for obj in dns_service_objects(node_ip=dns_address, port=53, cluster_ip=dns_ip):
            await _ensure(api, obj, {"Endpoints": ("subsets",), "EndpointSlice": ("endpoints", "ports")}.get(
                obj["kind"], ()))
    for obj in bootstrap_policy():
        await _ensure(api, obj)
    await _ensure(api, pki.bootstrap_token_secret())
    for name, handler in RUNTIME_CLASSES.items():
        if shutil.which(handler):
            await _ensure(api, {"apiVersion": "node.k8s.io/v1", "kind": "RuntimeClass",
                                "metadata": {"name": name}, "handler": handler})


async def _wait_ready(url: str, ca: ssl.SSLContext, within: float = 30) -> None:
    deadline = asyncio.get_running_loop().time() + within
    async with aiohttp.ClientSession() as session:
        while True:
            try:
                async with session.get(f"{url}/readyz", ssl=ca) as r:
                    if r.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError(f"{url}/readyz did not answer ok within {within:.0f}s")
            await asyncio.sleep(0.05)


async def serve(config: ServerConfig) -> None:
    config.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    (config.data_dir / "db").mkdir(mode=0o700, exist_ok=True)
    node_ip = default_node_ip()
    advertised = config.advertised(node_ip)
    # The DNS server listens on one address pods reach: the advertised one, unless that is loopback (a
    # pod's own): then the node's.
    dns_address = node_ip if ipaddress.ip_address(advertised).is_loopback else advertised
    pki = ensure_pki(config.data_dir, bind_address=config.bind_address, https_port=config.https_port,
                     service_cidr=config.service_cidr, extra_sans=(advertised, node_ip, *config.tls_san))
    store = await open_store(config.store_endpoint)
    audit = AuditLog(config.audit_log) if config.audit_log else None
    holder: dict[str, APIServer] = {}

    def api() -> APIServer:
        return holder["api"]

    stack = build_auth_stack(
        sa_private_key=pki.sa_key.read_bytes(),
        sa_public_key=pki.sa_pub.read_bytes(),
        get_object=lambda info, ns, name: api().get_object(info, ns, name),
        lister=lambda info: api().list_objects(info),
        rbac_revision=lambda: watch_cache_revision(api().caches)(),
        raw_pods=lambda: watch_cache_pods(api().caches),
        raw_object=lambda prefix, key: watch_cache_object(api().caches, prefix, key),
        pod_changes=lambda since: watch_cache_pod_changes(api().caches, since),
    )
    app = create_app(APIServerConfig(
        store=store,
        authenticator=stack.authenticator,
        authorizer=stack.authorizer,
        admission=[
            ServiceAccountAdmission(lambda info, ns, name: api().get_object(info, ns, name)),
            PriorityAdmission(lambda info: api().list_objects(info)),
            DefaultTolerationSeconds(config.default_not_ready_toleration_seconds,
                                     config.default_unreachable_toleration_seconds),
            stack.escalation,
            stack.node_restriction,
        ],
        virtual_creates=stack.virtual_creates,
        audit=audit,
        kubelet_client_cert=(str(pki.kubelet_client_cert), str(pki.kubelet_client_key)),
        service_cidr=config.service_cidr,
    ))
    holder["api"] = app[API_SERVER]
    oidc.add_routes(app, stack.tokens)
    cacerts.add_routes(app, pki.ca_cert.read_bytes())

    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        site = web.TCPSite(runner, config.bind_address, config.https_port, ssl_context=pki.ssl_context(),
                           reuse_address=True)
        await site.start()
        config.socket.unlink(missing_ok=True)
        await web.UnixSite(runner, str(config.socket)).start()
        config.socket.chmod(0o600)
        await bootstrap(holder["api"], pki, config, advertised, dns_address)
        gc.freeze()  # what start-up built (catalog, schemas, policy) lives for good: out of every collection
        url = f"https://{'127.0.0.1' if config.bind_address in ('0.0.0.0', '::') else config.bind_address}"
        await _wait_ready(f"{url}:{config.https_port}", pki.client_ssl_context())
        log.info("serving on https://%s:%d; kubeconfig %s", config.bind_address, config.https_port,
                 pki.kubeconfig)
        options = ControllerOptions(
            node_monitor_grace_period=config.node_monitor_grace_period,
            default_toleration_seconds=config.default_not_ready_toleration_seconds,
            cluster_cidr=config.cluster_cidr,
            ca_cert_pem=pki.ca_cert.read_bytes(),
            ca_key_pem=pki.ca_key.read_bytes(),
        )
        # The controllers and the scheduler yield the CPU to the API server: all their work goes through
        # it, so when the cores are short, time they take from it only makes their own requests wait
        # longer (bench/scheduler on two cores: pods/s +6 % in the median of five paired runs). The node
        # keeps the server's priority, so its pods start on time.
        children = [Supervised("components", "pyk8s.server.components:run_components", (
            config.socket, options, True, "" if config.disable_dns else dns_address, 53),
            nice=COMPONENTS_NICE)]
        if not config.disable_agent:
            children.append(Supervised("kubelet", "pyk8s.server.node:run_node", (
                config.socket, config.node_name or socket.gethostname().lower(), str(config.data_dir),
                pki.ca_cert.read_bytes(), config.cluster_cidr, node_ip, config.proxy_mode)))
        supervised = [asyncio.create_task(child.run(), name=child.name) for child in children]
        print("pyk8s: ready", flush=True)
        await stop.wait()
        log.info("stopping")
        await cancel_and_wait(supervised)
    finally:
        await runner.cleanup()
        await store.close()
        if audit is not None:
            audit.close()
