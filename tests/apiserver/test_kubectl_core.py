"""The real kubectl against the HTTP core: apply, get (server-side tables), get -w, scale, delete."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest

from tests.apiserver.conftest import Server
from tests.support.kubectl import kubectl, write_kubeconfig

pytestmark = pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")

MANIFEST = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: c, image: busybox}]}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: cfg}
data: {a: "1"}
"""


@pytest.fixture
def kubeconfig(server: Server, tmp_path: Path) -> Path:
    return write_kubeconfig(server.url, tmp_path)


async def test_apply_get_scale_delete(kubeconfig: Path) -> None:
    rc, out = await kubectl(kubeconfig, "apply", "-f", "-", stdin=MANIFEST)
    assert rc == 0, out
    assert "deployment.apps/web created" in out and "configmap/cfg created" in out
    rc, out = await kubectl(kubeconfig, "apply", "-f", "-", stdin=MANIFEST)
    assert rc == 0 and "deployment.apps/web unchanged" in out, out
    rc, out = await kubectl(kubeconfig, "get", "configmaps")
    assert rc == 0 and out.split("\n")[0].split() == ["NAME", "DATA", "AGE"], out
    rc, out = await kubectl(kubeconfig, "scale", "deployment", "web", "--replicas=4")
    assert rc == 0, out
    rc, out = await kubectl(kubeconfig, "get", "deployment", "web", "-o", "jsonpath={.spec.replicas}")
    assert (rc, out) == (0, "4")
    # kubectl's typed clients send protobuf bodies.
    rc, out = await kubectl(kubeconfig, "create", "configmap", "lit", "--from-literal=k=v")
    assert rc == 0 and "configmap/lit created" in out, out
    rc, out = await kubectl(kubeconfig, "get", "configmap", "lit", "-o", "jsonpath={.data.k}")
    assert (rc, out) == (0, "v")
    rc, out = await kubectl(kubeconfig, "create", "namespace", "made-by-kubectl")
    assert rc == 0 and "namespace/made-by-kubectl created" in out, out
    rc, out = await kubectl(kubeconfig, "delete", "-f", "-", stdin=MANIFEST)
    assert rc == 0 and 'deployment.apps "web" deleted' in out, out
    rc, out = await kubectl(kubeconfig, "get", "configmap", "cfg")
    assert rc == 1 and 'configmaps "cfg" not found' in out


async def test_get_watch_prints_changes(server: Server, kubeconfig: Path) -> None:
    await server.request("POST", "/api/v1/namespaces/default/configmaps", {"metadata": {"name": "first"}})
    proc = await asyncio.create_subprocess_exec(
        "kubectl",
        "--kubeconfig",
        str(kubeconfig),
        "get",
        "configmaps",
        "-w",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env={"PATH": "/usr/bin:/bin", "HOME": str(kubeconfig.parent)},
    )
    assert proc.stdout is not None
    try:
        header = await asyncio.wait_for(proc.stdout.readline(), 30)
        assert header.decode().split() == ["NAME", "DATA", "AGE"]
        assert (await asyncio.wait_for(proc.stdout.readline(), 30)).decode().split()[:2] == ["first", "0"]
        await server.request(
            "POST",
            "/api/v1/namespaces/default/configmaps",
            {"metadata": {"name": "second"}, "data": {"a": "1", "b": "2"}},
        )
        line = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode()
        assert line.split()[:2] == ["second", "2"]
    finally:
        proc.kill()
        await proc.wait()
