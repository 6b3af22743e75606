"""Server-side tables: Kubernetes' printer columns and cells, and kubectl get against the full API server."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from pyk8s.api import catalog
from pyk8s.apiserver.tables import human_duration, pod_status, to_table
from tests.apiserver.conftest import Server
from tests.apiserver.test_discovery import needs_kubectl, run_kubectl
from tests.support.kubectl import write_kubeconfig

NOW = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
AN_HOUR_AGO = "2026-01-01T11:00:00Z"


def _info(group: str, plural: str) -> Any:
    info = catalog.lookup(group, "v1", plural)
    assert info is not None
    return info


def _table(group: str, plural: str, obj: dict[str, Any], include: str = "Metadata") -> dict[str, Any]:
    return to_table(_info(group, plural), [obj], include, {"resourceVersion": "7"}, now=NOW)


def _row(group: str, plural: str, obj: dict[str, Any]) -> dict[str, Any]:
    table = _table(group, plural, obj)
    return dict(zip([c["name"] for c in table["columnDefinitions"]], table["rows"][0]["cells"], strict=True))


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (-5, "<invalid>"),
        (-1, "0s"),
        (0, "0s"),
        (119, "119s"),
        (120, "2m"),
        (185, "3m5s"),
        (600, "10m"),
        (179 * 60, "179m"),
        (3 * 3600, "3h"),
        (4 * 3600 + 60, "4h1m"),
        (47 * 3600, "47h"),
        (50 * 3600, "2d2h"),
        (7 * 86400, "7d"),
        (30 * 86400, "30d"),
        (2 * 365 * 86400 + 86400, "2y1d"),
        (9 * 365 * 86400, "9y"),
    ],
)
def test_human_duration(seconds: int, text: str) -> None:
    assert human_duration(seconds) == text


def _pod(status: dict[str, Any], spec: dict[str, Any] | None = None, **meta: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": "p", "creationTimestamp": AN_HOUR_AGO, **meta},
        "spec": spec or {"containers": [{"name": "a"}]},
        "status": status,
    }


def test_pod_status_as_kubectl_computes_it() -> None:
    running = {"name": "a", "ready": True, "restartCount": 0, "state": {"running": {}}}
    assert pod_status(_pod({"phase": "Pending"}))[:3] == ("Pending", 0, 1)
    creating = {"name": "a", "state": {"waiting": {"reason": "ContainerCreating"}}}
    assert pod_status(_pod({"phase": "Pending", "containerStatuses": [creating]}))[0] == "ContainerCreating"
    assert pod_status(_pod({"phase": "Running", "containerStatuses": [running]}))[:3] == ("Running", 1, 1)
    done = {"name": "a", "state": {"terminated": {"reason": "Completed", "exitCode": 0}}}
    assert pod_status(_pod({"phase": "Succeeded", "containerStatuses": [done]}))[0] == "Completed"
    killed = {"name": "a", "state": {"terminated": {"exitCode": 137, "signal": 9}}}
    assert pod_status(_pod({"phase": "Failed", "containerStatuses": [killed]}))[0] == "Signal:9"
    init_spec = {"initContainers": [{"name": "i"}], "containers": [{"name": "a"}]}
    init_waiting = {"name": "i", "state": {"waiting": {"reason": "PodInitializing"}}}
    assert pod_status(_pod({"phase": "Pending", "initContainerStatuses": [init_waiting]}, init_spec))[0] == (
        "Init:0/1"
    )
    init_crash = {"name": "i", "state": {"waiting": {"reason": "CrashLoopBackOff"}}}
    assert pod_status(_pod({"phase": "Pending", "initContainerStatuses": [init_crash]}, init_spec))[0] == (
        "Init:CrashLoopBackOff"
    )
    assert (
        pod_status(_pod({"phase": "Running", "containerStatuses": [running]}, deletionTimestamp=AN_HOUR_AGO))[
            0
        ]
        == "Terminating"
    )
    # A restartable init container (sidecar) counts among the containers once started.
    sidecar_spec = {
        "initContainers": [{"name": "s", "restartPolicy": "Always"}],
        "containers": [{"name": "a"}],
    }
    sidecar = {"name": "s", "started": True, "ready": True, "state": {"running": {}}}
    assert pod_status(
        _pod(
            {"phase": "Running", "initContainerStatuses": [sidecar], "containerStatuses": [running]},
            sidecar_spec,
        )
    )[:3] == ("Running", 2, 2)


def test_pod_row() -> None:
    crashing = {
        "name": "b",
        "ready": False,
        "restartCount": 5,
        "state": {"waiting": {"reason": "CrashLoopBackOff"}},
        "lastState": {"terminated": {"exitCode": 1, "finishedAt": "2026-01-01T11:55:00Z"}},
    }
    running = {"name": "a", "ready": True, "restartCount": 0, "state": {"running": {}}}
    pod = _pod(
        {
            "phase": "Running",
            "podIPs": [{"ip": "10.42.0.7"}],
            "containerStatuses": [running, crashing],
            "conditions": [{"type": "Ready", "status": "False"}, {"type": "gate", "status": "True"}],
        },
        {
            "containers": [{"name": "a"}, {"name": "b"}],
            "nodeName": "n1",
            "readinessGates": [{"conditionType": "gate"}],
        },
    )
    table = _table("", "pods", pod)
    cols = table["columnDefinitions"]
    assert [c["name"] for c in cols] == [
        "Name",
        "Ready",
        "Status",
        "Restarts",
        "Age",
        "IP",
        "Node",
        "Nominated Node",
        "Readiness Gates",
    ]
    assert [c["priority"] for c in cols] == [0, 0, 0, 0, 0, 1, 1, 1, 1]
    assert cols[0]["format"] == "name"
    assert table["rows"][0]["cells"] == [
        "p",
        "1/2",
        "CrashLoopBackOff",
        "5 (5m ago)",
        "60m",
        "10.42.0.7",
        "n1",
        "<none>",
        "1/1",
    ]
    assert table["kind"] == "Table" and table["apiVersion"] == "meta.k8s.io/v1"
    assert table["metadata"] == {"resourceVersion": "7"}
    assert table["rows"][0]["object"] == {
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": pod["metadata"],
    }
    assert _table("", "pods", pod, "Object")["rows"][0]["object"] is pod
    assert _table("", "pods", pod, "None")["rows"][0]["object"] is None
    done = _pod({"phase": "Succeeded"})
    assert _table("", "pods", done)["rows"][0]["conditions"][0]["type"] == "Completed"


def test_workload_rows() -> None:
    template = {
        "spec": {"containers": [{"name": "web", "image": "nginx"}, {"name": "log", "image": "busybox"}]}
    }
    deploy = {
        "metadata": {"name": "d", "creationTimestamp": AN_HOUR_AGO},
        "spec": {
            "replicas": 3,
            "selector": {
                "matchLabels": {"app": "web"},
                "matchExpressions": [{"key": "tier", "operator": "In", "values": ["b", "a"]}],
            },
            "template": template,
        },
        "status": {"readyReplicas": 2, "updatedReplicas": 3, "availableReplicas": 2},
    }
    assert _row("apps", "deployments", deploy) == {
        "Name": "d",
        "Ready": "2/3",
        "Up-to-date": 3,
        "Available": 2,
        "Age": "60m",
        "Containers": "web,log",
        "Images": "nginx,busybox",
        "Selector": "app=web,tier in (a,b)",
    }
    job = {
        "metadata": {"name": "j", "creationTimestamp": AN_HOUR_AGO},
        "spec": {"completions": 3, "template": template},
        "status": {
            "succeeded": 3,
            "startTime": "2026-01-01T11:00:00Z",
            "completionTime": "2026-01-01T11:00:42Z",
            "conditions": [{"type": "Complete", "status": "True"}],
        },
    }
    row = _row("batch", "jobs", job)
    assert (row["Status"], row["Completions"], row["Duration"]) == ("Complete", "3/3", "42s")
    sts = {
        "metadata": {"name": "s", "creationTimestamp": AN_HOUR_AGO},
        "spec": {"replicas": 2, "template": template},
        "status": {"readyReplicas": 1},
    }
    assert _row("apps", "statefulsets", sts)["Ready"] == "1/2"


def test_service_node_and_config_rows() -> None:
    svc = {
        "metadata": {"name": "s", "creationTimestamp": AN_HOUR_AGO},
        "spec": {
            "type": "NodePort",
            "clusterIP": "10.43.0.10",
            "clusterIPs": ["10.43.0.10"],
            "ports": [{"port": 80, "nodePort": 30080, "protocol": "TCP"}, {"port": 53, "protocol": "UDP"}],
            "selector": {"app": "web"},
        },
    }
    assert _row("", "services", svc) == {
        "Name": "s",
        "Type": "NodePort",
        "Cluster-IP": "10.43.0.10",
        "External-IP": "<none>",
        "Port(s)": "80:30080/TCP,53/UDP",
        "Age": "60m",
        "Selector": "app=web",
    }
    lb = {"metadata": {"name": "lb"}, "spec": {"type": "LoadBalancer", "clusterIPs": ["10.43.0.11"]}}
    assert _row("", "services", lb)["External-IP"] == "<pending>"
    node = {
        "metadata": {
            "name": "n1",
            "creationTimestamp": AN_HOUR_AGO,
            "labels": {"node-role.kubernetes.io/control-plane": "", "kubernetes.io/os": "linux"},
        },
        "spec": {"unschedulable": True},
        "status": {
            "conditions": [{"type": "Ready", "status": "True"}],
            "addresses": [{"type": "InternalIP", "address": "192.168.1.2"}],
            "nodeInfo": {"kubeletVersion": "v1.32.0-pyk8s", "osImage": "Debian"},
        },
    }
    row = _row("", "nodes", node)
    assert (row["Status"], row["Roles"], row["Version"], row["Internal-IP"]) == (
        "Ready,SchedulingDisabled",
        "control-plane",
        "v1.32.0-pyk8s",
        "192.168.1.2",
    )
    assert (
        _row("", "namespaces", {"metadata": {"name": "x"}, "status": {"phase": "Active"}})["Status"]
        == "Active"
    )
    secret = {"metadata": {"name": "s"}, "type": "Opaque", "data": {"a": "", "b": ""}}
    assert (_row("", "secrets", secret)["Type"], _row("", "secrets", secret)["Data"]) == ("Opaque", 2)
    assert (
        _row("", "configmaps", {"metadata": {"name": "c"}, "data": {"a": "b"}, "binaryData": {"x": ""}})[
            "Data"
        ]
        == 2
    )
    event = {
        "metadata": {"name": "p.1"},
        "type": "Warning",
        "reason": "BackOff",
        "message": "Back-off",
        "involvedObject": {"kind": "Pod", "name": "p"},
        "lastTimestamp": "2026-01-01T11:58:00Z",
        "firstTimestamp": AN_HOUR_AGO,
        "count": 4,
        "source": {"component": "kubelet", "host": "n1"},
    }
    row = _row("", "events", event)
    assert (row["Last Seen"], row["Object"], row["Source"], row["Count"], row["First Seen"]) == (
        "2m",
        "pod/p",
        "kubelet, n1",
        4,
        "60m",
    )


def test_default_table_is_name_and_created_at() -> None:
    table = _table("", "limitranges", {"metadata": {"name": "l", "creationTimestamp": AN_HOUR_AGO}})
    assert [(c["name"], c["type"]) for c in table["columnDefinitions"]] == [
        ("Name", "string"),
        ("Created At", "date"),
    ]
    assert table["rows"][0]["cells"] == ["l", AN_HOUR_AGO]


@needs_kubectl
async def test_kubectl_get_renders_server_tables(server: Server, tmp_path: Path) -> None:
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "web"},
        "spec": {"containers": [{"name": "c", "image": "busybox"}]},
    }
    status, body = await server.request("POST", "/api/v1/namespaces/default/pods", pod)
    assert status == 201, body
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "conf"}, "data": {"a": "1", "b": "2"}}
    status, body = await server.request("POST", "/api/v1/namespaces/default/configmaps", cm)
    assert status == 201, body
    config = write_kubeconfig(server.url, tmp_path)
    lines = (await run_kubectl(config, "get", "pods", "-o", "wide")).splitlines()
    assert lines[0].split() == [
        "NAME",
        "READY",
        "STATUS",
        "RESTARTS",
        "AGE",
        "IP",
        "NODE",
        "NOMINATED",
        "NODE",
        "READINESS",
        "GATES",
    ]
    assert lines[1].split()[:4] == ["web", "0/1", "Pending", "0"]
    assert lines[1].split()[5:] == ["<none>", "<none>", "<none>", "<none>"]
    lines = (await run_kubectl(config, "get", "configmaps")).splitlines()
    assert lines[0].split() == ["NAME", "DATA", "AGE"] and lines[1].split()[:2] == ["conf", "2"]
    lines = (await run_kubectl(config, "get", "namespaces")).splitlines()
    assert lines[0].split() == ["NAME", "STATUS", "AGE"] and lines[1].split()[:2] == ["default", "Active"]
