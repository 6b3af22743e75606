"""ServiceAccount admission through a real API server: default account, the kube-api-access volume and
its mounts, opting out, refusals with Kubernetes' message."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from pyk8s.api.errors import StatusError
from pyk8s.apiserver.admission_serviceaccount import (
    TOKEN_MOUNT_PATH,
    ServiceAccountAdmission,
    token_volume_source,
)
from pyk8s.client.client import Client
from pyk8s.client.transport import HTTPTransport
from tests.support.apiserver import PODS, Server, info, start_server

SERVICEACCOUNTS = info("", "serviceaccounts")


@pytest.fixture
async def client() -> AsyncIterator[Client]:
    holder: dict[str, Server] = {}
    plugin = ServiceAccountAdmission(lambda i, ns, name: holder["s"].api.get_object(i, ns, name),
                                     lookup_grace=0.1)
    srv = holder["s"] = await start_server(admission=[plugin])
    await srv.api.create_object(SERVICEACCOUNTS, {"metadata": {"name": "default", "namespace": "default"}})
    c = Client(HTTPTransport(srv.url))
    try:
        yield c
    finally:
        await c.close()
        await srv.stop()
        await srv.store.close()


def _pod(name: str, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "default"},
            "spec": {"containers": [{"name": "c", "image": "busybox"}], **spec}}


async def test_default_account_and_api_access_volume(client: Client) -> None:
    pod = await client.create(PODS, _pod("p", initContainers=[{"name": "i", "image": "busybox"}]))
    spec = pod["spec"]
    assert spec["serviceAccountName"] == "default"
    [volume] = spec["volumes"]
    prefix = "kube-api-access-"
    assert volume["name"].startswith(prefix) and len(volume["name"]) == len(prefix) + 5
    assert volume["projected"] == token_volume_source()
    for c in spec["containers"] + spec["initContainers"]:
        assert c["volumeMounts"] == [
            {"name": volume["name"], "readOnly": True, "mountPath": TOKEN_MOUNT_PATH}]


async def test_opt_outs_and_own_mounts(client: Client) -> None:
    pod = await client.create(PODS, _pod("off", automountServiceAccountToken=False))
    assert "volumes" not in pod["spec"] or not pod["spec"]["volumes"]
    await client.create(SERVICEACCOUNTS, {"metadata": {"name": "quiet"},
                                          "automountServiceAccountToken": False,
                                          "imagePullSecrets": [{"name": "regcred"}]}, "default")
    pod = await client.create(PODS, _pod("quiet", serviceAccountName="quiet"))
    assert not pod["spec"].get("volumes") and pod["spec"]["imagePullSecrets"] == [{"name": "regcred"}]
    # the pod's own choice wins over the account's
    pod = await client.create(PODS, _pod("loud", serviceAccountName="quiet",
                                         automountServiceAccountToken=True))
    assert pod["spec"]["volumes"][0]["name"].startswith("kube-api-access-")
    # a container with its own mount at the token path keeps it; no volume is needed then
    own = _pod("own", volumes=[{"name": "mine", "emptyDir": {}}])
    own["spec"]["containers"][0]["volumeMounts"] = [{"name": "mine", "mountPath": TOKEN_MOUNT_PATH}]
    pod = await client.create(PODS, own)
    assert [v["name"] for v in pod["spec"]["volumes"]] == ["mine"]
    assert pod["spec"]["containers"][0]["volumeMounts"] == [{"name": "mine", "mountPath": TOKEN_MOUNT_PATH}]


async def test_missing_account_refuses_the_pod(client: Client) -> None:
    with pytest.raises(StatusError) as e:
        await client.create(PODS, _pod("ghostly", serviceAccountName="ghost"))
    assert e.value.code == 403
    assert e.value.message == ('pods "ghostly" is forbidden: error looking up service account default/ghost: '
                               'serviceaccount "ghost" not found')


async def test_mirror_pods_and_updates_untouched(client: Client) -> None:
    mirror = _pod("mirror")
    mirror["metadata"]["annotations"] = {"kubernetes.io/config.mirror": "x"}
    pod = await client.create(PODS, mirror)
    assert not pod["spec"].get("volumes")
    pod["metadata"]["labels"] = {"a": "b"}
    updated = await client.update(PODS, pod)
    assert not updated["spec"].get("volumes")


async def test_what_admission_adds_belongs_to_no_manager(client: Client) -> None:
    # Kubernetes' create handler runs the field manager before mutating admission and the strategy: the
    # creator owns what it sent (defaulted), not the token volume, its mounts or the Pending status.
    pod = await client.create(PODS, _pod("owned"))
    [entry] = pod["metadata"]["managedFields"]
    fields = entry["fieldsV1"]
    assert "f:status" not in fields
    assert "f:volumes" not in fields["f:spec"] and "f:serviceAccountName" not in fields["f:spec"]
    container = fields["f:spec"]["f:containers"]['k:{"name":"c"}']
    assert "f:volumeMounts" not in container
    assert "f:imagePullPolicy" in container  # defaulted before the field manager, as decoding does
    assert pod["spec"]["volumes"] and pod["status"]["phase"] == "Pending"
