"""Container env and argv: valueFrom sources, envFrom with prefixes, `$(VAR)` expansion, image merging."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from pyk8s.kubelet import cri
from pyk8s.kubelet.env import EnvError, container_argv, container_env, expand, merge_image_env, service_env

POD: dict[str, Any] = {
    "metadata": {"name": "p", "namespace": "ns", "uid": "u-1", "labels": {"app": "web"},
                 "annotations": {"note": "hi"}},
    "spec": {"nodeName": "n1", "serviceAccountName": "sa"},
    "status": {"podIP": "10.0.0.5", "podIPs": [{"ip": "10.0.0.5"}], "hostIP": "192.0.2.1"},
}
CMS = {"cfg": {"data": {"a": "1", "b": "2"}}}
SECRETS = {"sec": {"data": {"pw": base64.b64encode(b"s3cret").decode()}}}


async def _cm(name: str) -> dict[str, Any] | None:
    return CMS.get(name)


async def _sec(name: str) -> dict[str, Any] | None:
    return SECRETS.get(name)


async def env_of(container: dict[str, Any], **kw: Any) -> dict[str, str]:
    return dict(await container_env(POD, container, configmap=_cm, secret=_sec, **kw))


def test_expand_as_kubernetes() -> None:
    env = {"A": "x", "B": "y"}.get
    assert expand("$(A)-$(B)", env) == "x-y"
    assert expand("$(C)", env) == "$(C)"  # undefined stays as written
    assert expand("$$(A)", env) == "$(A)"  # escaped
    assert expand("$A $(A", env) == "$A $(A"
    assert expand("cost: $", env) == "cost: $"


async def test_value_from_sources() -> None:
    c = {"name": "c", "resources": {"limits": {"memory": "64Mi"}, "requests": {"cpu": "250m"}}, "env": [
        {"name": "NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": "NS", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
        {"name": "UID", "valueFrom": {"fieldRef": {"fieldPath": "metadata.uid"}}},
        {"name": "APP", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app']"}}},
        {"name": "NOTE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.annotations['note']"}}},
        {"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
        {"name": "SA", "valueFrom": {"fieldRef": {"fieldPath": "spec.serviceAccountName"}}},
        {"name": "IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
        {"name": "IPS", "valueFrom": {"fieldRef": {"fieldPath": "status.podIPs"}}},
        {"name": "HOST", "valueFrom": {"fieldRef": {"fieldPath": "status.hostIP"}}},
        {"name": "MEM", "valueFrom": {"resourceFieldRef": {"resource": "limits.memory", "divisor": "1Mi"}}},
        {"name": "CPU", "valueFrom": {"resourceFieldRef": {"resource": "requests.cpu", "divisor": "1m"}}},
        {"name": "CPUS", "valueFrom": {"resourceFieldRef": {"resource": "limits.cpu"}}},
        {"name": "A", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "a"}}},
        {"name": "PW", "valueFrom": {"secretKeyRef": {"name": "sec", "key": "pw"}}},
        {"name": "OPT", "valueFrom": {"secretKeyRef": {"name": "nope", "key": "x", "optional": True}}},
        {"name": "MSG", "value": "$(NAME) in $(NS) at $(IP), $(UNSET)"},
    ]}
    env = await env_of(c, allocatable={"cpu": "3"})
    assert env == {"NAME": "p", "NS": "ns", "UID": "u-1", "APP": "web", "NOTE": "hi", "NODE": "n1",
                   "SA": "sa", "IP": "10.0.0.5", "IPS": "10.0.0.5", "HOST": "192.0.2.1", "MEM": "64",
                   "CPU": "250",
                   "CPUS": "3", "A": "1", "PW": "s3cret", "MSG": "p in ns at 10.0.0.5, $(UNSET)"}


async def test_env_from_with_prefix_and_env_overrides() -> None:
    c = {"name": "c", "envFrom": [{"configMapRef": {"name": "cfg"}, "prefix": "CFG_"},
                                  {"secretRef": {"name": "sec"}}],
         "env": [{"name": "CFG_a", "value": "override"}]}
    assert await env_of(c) == {"CFG_a": "override", "CFG_b": "2", "pw": "s3cret"}


async def test_missing_sources_are_config_errors_with_kubernetes_messages() -> None:
    with pytest.raises(EnvError, match='configmap "nope" not found'):
        await env_of({"name": "c", "env": [{"name": "X", "valueFrom": {
            "configMapKeyRef": {"name": "nope", "key": "a"}}}]})
    with pytest.raises(EnvError, match="couldn't find key zz in ConfigMap ns/cfg"):
        await env_of({"name": "c", "env": [{"name": "X", "valueFrom": {
            "configMapKeyRef": {"name": "cfg", "key": "zz"}}}]})
    with pytest.raises(EnvError, match='secret "nope" not found'):
        await env_of({"name": "c", "envFrom": [{"secretRef": {"name": "nope"}}]})


def test_argv_merges_image_entrypoint_and_cmd() -> None:
    image = cri.ImageConfig(entrypoint=("/entry",), cmd=("--default",))
    env = [("WHO", "world")]
    assert container_argv({}, image, env) == ["/entry", "--default"]
    assert container_argv({"args": ["hello $(WHO)"]}, image, env) == ["/entry", "hello world"]
    assert container_argv({"command": ["echo"]}, image, env) == ["echo"]
    assert container_argv({"command": ["echo"], "args": ["$(WHO)", "$$(WHO)"]}, image, env) == \
        ["echo", "world", "$(WHO)"]


def test_image_env_is_overridden_by_the_pod() -> None:
    image = cri.ImageConfig(env=("PATH=/bin", "A=image"))
    assert merge_image_env(image, [("A", "pod"), ("B", "b")]) == [("PATH", "/bin"), ("A", "pod"), ("B", "b")]


def test_service_links() -> None:
    svc = {"metadata": {"name": "my-db", "namespace": "ns"},
           "spec": {"clusterIP": "10.43.0.9", "ports": [{"name": "sql", "port": 5432, "protocol": "TCP"},
                                                        {"port": 53, "protocol": "UDP"}]}}
    headless = {"metadata": {"name": "h"}, "spec": {"clusterIP": "None", "ports": [{"port": 1}]}}
    env = service_env([svc, headless])
    assert env == {
        "MY_DB_SERVICE_HOST": "10.43.0.9", "MY_DB_SERVICE_PORT": "5432", "MY_DB_SERVICE_PORT_SQL": "5432",
        "MY_DB_PORT": "tcp://10.43.0.9:5432",
        "MY_DB_PORT_5432_TCP": "tcp://10.43.0.9:5432", "MY_DB_PORT_5432_TCP_PROTO": "tcp",
        "MY_DB_PORT_5432_TCP_PORT": "5432", "MY_DB_PORT_5432_TCP_ADDR": "10.43.0.9",
        "MY_DB_PORT_53_UDP": "udp://10.43.0.9:53", "MY_DB_PORT_53_UDP_PROTO": "udp",
        "MY_DB_PORT_53_UDP_PORT": "53", "MY_DB_PORT_53_UDP_ADDR": "10.43.0.9"}
