"""apps/v1 workloads: documented manifests pass; broken ones fail at Kubernetes' field paths."""

from __future__ import annotations

import copy
import functools
import json
import shutil
import subprocess
from typing import Any

import pytest

from tests.api._validation import check_in, fields_in

Obj = dict[str, Any]


check = functools.partial(check_in, "apps")
fields = functools.partial(fields_in, "apps")


def deployment() -> Obj:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "nginx-deployment", "namespace": "default", "labels": {"app": "nginx"}},
        "spec": {
            "replicas": 3,
            "selector": {"matchLabels": {"app": "nginx"}},
            "template": {
                "metadata": {"labels": {"app": "nginx"}},
                "spec": {
                    "containers": [
                        {"name": "nginx", "image": "nginx:1.14.2", "ports": [{"containerPort": 80}]}
                    ]
                },
            },
        },
    }


def test_documented_deployment_is_valid() -> None:
    assert check("Deployment", deployment()) == []


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="needs kubectl")
def test_kubectl_generated_workloads_are_valid() -> None:
    """What the real kubectl sends for `kubectl create deployment` passes after defaulting."""
    out = subprocess.run(
        [
            "kubectl",
            "create",
            "deployment",
            "web",
            "--image=nginx",
            "--replicas=2",
            "--port=80",
            "--dry-run=client",
            "-o",
            "json",
        ],
        capture_output=True,
        check=True,
        timeout=30,
    )
    obj = json.loads(out.stdout)
    obj["metadata"]["namespace"] = "default"
    assert check("Deployment", obj) == []


def test_selector_must_match_template() -> None:
    d = deployment()
    d["spec"]["selector"] = {"matchLabels": {"app": "web"}}
    assert check("Deployment", d) == [
        (
            "spec.template.metadata.labels",
            "FieldValueInvalid",
            'Invalid value: map[string]string{"app":"nginx"}: `selector` does not match template `labels`',
        )
    ]
    del d["spec"]["selector"]
    # As Kubernetes: a missing selector matches nothing, so the template's labels do not match it either.
    assert [c[:2] for c in check("Deployment", d)] == [
        ("spec.selector", "FieldValueRequired"),
        ("spec.template.metadata.labels", "FieldValueInvalid"),
    ]
    d["spec"]["selector"] = {}
    assert [c[:2] for c in check("Deployment", d)] == [("spec.selector", "FieldValueInvalid")]
    d["spec"]["selector"] = {
        "matchExpressions": [{"key": "app", "operator": "In", "values": ["nginx", "web"]}]
    }
    assert check("Deployment", d) == []
    d["spec"]["selector"] = {"matchExpressions": [{"key": "app", "operator": "In"}]}
    # A selector that does not parse is also reported as Kubernetes' `invalid label selector`.
    assert fields("Deployment", d) == ["spec.selector.matchExpressions[0].values", "spec.selector"]


def test_replicas_strategy_and_template() -> None:
    d = deployment()
    d["spec"]["replicas"] = -1
    d["spec"]["strategy"] = {"type": "Recreate", "rollingUpdate": {"maxSurge": 1}}
    d["spec"]["template"]["spec"]["restartPolicy"] = "Never"
    assert check("Deployment", d) == [
        ("spec.replicas", "FieldValueInvalid", "Invalid value: -1: must be greater than or equal to 0"),
        (
            "spec.template.spec.restartPolicy",
            "FieldValueNotSupported",
            'Unsupported value: "Never": supported values: "Always"',
        ),
        (
            "spec.strategy.rollingUpdate",
            "FieldValueForbidden",
            "Forbidden: may not be specified when strategy `type` is 'Recreate'",
        ),
    ]
    d = deployment()
    d["spec"]["strategy"] = {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxSurge": 0, "maxUnavailable": "0%"},
    }
    assert check("Deployment", d) == [
        (
            "spec.strategy.rollingUpdate.maxUnavailable",
            "FieldValueInvalid",
            "Invalid value: 0%: may not be 0 when `maxSurge` is 0",
        )
    ]
    d["spec"]["strategy"]["rollingUpdate"] = {"maxSurge": "150%", "maxUnavailable": "150%"}
    assert check("Deployment", d) == [  # a surge may exceed 100%, unavailability may not
        (
            "spec.strategy.rollingUpdate.maxUnavailable",
            "FieldValueInvalid",
            "Invalid value: 150%: must not be greater than 100%",
        )
    ]
    d = deployment()
    d["spec"]["template"]["spec"]["containers"][0]["image"] = ""
    assert fields("Deployment", d) == ["spec.template.spec.containers[0].image"]


def test_selector_is_immutable() -> None:
    old = deployment()
    new = deployment()
    new["spec"]["selector"]["matchLabels"]["tier"] = "web"
    new["spec"]["template"]["metadata"]["labels"]["tier"] = "web"
    assert check("Deployment", new, old) == [
        (
            "spec.selector",
            "FieldValueInvalid",
            'Invalid value: v1.LabelSelector{MatchLabels:map[string]string{"app":"nginx", "tier":"web"}, '
            "MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: field is immutable",
        )
    ]
    scaled = deployment()
    scaled["spec"]["replicas"] = 5
    assert check("Deployment", scaled, old) == []


def test_replicaset_statefulset_daemonset() -> None:
    spec = deployment()["spec"]
    rs = {"metadata": {"name": "frontend", "namespace": "default"}, "spec": copy.deepcopy(spec)}
    assert check("ReplicaSet", rs) == []
    sts = {
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {
            **copy.deepcopy(spec),
            "serviceName": "nginx",
            "minReadySeconds": 10,
            "volumeClaimTemplates": [
                {
                    "metadata": {"name": "www"},
                    "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
                }
            ],
        },
    }
    assert check("StatefulSet", sts) == []
    changed = copy.deepcopy(sts)
    changed["spec"]["serviceName"] = "other"
    result = check("StatefulSet", changed, sts)
    assert result == [
        (
            "spec",
            "FieldValueForbidden",
            "Forbidden: updates to statefulset spec for fields other than 'replicas', 'ordinals', "
            "'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and "
            "'minReadySeconds' are forbidden",
        )
    ]
    ds_spec = {k: v for k, v in copy.deepcopy(spec).items() if k != "replicas"}
    ds = {"metadata": {"name": "fluentd-elasticsearch", "namespace": "kube-system"}, "spec": ds_spec}
    assert check("DaemonSet", ds) == []
    ds["spec"]["updateStrategy"] = {"type": "Surge"}
    assert check("DaemonSet", ds) == [
        (
            "spec.updateStrategy.type",
            "FieldValueNotSupported",
            'Unsupported value: "Surge": supported values: "RollingUpdate", "OnDelete"',
        )
    ]
