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


KUBECTL_CREATES = [
    ["create", "deployment", "web", "--image=nginx:1.27", "--replicas=2", "--port=80"],
    ["create", "service", "clusterip", "web", "--tcp=80:8080"],
    ["create", "service", "nodeport", "np", "--tcp=80:8080", "--node-port=30080"],
    ["create", "service", "externalname", "ext", "--external-name=example.com"],
    ["create", "service", "loadbalancer", "lb", "--tcp=443:8443"],
    ["create", "job", "pi", "--image=perl:5.34", "--", "perl", "-e", "print 1"],
    ["create", "cronjob", "hello", "--image=busybox", "--schedule=*/1 * * * *", "--", "date"],
    ["create", "configmap", "game", "--from-literal=lives=3"],
    ["create", "secret", "generic", "creds", "--from-literal=password=s3cret"],
    [
        "create",
        "secret",
        "docker-registry",
        "reg",
        "--docker-server=registry.example.com",
        "--docker-username=u",
        "--docker-password=p",
    ],
    ["create", "role", "pod-reader", "--verb=get,list,watch", "--resource=pods"],
    ["create", "clusterrole", "health", "--verb=get", "--non-resource-url=/healthz"],
    ["create", "rolebinding", "rb", "--role=pod-reader", "--user=jane", "--serviceaccount=default:default"],
    ["create", "clusterrolebinding", "crb", "--clusterrole=health", "--group=devs"],
    ["create", "priorityclass", "high", "--value=1000", "--description=important"],
    ["create", "quota", "q", "--hard=cpu=1,memory=1G,pods=2"],
    ["create", "poddisruptionbudget", "pdb", "--selector=app=web", "--min-available=1"],
    ["create", "serviceaccount", "robot"],
    ["create", "namespace", "dev"],
    [
        "run",
        "shell",
        "--image=busybox",
        "--restart=Never",
        "--env=A=B",
        "--labels=app=shell",
        "--",
        "sleep",
        "1",
    ],
]


async def test_what_kubectl_create_sends_is_valid(kubectl: Kubectl) -> None:
    """Every object the real kubectl generates passes defaulting and validation."""
    for args in KUBECTL_CREATES:
        code, _, err = await kubectl(*args)
        assert code == 0, f"kubectl {' '.join(args)}: {err}"
    code, out, err = await kubectl("get", "cronjob", "hello", "-o", "json")
    assert code == 0, err
    spec = json.loads(out)["spec"]
    limits = (spec["successfulJobsHistoryLimit"], spec["failedJobsHistoryLimit"])
    assert (spec["concurrencyPolicy"], *limits) == ("Allow", 3, 1)
    code, out, err = await kubectl("get", "service", "np", "-o", "json")
    assert code == 0, err
    spec = json.loads(out)["spec"]
    assert spec["ports"][0] == {"name": "80-8080", "port": 80, "targetPort": 8080, "nodePort": 30080,
                                "protocol": "TCP"}  # fmt: skip
    assert (spec["externalTrafficPolicy"], spec["sessionAffinity"]) == ("Cluster", "None")


async def test_kubectl_apply_updates_are_validated(kubectl: Kubectl) -> None:
    template = {
        "metadata": {"labels": {"app": "app"}},
        "spec": {"containers": [{"name": "app", "image": "nginx:1.26"}]},
    }
    deployment = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "app"},
                  "spec": {"selector": {"matchLabels": {"app": "app"}}, "template": template}}  # fmt: skip
    code, _, err = await kubectl("apply", "-f", "-", stdin=deployment)
    assert code == 0, err
    deployment["spec"]["template"]["spec"]["containers"][0]["image"] = "nginx:1.27"
    code, _, err = await kubectl("apply", "-f", "-", stdin=deployment)
    assert code == 0, err
    deployment["spec"]["selector"]["matchLabels"]["tier"] = "web"
    deployment["spec"]["template"]["metadata"]["labels"]["tier"] = "web"
    code, _, err = await kubectl("apply", "-f", "-", stdin=deployment)
    assert code == 1
    assert 'The Deployment "app" is invalid: spec.selector: Invalid value: v1.LabelSelector{' in err
    assert err.strip().endswith("field is immutable")
