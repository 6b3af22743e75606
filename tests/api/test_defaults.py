"""Defaults compared with what `kubectl get -o yaml` shows for the same manifests on a real cluster
(leaving out what admission plugins and controllers add: priority, service account, tolerations)."""

from __future__ import annotations

import base64
import copy
from typing import Any

import pytest

from pyk8s.api.catalog import by_kind
from pyk8s.api.defaults import apply_defaults
from pyk8s.api.defaults.pod import image_pull_policy

Obj = dict[str, Any]

DEFAULTED_NGINX_CONTAINER = {
    "name": "nginx",
    "image": "nginx:1.14.2",
    "imagePullPolicy": "IfNotPresent",
    "ports": [{"containerPort": 80, "protocol": "TCP"}],
    "resources": {},
    "terminationMessagePath": "/dev/termination-log",
    "terminationMessagePolicy": "File",
}
DEFAULTED_TEMPLATE_SPEC = {
    "containers": [DEFAULTED_NGINX_CONTAINER],
    "dnsPolicy": "ClusterFirst",
    "restartPolicy": "Always",
    "schedulerName": "default-scheduler",
    "securityContext": {},
    "terminationGracePeriodSeconds": 30,
}


def defaulted(group: str, kind: str, obj: Obj) -> Obj:
    info = by_kind(group, kind)
    assert info is not None
    obj = copy.deepcopy(obj)
    apply_defaults(info, obj)
    again = copy.deepcopy(obj)
    apply_defaults(info, again)
    assert again == obj, "defaulting must be idempotent: it runs again on every update"
    return obj


def nginx_template() -> Obj:
    return {
        "metadata": {"labels": {"app": "nginx"}},
        "spec": {
            "containers": [{"name": "nginx", "image": "nginx:1.14.2", "ports": [{"containerPort": 80}]}]
        },
    }


def test_pod() -> None:
    pod = defaulted("", "Pod", {"metadata": {"name": "nginx"}, "spec": nginx_template()["spec"]})
    assert pod["spec"] == {**DEFAULTED_TEMPLATE_SPEC, "enableServiceLinks": True}


