"""Hostile manifests: defaulting and validation never raise, whatever JSON shape arrives (a wrong type is
a cause, never a crash), for every kind with its own rules."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pyk8s.api.catalog import by_kind
from pyk8s.api.defaults import apply_defaults
from pyk8s.api.errors import Cause
from pyk8s.api.validation import VALIDATORS, validate

# Keys the validators look at, so random objects reach deep into the rules rather than stopping at the top.
# fmt: off
_KEYS = [
    "spec", "metadata", "name", "namespace", "labels", "containers", "initContainers", "image", "ports",
    "containerPort", "protocol", "env", "valueFrom", "volumes", "volumeMounts", "resources", "limits",
    "requests", "selector", "matchLabels", "matchExpressions", "template", "strategy", "rollingUpdate",
    "maxSurge", "maxUnavailable", "replicas", "data", "binaryData", "type", "rules", "subjects", "roleRef",
    "schedule", "jobTemplate", "tolerations", "clusterIP", "clusterIPs", "targetPort", "addressType",
    "endpoints", "addresses", "subsets", "hard", "updateStrategy", "handler", "value", "key", "operator",
    "values", "dnsPolicy", "restartPolicy", "livenessProbe", "httpGet", "emptyDir", "configMap", "secret",
    "accessModes", "capacity", "finalizers", "annotations", "sessionAffinity", "timeZone", "eventTime",
]
# fmt: on
_WORDS = ["", "None", "Always", "TCP", "25%", "1Gi", "*", "Exists", "In", "RollingUpdate", "ClientIP"]
_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**40), 2**40), st.floats(allow_nan=False), st.text(max_size=12),
    st.sampled_from(_WORDS),
)  # fmt: skip
_json = st.recursive(
    _scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(st.one_of(st.sampled_from(_KEYS), st.text(max_size=6)), inner, max_size=4),
    ),
    max_leaves=25,
)

_KINDS = sorted(VALIDATORS)


@pytest.mark.parametrize(("group", "kind"), _KINDS)
@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=st.dictionaries(st.sampled_from(_KEYS), _json, max_size=5), old_body=st.none() | _json)
def test_never_raises(group: str, kind: str, body: dict[str, Any], old_body: Any) -> None:
    info = by_kind(group, kind)
    assert info is not None
    obj = copy.deepcopy(body)
    apply_defaults(info, obj)
    old = old_body if isinstance(old_body, dict) else None
    causes = validate(info, obj, old)
    assert all(
        isinstance(c, Cause) and isinstance(c.field, str) and isinstance(c.message, str) for c in causes
    )


_CONTAINER = {
    "name": "web",
    "image": "nginx:1.27",
    "ports": [{"containerPort": 80, "name": "http"}],
    "env": [{"name": "A", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
    "envFrom": [{"configMapRef": {"name": "cm"}}],
    "resources": {"requests": {"cpu": "100m"}, "limits": {"cpu": "1", "memory": "1Gi"}},
    "livenessProbe": {"httpGet": {"path": "/", "port": "http"}},
    "volumeMounts": [{"name": "v", "mountPath": "/v"}],
    "lifecycle": {"preStop": {"exec": {"command": ["sleep", "1"]}}},
}
_POD_SPEC = {
    "containers": [_CONTAINER],
    "initContainers": [{"name": "init", "image": "busybox", "restartPolicy": "Always"}],
    "volumes": [{"name": "v", "configMap": {"name": "cm", "items": [{"key": "a", "path": "a"}]}}],
    "tolerations": [{"key": "k", "operator": "Exists"}],
    "dnsConfig": {"nameservers": ["192.0.2.1"]},
    "affinity": {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [{"matchExpressions": [{"key": "k", "operator": "In", "values": ["a"]}]}]
            }
        }
    },
    "topologySpreadConstraints": [
        {"maxSkew": 1, "topologyKey": "zone", "whenUnsatisfiable": "DoNotSchedule"}
    ],
}
_TEMPLATE = {"metadata": {"labels": {"app": "web"}}, "spec": _POD_SPEC}
_JOB_TEMPLATE = {"spec": {**_POD_SPEC, "restartPolicy": "OnFailure"}}
_SELECTOR = {"matchLabels": {"app": "web"}, "matchExpressions": [{"key": "app", "operator": "Exists"}]}
# Realistic manifests, each broken at one random place below.
_MANIFESTS: list[tuple[str, str, dict[str, Any]]] = [
    ("", "Pod", {"metadata": {"name": "p", "namespace": "d"}, "spec": _POD_SPEC}),
    (
        "apps",
        "Deployment",
        {
            "metadata": {"name": "d", "namespace": "d"},
            "spec": {
                "selector": _SELECTOR,
                "template": _TEMPLATE,
                "strategy": {"rollingUpdate": {"maxSurge": "25%"}},
            },
        },
    ),
    (
        "apps",
        "StatefulSet",
        {
            "metadata": {"name": "s", "namespace": "d"},
            "spec": {
                "selector": _SELECTOR,
                "template": _TEMPLATE,
                "volumeClaimTemplates": [
                    {"metadata": {"name": "w"}, "spec": {"accessModes": ["ReadWriteOnce"]}}
                ],
            },
        },
    ),
    (
        "apps",
        "DaemonSet",
        {"metadata": {"name": "s", "namespace": "d"}, "spec": {"selector": _SELECTOR, "template": _TEMPLATE}},
    ),
    (
        "batch",
        "CronJob",
        {
            "metadata": {"name": "c", "namespace": "d"},
            "spec": {"schedule": "*/5 * * * *", "jobTemplate": {"spec": {"template": _JOB_TEMPLATE}}},
        },
    ),
    (
        "",
        "Service",
        {
            "metadata": {"name": "s", "namespace": "d"},
            "spec": {
                "selector": {"app": "web"},
                "ports": [{"name": "a", "port": 80}, {"name": "b", "port": 81}],
                "sessionAffinity": "ClientIP",
                "type": "NodePort",
            },
        },
    ),
    (
        "",
        "Secret",
        {
            "metadata": {"name": "s", "namespace": "d"},
            "type": "kubernetes.io/tls",
            "data": {"tls.crt": "YQ==", "tls.key": "YQ=="},
        },
    ),
    (
        "rbac.authorization.k8s.io",
        "RoleBinding",
        {
            "metadata": {"name": "b", "namespace": "d"},
            "roleRef": {"kind": "Role", "name": "r"},
            "subjects": [{"kind": "ServiceAccount", "name": "default"}, {"kind": "User", "name": "jane"}],
        },
    ),
    (
        "discovery.k8s.io",
        "EndpointSlice",
        {
            "metadata": {"name": "e", "namespace": "d"},
            "addressType": "IPv4",
            "endpoints": [{"addresses": ["10.0.0.1"]}],
            "ports": [{"port": 80}],
        },
    ),
]


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, item in value.items():
            out += _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            out += _paths(item, (*prefix, index))
    return out


def _replace(doc: Any, path: tuple[Any, ...], value: Any) -> None:
    for step in path[:-1]:
        doc = doc[step]
    doc[path[-1]] = value


@pytest.mark.parametrize(("group", "kind", "manifest"), _MANIFESTS, ids=[m[1] for m in _MANIFESTS])
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_valid_manifests_broken_anywhere_never_raise(group: str, kind: str, manifest: dict[str, Any],
                                                     data: st.DataObject) -> None:  # fmt: skip
    info = by_kind(group, kind)
    assert info is not None
    valid = copy.deepcopy(manifest)
    apply_defaults(info, valid)
    assert validate(info, valid) == [], "the unbroken manifest is valid"
    broken = copy.deepcopy(manifest)
    path = data.draw(st.sampled_from(_paths(broken)))
    _replace(broken, path, data.draw(_json))
    apply_defaults(info, broken)
    validate(info, broken)
    validate(info, broken, valid)  # as an update too
