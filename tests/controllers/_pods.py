"""Pods for the endpoint tests, given an IP and readiness as a kubelet would."""

from __future__ import annotations

from typing import Any

from pyk8s.api.meta import now_rfc3339
from pyk8s.client.client import Client
from tests.support.apiserver import info

PODS = info("", "pods")
SERVICES = info("", "services")
assert PODS is not None and SERVICES is not None


async def make_pod(client: Client, name: str, ip: str | None, ready: bool, *, port: int | None = None,
                   labels: dict[str, str] | None = None, node: str = "n1", ns: str = "default",
                   hostname: str | None = None, subdomain: str | None = None,
                   finalizers: list[str] | None = None) -> dict[str, Any]:
    container: dict[str, Any] = {"name": "c", "image": "busybox"}
    if port is not None:
        container["ports"] = [{"name": "http", "containerPort": port}]
    spec: dict[str, Any] = {"containers": [container], "nodeName": node}
    if hostname:
        spec["hostname"] = hostname
    if subdomain:
        spec["subdomain"] = subdomain
    meta: dict[str, Any] = {"name": name, "labels": labels if labels is not None else {"app": "web"}}
    if finalizers:
        meta["finalizers"] = finalizers
    pod = await client.create(PODS, {"metadata": meta, "spec": spec}, ns)
    if ip is not None:
        now = now_rfc3339()
        pod["status"] = {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}], "conditions": [
            {"type": "Ready", "status": "True" if ready else "False", "lastTransitionTime": now}]}
        pod = await client.update_status(PODS, pod)
    return pod


async def set_ready(client: Client, name: str, ready: bool, ns: str = "default") -> None:
    pod = await client.get(PODS, name, ns)
    for c in pod["status"]["conditions"]:
        if c["type"] == "Ready":
            c["status"] = "True" if ready else "False"
            c["lastTransitionTime"] = now_rfc3339()
    await client.update_status(PODS, pod)


def web_service(name: str = "web", *, publish_not_ready: bool = False, headless: bool = False,
                selector: dict[str, str] | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"ports": [{"name": "http", "port": 80, "targetPort": "http"}],
                            "selector": selector if selector is not None else {"app": "web"}}
    if publish_not_ready:
        spec["publishNotReadyAddresses"] = True
    if headless:
        spec["clusterIP"] = "None"
    if not spec["selector"]:
        del spec["selector"]
    return {"metadata": {"name": name, "labels": {"team": "a"}}, "spec": spec}
