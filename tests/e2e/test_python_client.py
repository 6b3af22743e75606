"""The official `kubernetes` Python client against a real `pyk8s server`."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException

from tests.support.cluster import Cluster, start_cluster


@pytest.fixture
def core(cluster: Cluster) -> Iterator[client.CoreV1Api]:
    api = config.new_client_from_config(config_file=str(cluster.kubeconfig))
    try:
        yield client.CoreV1Api(api)
    finally:
        api.close()


def cm(name: str, **data: str) -> client.V1ConfigMap:
    return client.V1ConfigMap(metadata=client.V1ObjectMeta(name=name), data=data)


def test_crud(core: client.CoreV1Api, namespace: str) -> None:
    created = core.create_namespaced_config_map(namespace, cm("one", a="1"))
    assert created.metadata.uid and created.metadata.resource_version
    got = core.read_namespaced_config_map("one", namespace)
    assert got.data == {"a": "1"}
    got.data["b"] = "2"
    updated = core.replace_namespaced_config_map("one", namespace, got)
    assert int(updated.metadata.resource_version) > int(created.metadata.resource_version)
    patched = core.patch_namespaced_config_map("one", namespace, {"data": {"c": "3"}})
    assert patched.data == {"a": "1", "b": "2", "c": "3"}
    core.delete_namespaced_config_map("one", namespace)
    with pytest.raises(ApiException) as err:
        core.read_namespaced_config_map("one", namespace)
    assert err.value.status == 404


def test_stale_update_is_409(core: client.CoreV1Api, namespace: str) -> None:
    first = core.create_namespaced_config_map(namespace, cm("race", a="1"))
    core.patch_namespaced_config_map("race", namespace, {"data": {"a": "2"}})
    first.data["a"] = "3"
    with pytest.raises(ApiException) as err:
        core.replace_namespaced_config_map("race", namespace, first)
    assert err.value.status == 409
    assert core.read_namespaced_config_map("race", namespace).data["a"] == "2"


def test_pagination(core: client.CoreV1Api, namespace: str) -> None:
    for i in range(7):
        core.create_namespaced_config_map(namespace, cm(f"page-{i}", i=str(i)))
    names: list[str] = []
    token = None
    pages = 0
    while True:
        page = core.list_namespaced_config_map(namespace, limit=3, _continue=token)
        pages += 1
        names += [item.metadata.name for item in page.items]
        token = page.metadata._continue
        if not token:
            break
    assert pages == 3
    assert sorted(n for n in names if n.startswith("page-")) == [f"page-{i}" for i in range(7)]


def test_watch_resumes_from_resource_version(core: client.CoreV1Api, namespace: str) -> None:
    listed = core.list_namespaced_config_map(namespace)
    rv = listed.metadata.resource_version
    core.create_namespaced_config_map(namespace, cm("w1", a="1"))
    core.patch_namespaced_config_map("w1", namespace, {"data": {"a": "2"}})
    core.delete_namespaced_config_map("w1", namespace)
    events = []
    w = watch.Watch()
    for ev in w.stream(core.list_namespaced_config_map, namespace, resource_version=rv, timeout_seconds=10):
        if ev["object"].metadata.name == "w1":
            events.append((ev["type"], ev["object"].data))
        if len(events) == 3:
            w.stop()
    assert events == [("ADDED", {"a": "1"}), ("MODIFIED", {"a": "2"}), ("DELETED", {"a": "2"})]


def test_restart_keeps_objects_and_an_older_watch_is_410(tmp_path: Path) -> None:
    """A restarted server keeps every object (SQLite), and its watch cache starts at the current revision:
    a watch from before the restart is 410 Gone, and the client relists, as with Kubernetes."""
    first = start_cluster(data_dir=tmp_path / "data")
    try:
        api = config.new_client_from_config(config_file=str(first.kubeconfig))
        core = client.CoreV1Api(api)
        old_rv = core.create_namespaced_config_map("default", cm("kept", a="1")).metadata.resource_version
        core.create_namespaced_config_map("default", cm("later", a="1"))  # old_rv is now history
        api.close()
    finally:
        assert first.stop() == 0
    second = start_cluster(data_dir=tmp_path / "data")
    try:
        api = config.new_client_from_config(config_file=str(second.kubeconfig))
        core = client.CoreV1Api(api)
        assert core.read_namespaced_config_map("kept", "default").data == {"a": "1"}
        core.create_namespaced_config_map("default", cm("after", a="2"))
        with pytest.raises(ApiException) as err:
            for _ in watch.Watch().stream(core.list_namespaced_config_map, "default",
                                          resource_version=old_rv, timeout_seconds=5, _request_timeout=10):
                pass
        assert err.value.status == 410
        relisted = core.list_namespaced_config_map("default")
        assert {"kept", "later", "after"} <= {item.metadata.name for item in relisted.items}
        assert int(relisted.metadata.resource_version) > int(old_rv)
        api.close()
    finally:
        assert second.stop() == 0
