"""root-ca-cert-publisher: `kube-root-ca.crt` in every namespace, put back when changed or deleted."""

from __future__ import annotations

from typing import Any

from pyk8s.api.errors import StatusError
from pyk8s.client.client import Client
from pyk8s.controllers.manager import REGISTRY, ControllerOptions
from pyk8s.controllers.rootcacert import DESCRIPTION, RootCACertPublisher
from tests.controllers._housekeeping import running, until
from tests.support.apiserver import api_server, info

NS = info("", "namespaces")
CM = info("", "configmaps")

PEM = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"


async def _ca(client: Client, ns: str) -> dict[str, Any] | None:
    try:
        return await client.get(CM, "kube-root-ca.crt", ns)
    except StatusError as e:
        if e.code == 404:
            return None
        raise


async def _published(client: Client, ns: str) -> bool:
    cm = await _ca(client, ns)
    return cm is not None and cm.get("data") == {"ca.crt": PEM}


async def test_published_in_every_namespace_and_restored() -> None:
    options = ControllerOptions(ca_cert_pem=PEM.encode())
    async with api_server() as srv, running(srv, RootCACertPublisher, options=options) as (client, _):
        await until(lambda: _published(client, "default"), what="default/kube-root-ca.crt")
        cm = await _ca(client, "default")
        assert cm is not None and cm["metadata"]["annotations"]["kubernetes.io/description"] == DESCRIPTION
        await client.create(NS, {"metadata": {"name": "team-a"}})
        await until(lambda: _published(client, "team-a"), what="team-a/kube-root-ca.crt")

        cm = await _ca(client, "team-a")
        assert cm is not None
        cm["data"] = {"ca.crt": "tampered", "extra": "x"}
        await client.update(CM, cm)
        await until(lambda: _published(client, "team-a"), what="tampered configmap restored")
        await client.delete(CM, "kube-root-ca.crt", "team-a")
        await until(lambda: _published(client, "team-a"), what="deleted configmap recreated")


def test_registered() -> None:
    assert "root-ca-cert-publisher" in REGISTRY
