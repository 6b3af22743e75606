"""Decoding the protobuf bodies the real kubectl 1.32 sent (captured in tests/api/data/protobuf)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pyk8s.api.errors import StatusError
from pyk8s.api.protobuf import MAGIC, decode

DATA = Path(__file__).parent / "data" / "protobuf"


def body(name: str) -> bytes:
    return (DATA / f"{name}.pb").read_bytes()


def test_configmap_from_kubectl_create() -> None:
    # kubectl create configmap cm1 --from-literal=a=b --from-literal=n=1
    assert decode(body("v1-configmaps")) == {
        "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm1"}, "data": {"a": "b", "n": "1"}
    }


def test_secret_bytes_become_base64() -> None:
    # kubectl create secret generic s1 --from-literal=pw=hunter2
    assert decode(body("v1-secrets"))["data"] == {"pw": "aHVudGVyMg=="}


def test_deployment_keeps_pointer_fields_and_drops_go_zero_values() -> None:
    # kubectl create deployment web --image=busybox:1.36 --replicas=3 --port=80
    dep = decode(body("apps-v1-deployments"))
    assert dep["apiVersion"] == "apps/v1" and dep["kind"] == "Deployment"
    assert dep["metadata"] == {"name": "web", "labels": {"app": "web"}}
    assert dep["spec"]["replicas"] == 3
    assert dep["spec"]["selector"] == {"matchLabels": {"app": "web"}}
    container = dep["spec"]["template"]["spec"]["containers"][0]
    assert container == {"name": "busybox", "image": "busybox:1.36", "ports": [{"containerPort": 80}],
                         "resources": {}}


def test_service_int_or_string_target_port() -> None:
    # kubectl create service nodeport svc1 --tcp=80:8080
    svc = decode(body("v1-services"))
    assert svc["spec"]["type"] == "NodePort"
    assert svc["spec"]["ports"] == [{"name": "80-8080", "protocol": "TCP", "port": 80, "targetPort": 8080}]


def test_cronjob_and_namespace() -> None:
    cj = decode(body("batch-v1-cronjobs"))
    assert cj["spec"]["schedule"] == "*/1 * * * *"
    assert cj["spec"]["jobTemplate"]["spec"]["template"]["spec"]["restartPolicy"] == "OnFailure"
    assert decode(body("v1-namespaces"))["metadata"] == {"name": "ns1"}


@pytest.mark.parametrize("bad", [b"", b"{}", b"k8s", MAGIC + b"\xff\xff\xff", body("v1-configmaps")[:-3]])
def test_malformed_bodies_are_400(bad: bytes) -> None:
    with pytest.raises(StatusError) as err:
        decode(bad)
    assert err.value.code == 400


def test_unknown_kind_is_400() -> None:
    raw = body("v1-configmaps").replace(b"ConfigMap", b"ConfigMop")
    with pytest.raises(StatusError) as err:
        decode(raw)
    assert err.value.code == 400 and "ConfigMop" in err.value.message
