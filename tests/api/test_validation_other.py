"""Leases, runtime classes, storage and priority classes, disruption budgets, endpoint slices, events."""

from __future__ import annotations

from typing import Any

from tests.api._validation import check_in as check

Obj = dict[str, Any]


def test_leases() -> None:
    lease = {
        "metadata": {"name": "node-1", "namespace": "kube-node-lease"},
        "spec": {
            "holderIdentity": "node-1",
            "leaseDurationSeconds": 40,
            "renewTime": "2024-01-01T00:00:00.000000Z",
        },
    }
    assert check("coordination.k8s.io", "Lease", lease) == []
    lease["spec"]["leaseDurationSeconds"] = 0
    assert check("coordination.k8s.io", "Lease", lease) == [
        ("spec.leaseDurationSeconds", "FieldValueInvalid", "Invalid value: 0: must be greater than 0")
    ]


def test_runtime_classes() -> None:
    gvisor = {"metadata": {"name": "gvisor"}, "handler": "runsc"}
    assert check("node.k8s.io", "RuntimeClass", gvisor) == []
    assert [
        c[0] for c in check("node.k8s.io", "RuntimeClass", {"metadata": {"name": "x"}, "handler": "Run_SC"})
    ] == ["handler"]
    changed = {"metadata": {"name": "gvisor"}, "handler": "runc"}
    assert check("node.k8s.io", "RuntimeClass", changed, gvisor) == [
        ("handler", "FieldValueInvalid", 'Invalid value: "runc": field is immutable')
    ]


def test_storage_classes() -> None:
    standard = {
        "metadata": {"name": "standard"},
        "provisioner": "kubernetes.io/no-provisioner",
        "volumeBindingMode": "WaitForFirstConsumer",
    }
    assert check("storage.k8s.io", "StorageClass", standard) == []
    assert check("storage.k8s.io", "StorageClass", {"metadata": {"name": "s"}}) == [
        ("provisioner", "FieldValueRequired", "Required value")
    ]
    changed = {**standard, "parameters": {"type": "ssd"}}
    assert check("storage.k8s.io", "StorageClass", changed, standard) == [
        ("parameters", "FieldValueForbidden", "Forbidden: updates to parameters are forbidden.")
    ]


def test_priority_classes() -> None:
    high = {"metadata": {"name": "high-priority"}, "value": 1000000, "globalDefault": False}
    assert check("scheduling.k8s.io", "PriorityClass", high) == []
    assert check("scheduling.k8s.io", "PriorityClass", {**high, "value": 2000000000}) == [
        (
            "value",
            "FieldValueForbidden",
            "Forbidden: maximum allowed value of a user defined priority is 1000000000",
        )
    ]
    assert check("scheduling.k8s.io", "PriorityClass", {**high, "value": 5}, high) == [
        ("value", "FieldValueForbidden", "Forbidden: may not be changed in an update.")
    ]


def test_system_priority_classes() -> None:
    assert check("scheduling.k8s.io", "PriorityClass", {"metadata": {"name": "system-node-critical"},
                                                       "value": 2000001000}) == []  # fmt: skip
    assert check("scheduling.k8s.io", "PriorityClass", {"metadata": {"name": "system-high"}, "value": 5}) == [
        (
            "metadata.name",
            "FieldValueForbidden",
            "Forbidden: priority class names with 'system-' prefix are reserved for system use only. "
            "error: system-high is not a known system priority class",
        )
    ]


def test_disruption_budgets() -> None:
    pdb = {
        "metadata": {"name": "zk-pdb", "namespace": "default"},
        "spec": {"minAvailable": 2, "selector": {"matchLabels": {"app": "zookeeper"}}},
    }
    assert check("policy", "PodDisruptionBudget", pdb) == []
    pdb["spec"]["maxUnavailable"] = "120%"
    assert [c[0] for c in check("policy", "PodDisruptionBudget", pdb)] == ["spec", "spec.maxUnavailable"]


def test_endpoint_slices() -> None:
    slice_ = {
        "metadata": {
            "name": "example-abc",
            "namespace": "default",
            "labels": {"kubernetes.io/service-name": "example"},
        },
        "addressType": "IPv4",
        "ports": [{"name": "http", "protocol": "TCP", "port": 80}],
        "endpoints": [{"addresses": ["10.1.2.3"], "conditions": {"ready": True}, "nodeName": "node-1"}],
    }
    assert check("discovery.k8s.io", "EndpointSlice", slice_) == []
    slice_["endpoints"][0]["addresses"] = ["fd00::1"]
    slice_["endpoints"].append({"addresses": []})
    assert check("discovery.k8s.io", "EndpointSlice", slice_) == [
        (
            "endpoints[0].addresses[0]",
            "FieldValueInvalid",
            'Invalid value: "fd00::1": must be a valid IPv4 address',
        ),
        ("endpoints[1].addresses", "FieldValueRequired", "Required value: must contain at least 1 address"),
    ]


def test_events() -> None:
    event = {
        "metadata": {"name": "nginx.17a", "namespace": "default"},
        "involvedObject": {"kind": "Pod", "name": "nginx", "namespace": "default"},
        "reason": "Scheduled",
        "message": "Successfully assigned",
        "type": "Normal",
    }
    assert check("", "Event", event) == []
    event["involvedObject"]["namespace"] = "other"
    assert check("", "Event", event) == [
        (
            "involvedObject.namespace",
            "FieldValueInvalid",
            'Invalid value: "other": does not match event.namespace',
        )
    ]
    new_event = {
        "metadata": {"name": "e", "namespace": "default"},
        "eventTime": "2024-01-01T00:00:00.000000Z",
        "reportingController": "pyk8s.io/scheduler",
        "reportingInstance": "scheduler-1",
        "action": "Binding",
        "reason": "Scheduled",
        "type": "Normal",
        "regarding": {"kind": "Pod", "name": "nginx", "namespace": "default"},
    }
    assert check("events.k8s.io", "Event", new_event) == []
    del new_event["action"]
    assert check("events.k8s.io", "Event", new_event) == [("action", "FieldValueRequired", "Required value")]


def test_binding_and_reviews_skip_metadata() -> None:
    assert (
        check("", "Binding", {"metadata": {"name": "nginx"}, "target": {"kind": "Node", "name": "node-1"}})
        == []
    )
    assert check("", "Binding", {"metadata": {}, "target": {}}) == [
        ("target.name", "FieldValueRequired", "Required value")
    ]
    review = {"spec": {"user": "jane", "resourceAttributes": {"verb": "get", "resource": "pods"}}}
    assert check("authorization.k8s.io", "SubjectAccessReview", review) == []
    assert [c[0] for c in check("authorization.k8s.io", "SubjectAccessReview", {"spec": {}})] == [
        "spec.resourceAttributes",
        "spec.user",
    ]
