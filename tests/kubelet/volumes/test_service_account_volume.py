"""The whole chain a pod's API access rides on: ServiceAccount admission adds `kube-api-access-*`, the
root-ca-cert-publisher fills `kube-root-ca.crt`, and the VolumeManager projects a bound token the API
server accepts, the CA and the namespace."""

from __future__ import annotations

import asyncio
from pathlib import Path

from pyk8s.apiserver.admission_serviceaccount import TOKEN_MOUNT_PATH, ServiceAccountAdmission
from pyk8s.apiserver.auth.stack import build_auth_stack
from pyk8s.client.client import Client
from pyk8s.client.informer import SharedInformerFactory
from pyk8s.client.transport import HTTPTransport
from pyk8s.controllers.manager import ControllerContext, ControllerOptions
from pyk8s.controllers.rootcacert import RootCACertPublisher
from pyk8s.kubelet.volumes import VolumeError, VolumeManager, mounts
from pyk8s.server.pki import ensure_pki
from tests.kubelet.volumes.conftest import SERVICEACCOUNTS, read, visible
from tests.support.apiserver import PODS, Server, start_server


async def test_admitted_pod_gets_working_api_access(tmp_path: Path) -> None:
    pki = ensure_pki(tmp_path / "data")
    holder: dict[str, Server] = {}
    stack = build_auth_stack(
        sa_private_key=pki.sa_key.read_bytes(), sa_public_key=pki.sa_pub.read_bytes(),
        get_object=lambda i, ns, name: holder["s"].api.get_object(i, ns, name),
        lister=lambda i: holder["s"].api.list_objects(i),
    )
    admission = ServiceAccountAdmission(lambda i, ns, name: holder["s"].api.get_object(i, ns, name))
    server = holder["s"] = await start_server(virtual_creates=stack.virtual_creates, admission=[admission])
    await server.api.create_object(SERVICEACCOUNTS, {"metadata": {"name": "default", "namespace": "default"}})
    client = Client(HTTPTransport(server.url))
    ca_pem = pki.ca_cert.read_bytes()
    ctx = ControllerContext(client, SharedInformerFactory(client), ControllerOptions(ca_cert_pem=ca_pem))
    publisher = RootCACertPublisher(ctx)
    ctx.informers.start()
    task = asyncio.create_task(publisher.run())
    volumes = VolumeManager(client, str(tmp_path / "kubelet"))
    uid = ""
    try:
        pod = await client.create(PODS, {
            "metadata": {"name": "app", "namespace": "default"},
            "spec": {"nodeName": "n", "containers": [{"name": "c", "image": "busybox"}]}})
        uid = pod["metadata"]["uid"]
        [volume] = pod["spec"]["volumes"]
        [mount] = pod["spec"]["containers"][0]["volumeMounts"]
        async with asyncio.timeout(5):
            while True:  # the publisher's ConfigMap, polled with a deadline
                try:
                    pod_volumes = await volumes.setup(pod)
                    break
                except VolumeError as e:  # FailedMount until kube-root-ca.crt exists
                    assert 'configmap "kube-root-ca.crt" not found' in e.message
                    await asyncio.sleep(0.02)
        directory = pod_volumes.host_path(volume["name"])
        assert visible(directory) == ["ca.crt", "namespace", "token"]
        assert read(directory, "ca.crt").encode() == ca_pem
        assert read(directory, "namespace") == "default"
        user, _ = await stack.tokens.verify(read(directory, "token"))
        assert user.name == "system:serviceaccount:default:default"
        [m] = pod_volumes.mounts_for(pod["spec"]["containers"][0])
        assert (m.host_path, m.container_path, m.read_only) == (directory, TOKEN_MOUNT_PATH, True)
        assert mount["mountPath"] == TOKEN_MOUNT_PATH
    finally:
        if uid:
            await volumes.teardown(uid)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await ctx.informers.stop()
        await client.close()
        await server.stop()
        await server.store.close()
    assert mounts.mounts_under(str(tmp_path)) == []
