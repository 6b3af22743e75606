"""What a user of the real kubectl sees: invalid manifests sent to the API server (in-process, plain HTTP
on loopback, over a memory store) come back as kubectl's `The Pod "x" is invalid: …` line, and the
defaults show in `kubectl get -o json`."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestServer

from pyk8s.api.catalog import lookup
from pyk8s.apiserver.app import API_SERVER, APIServerConfig, create_app
from pyk8s.store.memory import MemoryStore

KUBECTL = shutil.which("kubectl")
pytestmark = pytest.mark.skipif(KUBECTL is None, reason="needs kubectl")


class Kubectl:
    def __init__(self, kubeconfig: Path) -> None:
        self.env = {**os.environ, "KUBECONFIG": str(kubeconfig), "HOME": str(kubeconfig.parent)}

    async def __call__(self, *args: str, stdin: Any = None) -> tuple[int, str, str]:
        proc = await asyncio.create_subprocess_exec(
            KUBECTL or "kubectl",
            *args,
            env=self.env,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        data = json.dumps(stdin).encode() if stdin is not None else None
        out, err = await asyncio.wait_for(proc.communicate(data), 60)
        return proc.returncode or 0, out.decode(), err.decode()


@pytest.fixture
async def kubectl(tmp_path: Path) -> AsyncIterator[Kubectl]:
    store = MemoryStore()
    server = TestServer(create_app(APIServerConfig(store=store)), host="127.0.0.1")
    await server.start_server()
    ns = lookup("", "v1", "namespaces")
    assert ns is not None
    await server.app[API_SERVER].create_object(ns, {"metadata": {"name": "default"}})
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "current-context": "t",
                "clusters": [{"name": "t", "cluster": {"server": str(server.make_url("")).rstrip("/")}}],
                "users": [{"name": "t", "user": {}}],
                "contexts": [{"name": "t", "context": {"cluster": "t", "user": "t", "namespace": "default"}}],
            }
        )
    )
    try:
        yield Kubectl(kubeconfig)
    finally:
        await server.close()
        await store.close()


def pod(**container: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "web"},
        "spec": {"containers": [{"name": "web", "image": "nginx:1.27", **container}]},
    }


async def test_kubectl_prints_the_causes(kubectl: Kubectl) -> None:
    code, _, err = await kubectl("create", "-f", "-", stdin=pod(image=""))
    assert code == 1
    assert err.strip() == 'The Pod "web" is invalid: spec.containers[0].image: Required value'
    broken = pod(ports=[{"containerPort": 0}])
    broken["spec"]["restartPolicy"] = "Sometimes"
    code, _, err = await kubectl("create", "-f", "-", stdin=broken)
    assert code == 1
    assert err.strip() == (  # kubectl lists several causes one per line
        'The Pod "web" is invalid: \n'
        "* spec.containers[0].ports[0].containerPort: Required value\n"
        '* spec.restartPolicy: Unsupported value: "Sometimes": '
        'supported values: "Always", "OnFailure", "Never"'
    )


async def test_deployment_selector_mismatch_and_defaults(kubectl: Kubectl) -> None:
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web"},
        "spec": {
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "other"}},
                "spec": {"containers": [{"name": "web", "image": "nginx"}]},
            },
        },
    }
    code, _, err = await kubectl("create", "-f", "-", stdin=deployment)
    assert code == 1
    assert err.strip() == (
        'The Deployment "web" is invalid: spec.template.metadata.labels: Invalid value: '
        'map[string]string{"app":"other"}: `selector` does not match template `labels`'
    )
    deployment["spec"]["template"]["metadata"]["labels"] = {"app": "web"}
    code, out, err = await kubectl("create", "-f", "-", "-o", "json", stdin=deployment)
    assert code == 0, err
    spec = json.loads(out)["spec"]
    assert spec["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"},
    }
    assert spec["template"]["spec"]["containers"][0]["imagePullPolicy"] == "Always"
    # The selector may not change afterwards.
    code, _, err = await kubectl(
        "patch",
        "deployment",
        "web",
        "--type=merge",
        "-p",
        '{"spec":{"selector":{"matchLabels":{"tier":"x"}}}}',
    )
    assert code == 1
    assert "spec.selector: Invalid value:" in err and "field is immutable" in err


async def test_pod_spec_is_immutable_but_the_image(kubectl: Kubectl) -> None:
    code, _, err = await kubectl("create", "-f", "-", stdin=pod())
    assert code == 0, err
    code, _, err = await kubectl("set", "image", "pod/web", "web=nginx:1.28")
    assert code == 0, err
    code, _, err = await kubectl(
        "patch",
        "pod",
        "web",
        "--type=json",
        "-p",
        '[{"op":"replace","path":"/spec/restartPolicy","value":"Never"}]',
    )
    assert code == 1
    assert err.startswith(
        'The Pod "web" is invalid: spec: Forbidden: pod updates may not change fields other '
        "than `spec.containers[*].image`"
    )