def test_pod_requests_default_to_limits_and_probes_volumes_env() -> None:
    spec = {
        "containers": [
            {
                "name": "app",
                "image": "busybox",
                "resources": {"limits": {"cpu": "500m", "memory": "128Mi"}, "requests": {"cpu": "100m"}},
                "livenessProbe": {"httpGet": {"port": 8080}},
                "env": [{"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}}],
            }
        ],
        "volumes": [
            {"name": "scratch"},
            {"name": "cfg", "configMap": {"name": "c"}},
            {"name": "host", "hostPath": {"path": "/srv"}},
        ],
    }
    pod = defaulted("", "Pod", {"metadata": {"name": "p"}, "spec": spec})
    c = pod["spec"]["containers"][0]
    assert c["imagePullPolicy"] == "Always"
    assert c["resources"]["requests"] == {"cpu": "100m", "memory": "128Mi"}
    assert c["livenessProbe"] == {
        "httpGet": {"port": 8080, "path": "/", "scheme": "HTTP"},
        "timeoutSeconds": 1,
        "periodSeconds": 10,
        "successThreshold": 1,
        "failureThreshold": 3,
    }
    assert c["env"][0]["valueFrom"]["fieldRef"] == {"fieldPath": "spec.nodeName", "apiVersion": "v1"}
    assert pod["spec"]["volumes"] == [
        {"name": "scratch", "emptyDir": {}},
        {"name": "cfg", "configMap": {"name": "c", "defaultMode": 420}},
        {"name": "host", "hostPath": {"path": "/srv", "type": ""}},
    ]


@pytest.mark.parametrize(
    ("image", "policy"),
    [
        ("nginx", "Always"),
        ("nginx:latest", "Always"),
        ("nginx:1.14.2", "IfNotPresent"),
        ("localhost:5000/app", "Always"),
        ("localhost:5000/app:v1", "IfNotPresent"),
        ("busybox@sha256:" + "a" * 64, "IfNotPresent"),
    ],
)
def test_image_pull_policy(image: str, policy: str) -> None:
    assert image_pull_policy(image) == policy


def test_host_network_pods_get_host_ports() -> None:
    spec = {
        "hostNetwork": True,
        "containers": [{"name": "a", "image": "a:1", "ports": [{"containerPort": 53}]}],
    }
    pod = defaulted("", "Pod", {"metadata": {"name": "p"}, "spec": spec})
    assert pod["spec"]["containers"][0]["ports"] == [{"containerPort": 53, "protocol": "TCP", "hostPort": 53}]


def test_deployment() -> None:
    d = defaulted(
        "apps",
        "Deployment",
        {
            "metadata": {"name": "nginx-deployment"},
            "spec": {
                "replicas": 3,
                "selector": {"matchLabels": {"app": "nginx"}},
                "template": nginx_template(),
            },
        },
    )
    assert d["spec"] == {
        "replicas": 3,
        "selector": {"matchLabels": {"app": "nginx"}},
        "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}},
        "revisionHistoryLimit": 10,
        "progressDeadlineSeconds": 600,
        "template": {"metadata": {"labels": {"app": "nginx"}}, "spec": DEFAULTED_TEMPLATE_SPEC},
    }
    recreate = defaulted(
        "apps", "Deployment", {"metadata": {"name": "d"}, "spec": {"strategy": {"type": "Recreate"}}}
    )
    assert recreate["spec"]["strategy"] == {"type": "Recreate"} and recreate["spec"]["replicas"] == 1


def test_statefulset_daemonset_replicaset() -> None:
    sts = defaulted(
        "apps",
        "StatefulSet",
        {
            "metadata": {"name": "web"},
            "spec": {
                "template": nginx_template(),
                "volumeClaimTemplates": [{"metadata": {"name": "www"}, "spec": {}}],
            },
        },
    )
    spec = sts["spec"]
    assert (spec["replicas"], spec["podManagementPolicy"], spec["revisionHistoryLimit"]) == (
        1,
        "OrderedReady",
        10,
    )
    assert spec["updateStrategy"] == {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}
    assert spec["persistentVolumeClaimRetentionPolicy"] == {"whenDeleted": "Retain", "whenScaled": "Retain"}
    assert spec["volumeClaimTemplates"][0] == {
        "metadata": {"name": "www"},
        "spec": {"volumeMode": "Filesystem"},
        "status": {"phase": "Pending"},
    }
    explicit_spec = {"updateStrategy": {"type": "RollingUpdate"}}
    explicit = defaulted("apps", "StatefulSet", {"metadata": {"name": "web"}, "spec": explicit_spec})
    assert explicit["spec"]["updateStrategy"] == {
        "type": "RollingUpdate"
    }  # as Kubernetes, no partition block
    ds = defaulted("apps", "DaemonSet", {"metadata": {"name": "ds"}, "spec": {"template": nginx_template()}})
    assert ds["spec"]["updateStrategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0},
    }
    assert ds["spec"]["template"]["spec"] == DEFAULTED_TEMPLATE_SPEC
    rs = defaulted("apps", "ReplicaSet", {"metadata": {"name": "rs"}, "spec": {"template": nginx_template()}})
    assert rs["spec"]["replicas"] == 1


def test_job_and_cronjob() -> None:
    uid = "0b7e4a34-0f5e-4a9a-9d0c-d2ac4d16f1a2"
    job = defaulted(
        "batch",
        "Job",
        {
            "metadata": {"name": "pi", "uid": uid},
            "spec": {
                "backoffLimit": 4,
                "template": {
                    "spec": {"containers": [{"name": "pi", "image": "perl:5.34.0"}], "restartPolicy": "Never"}
                },
            },
        },
    )
    spec = job["spec"]
    assert {
        k: spec[k]
        for k in (
            "backoffLimit",
            "completions",
            "parallelism",
            "completionMode",
            "suspend",
            "podReplacementPolicy",
        )
    } == {
        "backoffLimit": 4,
        "completions": 1,
        "parallelism": 1,
        "completionMode": "NonIndexed",
        "suspend": False,
        "podReplacementPolicy": "TerminatingOrFailed",
    }
    labels = {
        "batch.kubernetes.io/controller-uid": uid,
        "batch.kubernetes.io/job-name": "pi",
        "controller-uid": uid,
        "job-name": "pi",
    }
    assert spec["selector"] == {"matchLabels": {"batch.kubernetes.io/controller-uid": uid}}
    assert spec["template"]["metadata"]["labels"] == labels
    assert job["metadata"]["labels"] == labels
    cron = defaulted(
        "batch",
        "CronJob",
        {
            "metadata": {"name": "hello"},
            "spec": {
                "schedule": "* * * * *",
                "jobTemplate": {
                    "spec": {
                        "template": {
                            "spec": {
                                "containers": [{"name": "hello", "image": "busybox:1.28"}],
                                "restartPolicy": "OnFailure",
                            }
                        }
                    }
                },
            },
        },
    )
    spec = cron["spec"]
    assert (
        spec["concurrencyPolicy"],
        spec["suspend"],
        spec["successfulJobsHistoryLimit"],
        spec["failedJobsHistoryLimit"],
    ) == ("Allow", False, 3, 1)
    assert spec["jobTemplate"]["spec"]["template"]["spec"]["schedulerName"] == "default-scheduler"


def test_service() -> None:
    svc = defaulted(
        "",
        "Service",
        {
            "metadata": {"name": "my-service"},
            "spec": {
                "selector": {"app": "MyApp"},
                "ports": [{"port": 80, "targetPort": 9376}, {"port": 443, "name": "https"}],
            },
        },
    )
    assert svc["spec"] == {
        "selector": {"app": "MyApp"},
        "type": "ClusterIP",
        "sessionAffinity": "None",
        "ports": [
            {"port": 80, "targetPort": 9376, "protocol": "TCP"},
            {"port": 443, "name": "https", "targetPort": 443, "protocol": "TCP"},
        ],
        "internalTrafficPolicy": "Cluster",
        "ipFamilyPolicy": "SingleStack",
        "ipFamilies": ["IPv4"],
    }
    node_port = defaulted(
        "",
        "Service",
        {"metadata": {"name": "n"}, "spec": {"type": "NodePort", "clusterIP": "10.43.0.5", "ports": []}},
    )
    assert node_port["spec"]["externalTrafficPolicy"] == "Cluster"
    assert node_port["spec"]["clusterIPs"] == ["10.43.0.5"]
    sticky = defaulted("", "Service", {"metadata": {"name": "s"}, "spec": {"sessionAffinity": "ClientIP"}})
    assert sticky["spec"]["sessionAffinityConfig"] == {"clientIP": {"timeoutSeconds": 10800}}
    plain = defaulted("", "Service", {"metadata": {"name": "s"}, "spec": {"sessionAffinityConfig": {}}})
    assert "sessionAffinityConfig" not in plain["spec"]  # cleared when the affinity is None
    external_ips = defaulted(
        "", "Service", {"metadata": {"name": "s"}, "spec": {"externalIPs": ["192.0.2.1"]}}
    )
    assert external_ips["spec"]["externalTrafficPolicy"] == "Cluster"
    external = defaulted(
        "",
        "Service",
        {"metadata": {"name": "e"}, "spec": {"type": "ExternalName", "externalName": "example.com"}},
    )
    assert external["spec"] == {
        "type": "ExternalName",
        "externalName": "example.com",
        "sessionAffinity": "None",
    }


def test_secret_namespace_volumes() -> None:
    secret = defaulted(
        "",
        "Secret",
        {"metadata": {"name": "s"}, "data": {"a": "YQ=="}, "stringData": {"a": "override", "b": "bee"}},
    )
    assert secret["type"] == "Opaque" and "stringData" not in secret
    assert {k: base64.b64decode(v).decode() for k, v in secret["data"].items()} == {
        "a": "override",
        "b": "bee",
    }
    ns = defaulted("", "Namespace", {"metadata": {"name": "dev"}})
    assert ns == {
        "metadata": {"name": "dev", "labels": {"kubernetes.io/metadata.name": "dev"}},
        "spec": {"finalizers": ["kubernetes"]},
        "status": {"phase": "Active"},
    }
    pvc = defaulted("", "PersistentVolumeClaim", {"metadata": {"name": "c"}, "spec": {}})
    assert pvc["spec"]["volumeMode"] == "Filesystem" and pvc["status"] == {"phase": "Pending"}
    pv = defaulted("", "PersistentVolume", {"metadata": {"name": "v"}, "spec": {"hostPath": {"path": "/d"}}})
    assert pv["spec"]["persistentVolumeReclaimPolicy"] == "Retain" and pv["status"] == {"phase": "Pending"}


def test_rbac_and_classes() -> None:
    binding = defaulted(
        "rbac.authorization.k8s.io",
        "RoleBinding",
        {
            "metadata": {"name": "b"},
            "roleRef": {"kind": "Role", "name": "r"},
            "subjects": [{"kind": "User", "name": "jane"}, {"kind": "ServiceAccount", "name": "default"}],
        },
    )
    assert binding["roleRef"]["apiGroup"] == "rbac.authorization.k8s.io"
    assert [s["apiGroup"] for s in binding["subjects"]] == ["rbac.authorization.k8s.io", ""]
    sc = defaulted("storage.k8s.io", "StorageClass", {"metadata": {"name": "s"}, "provisioner": "p"})
    assert (sc["reclaimPolicy"], sc["volumeBindingMode"]) == ("Delete", "Immediate")
    limits = defaulted(
        "",
        "LimitRange",
        {
            "metadata": {"name": "l"},
            "spec": {"limits": [{"type": "Container", "max": {"cpu": "1"}, "min": {"memory": "10Mi"}}]},
        },
    )
    assert limits["spec"]["limits"][0]["default"] == {"cpu": "1"}
    assert limits["spec"]["limits"][0]["defaultRequest"] == {"cpu": "1", "memory": "10Mi"}


def test_unknown_kinds_and_bad_shapes_are_left_alone() -> None:
    info = by_kind("", "ConfigMap")
    assert info is not None
    cm: Obj = {"metadata": {"name": "c"}, "data": {"a": "b"}}
    apply_defaults(info, cm)
    assert cm == {"metadata": {"name": "c"}, "data": {"a": "b"}}
    defaulted("", "Pod", {"metadata": {"name": "p"}, "spec": {"containers": "nope", "volumes": [1, None]}})
    defaulted("apps", "Deployment", {"spec": {"template": "x", "strategy": 5}})


def test_quantities_are_stored_in_canonical_form() -> None:
    resources = {"limits": {"cpu": 0.5, "memory": "1024Mi"}, "requests": {"cpu": "0.0001"}}
    spec = {
        "containers": [{"name": "a", "image": "a:1", "resources": resources}],
        "volumes": [{"name": "tmp", "emptyDir": {"sizeLimit": "0.5Gi"}}],
    }
    pod = defaulted("", "Pod", {"metadata": {"name": "p"}, "spec": spec})
    resources = pod["spec"]["containers"][0]["resources"]
    assert resources == {
        "limits": {"cpu": "500m", "memory": "1Gi"},
        "requests": {"cpu": "1m", "memory": "1Gi"},
    }
    assert pod["spec"]["volumes"][0]["emptyDir"] == {"sizeLimit": "512Mi"}
    quota = defaulted(
        "", "ResourceQuota", {"metadata": {"name": "q"}, "spec": {"hard": {"cpu": 2, "pods": "10"}}}
    )
    assert quota["spec"]["hard"] == {"cpu": "2", "pods": "10"}
    claim = {"metadata": {"name": "c"}, "spec": {"resources": {"requests": {"storage": "2048Mi"}}}}
    pvc = defaulted("", "PersistentVolumeClaim", claim)
    assert pvc["spec"]["resources"]["requests"] == {"storage": "2Gi"}
    broken = defaulted("", "Pod", {"metadata": {"name": "p"}, "spec": {
        "containers": [{"name": "a", "image": "a", "resources": {"limits": {"cpu": "lots"}}}]}})  # fmt: skip
    assert broken["spec"]["containers"][0]["resources"]["limits"] == {"cpu": "lots"}  # left for validation
