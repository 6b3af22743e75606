"""Core kinds: documented manifests pass; broken ones fail with Kubernetes' field paths and messages."""

from __future__ import annotations

import base64
import copy
import functools
from typing import Any

import pytest

from pyk8s.api.catalog import by_kind
from pyk8s.api.defaults import apply_defaults
from pyk8s.api.errors import invalid
from pyk8s.api.validation import validate
from pyk8s.api.validation.pod import validate_ephemeral_containers_update
from tests.api._validation import check_in, fields_in

Obj = dict[str, Any]


check = functools.partial(check_in, "")
fields = functools.partial(fields_in, "")


def nginx_pod(**spec: Any) -> Obj:
    pod: Obj = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "nginx", "namespace": "default"},
        "spec": {
            "containers": [{"name": "nginx", "image": "nginx:1.14.2", "ports": [{"containerPort": 80}]}]
        },
    }
    pod["spec"].update(spec)
    return pod


# --- pods -----------------------------------------------------------------------------------------------


def test_documented_pods_are_valid() -> None:
    assert check("Pod", nginx_pod()) == []
    # The docs' pod with a volume, env from a configmap, probes, resources and an init container.
    pod = nginx_pod(
        initContainers=[
            {
                "name": "init-myservice",
                "image": "busybox:1.28",
                "command": ["sh", "-c", "until nslookup myservice; do sleep 2; done"],
            }
        ],
        volumes=[
            {"name": "cache-volume", "emptyDir": {"sizeLimit": "500Mi"}},
            {
                "name": "config",
                "configMap": {
                    "name": "game-demo",
                    "items": [{"key": "game.properties", "path": "game.properties"}],
                },
            },
        ],
    )
    pod["spec"]["containers"][0].update(
        {
            "env": [
                {
                    "name": "PLAYER_INITIAL_LIVES",
                    "valueFrom": {"configMapKeyRef": {"name": "game-demo", "key": "player_initial_lives"}},
                },
                {"name": "MY_NODE_NAME", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
            ],
            "volumeMounts": [
                {"mountPath": "/cache", "name": "cache-volume"},
                {"mountPath": "/config", "name": "config"},
            ],
            "resources": {
                "requests": {"memory": "64Mi", "cpu": "250m"},
                "limits": {"memory": "128Mi", "cpu": "500m"},
            },
            "livenessProbe": {"httpGet": {"path": "/healthz", "port": 8080}, "initialDelaySeconds": 3},
            "readinessProbe": {"tcpSocket": {"port": "http"}},
        }
    )
    assert check("Pod", pod) == []


def test_pod_message_is_what_kubectl_prints() -> None:
    pod = nginx_pod(containers=[{"name": "", "image": "nginx"}])
    info = by_kind("", "Pod")
    assert info is not None
    apply_defaults(info, pod)
    err = invalid("Pod", "nginx", validate(info, pod))
    assert err.code == 422 and err.reason == "Invalid"
    assert err.message == 'Pod "nginx" is invalid: [spec.containers[0].name: Required value]'
    assert err.details["causes"] == [
        {"reason": "FieldValueRequired", "message": "Required value", "field": "spec.containers[0].name"}
    ]


def test_pod_without_containers_or_images() -> None:
    assert check("Pod", nginx_pod(containers=[])) == [
        ("spec.containers", "FieldValueRequired", "Required value")
    ]
    assert check("Pod", nginx_pod(containers=[{"name": "a"}])) == [
        ("spec.containers[0].image", "FieldValueRequired", "Required value")
    ]


def test_pod_names_and_container_names() -> None:
    pod = nginx_pod(
        containers=[
            {"name": "Web_1", "image": "nginx"},
            {"name": "x", "image": "a"},
            {"name": "x", "image": "b"},
        ]
    )
    pod["metadata"]["name"] = "My.Pod"
    result = check("Pod", pod)
    assert result[0][:2] == ("metadata.name", "FieldValueInvalid")
    assert result[0][2].startswith('Invalid value: "My.Pod": a lowercase RFC 1123 subdomain must consist of')
    assert result[1] == (
        "spec.containers[0].name",
        "FieldValueInvalid",
        'Invalid value: "Web_1": a lowercase RFC 1123 label must consist of lower case '
        "alphanumeric characters or '-', and must start and end with an alphanumeric character "
        "(e.g. 'my-name',  or '123-abc', regex used for validation is "
        "'[a-z0-9]([-a-z0-9]*[a-z0-9])?')",
    )
    assert result[2] == ("spec.containers[2].name", "FieldValueDuplicate", 'Duplicate value: "x"')


def test_pod_enums() -> None:
    assert check("Pod", nginx_pod(restartPolicy="Sometimes", dnsPolicy="Google")) == [
        (
            "spec.restartPolicy",
            "FieldValueNotSupported",
            'Unsupported value: "Sometimes": supported values: "Always", "OnFailure", "Never"',
        ),
        (
            "spec.dnsPolicy",
            "FieldValueNotSupported",
            'Unsupported value: "Google": supported values: "ClusterFirstWithHostNet", "ClusterFirst", "Default", '  # noqa: E501
            '"None"',
        ),
    ]
    pod = nginx_pod()
    pod["spec"]["containers"][0]["imagePullPolicy"] = "Sometimes"
    assert fields("Pod", pod) == ["spec.containers[0].imagePullPolicy"]


def test_pod_ports() -> None:
    pod = nginx_pod()
    pod["spec"]["containers"][0]["ports"] = [
        {"containerPort": 70000},
        {"containerPort": 80, "name": "http", "protocol": "HTTP"},
        {"containerPort": 81, "name": "http"},
        {"name": "too-long-port-name-x", "containerPort": 82},
        {},
    ]
    result = check("Pod", pod)
    assert result == [
        (
            "spec.containers[0].ports[0].containerPort",
            "FieldValueInvalid",
            "Invalid value: 70000: must be between 1 and 65535, inclusive",
        ),
        (
            "spec.containers[0].ports[1].protocol",
            "FieldValueNotSupported",
            'Unsupported value: "HTTP": supported values: "SCTP", "TCP", "UDP"',
        ),
        ("spec.containers[0].ports[2].name", "FieldValueDuplicate", 'Duplicate value: "http"'),
        (
            "spec.containers[0].ports[3].name",
            "FieldValueInvalid",
            'Invalid value: "too-long-port-name-x": must be no more than 15 characters',
        ),
        ("spec.containers[0].ports[4].containerPort", "FieldValueRequired", "Required value"),
    ]


def test_pod_volumes() -> None:
    pod = nginx_pod(
        volumes=[
            {"name": "data", "emptyDir": {}, "hostPath": {"path": "/srv"}},
            {"name": "data", "configMap": {"name": "cm"}},
            {"name": "cfg", "configMap": {}},
            {"name": "secret", "secret": {"secretName": "s", "defaultMode": 1000}},
        ]
    )
    pod["spec"]["containers"][0]["volumeMounts"] = [{"name": "missing", "mountPath": "/m"}, {"name": "cfg"}]
    assert check("Pod", pod) == [
        (
            "spec.volumes[0].hostPath",
            "FieldValueForbidden",
            "Forbidden: may not specify more than 1 volume type",
        ),
        ("spec.volumes[1].name", "FieldValueDuplicate", 'Duplicate value: "data"'),
        ("spec.volumes[2].configMap.name", "FieldValueRequired", "Required value"),
        (
            "spec.volumes[3].secret.defaultMode",
            "FieldValueInvalid",
            "Invalid value: 1000: must be a number between 0 and 0777 (octal), both inclusive",
        ),
        ("spec.containers[0].volumeMounts[0].name", "FieldValueNotFound", 'Not found: "missing"'),
        ("spec.containers[0].volumeMounts[1].mountPath", "FieldValueRequired", "Required value"),
    ]


def test_volume_without_source_defaults_to_empty_dir() -> None:
    pod = nginx_pod(volumes=[{"name": "scratch"}])
    assert check("Pod", pod) == []


def test_pod_env() -> None:
    pod = nginx_pod()
    pod["spec"]["containers"][0]["env"] = [
        {"value": "x"},
        {"name": "A=B"},
        {"name": "OK", "value": "v", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": "EMPTY", "valueFrom": {}},
        {"name": "WHERE", "valueFrom": {"fieldRef": {"fieldPath": "spec.hostname"}}},
        {"name": "LABEL", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app']"}}},
    ]
    pod["spec"]["containers"][0]["envFrom"] = [{"prefix": "CM_"}]
    assert check("Pod", pod) == [
        ("spec.containers[0].env[0].name", "FieldValueRequired", "Required value"),
        (
            "spec.containers[0].env[1].name",
            "FieldValueInvalid",
            'Invalid value: "A=B": a valid environment variable name must consist only of printable ASCII '
            "characters other than '='",
        ),
        (
            "spec.containers[0].env[2].valueFrom",
            "FieldValueInvalid",
            'Invalid value: "": may not be specified when `value` is not empty',
        ),
        (
            "spec.containers[0].env[3].valueFrom",
            "FieldValueInvalid",
            'Invalid value: "": must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef` or '
            "`secretKeyRef`",
        ),
        (
            "spec.containers[0].env[4].valueFrom.fieldRef.fieldPath",
            "FieldValueNotSupported",
            'Unsupported value: "spec.hostname": supported values: "metadata.name", "metadata.namespace", '
            '"metadata.uid", "spec.nodeName", "spec.serviceAccountName", "status.hostIP", "status.hostIPs", '
            '"status.podIP", "status.podIPs"',
        ),
        (
            "spec.containers[0].envFrom",
            "FieldValueInvalid",
            'Invalid value: "": must specify one of: `configMapRef` or `secretRef`',
        ),
    ]


def test_probe_and_lifecycle_handlers() -> None:
    pod = nginx_pod()
    pod["spec"]["containers"][0]["readinessProbe"] = {
        "httpGet": {"port": 0, "scheme": "FTP"},
        "exec": {"command": ["true"]},
        "terminationGracePeriodSeconds": 5,
    }
    pod["spec"]["containers"][0]["lifecycle"] = {"preStop": {"exec": {}}}
    pod["spec"]["containers"][0]["terminationMessagePolicy"] = "Log"
    assert check("Pod", pod) == [
        (
            "spec.containers[0].terminationMessagePolicy",
            "FieldValueInvalid",
            "Invalid value: \"Log\": must be 'File' or 'FallbackToLogsOnError'",
        ),
        ("spec.containers[0].lifecycle.preStop.exec.command", "FieldValueRequired", "Required value"),
        (
            "spec.containers[0].readinessProbe.httpGet",
            "FieldValueForbidden",
            "Forbidden: may not specify more than 1 handler type",
        ),
        (
            "spec.containers[0].readinessProbe.terminationGracePeriodSeconds",
            "FieldValueInvalid",
            "Invalid value: 5: must not be set for readinessProbes",
        ),
    ]


def test_host_ports_may_not_collide() -> None:
    pod = nginx_pod(
        containers=[
            {"name": "a", "image": "a", "ports": [{"containerPort": 80, "hostPort": 8080}]},
            {"name": "b", "image": "b", "ports": [{"containerPort": 81, "hostPort": 8080}]},
        ]
    )
    assert check("Pod", pod) == [
        ("spec.containers[1].ports[0].hostPort", "FieldValueDuplicate", 'Duplicate value: "TCP//8080"')
    ]


def test_pod_resources() -> None:
    pod = nginx_pod()
    pod["spec"]["containers"][0]["resources"] = {
        "requests": {"cpu": "2", "memory": "-1Mi", "gpu": "1"},
        "limits": {"cpu": "1", "memory": "lots"},
    }
    assert check("Pod", pod) == [
        (
            "spec.containers[0].resources.limits[memory]",
            "FieldValueInvalid",
            'Invalid value: "lots": quantities must match the regular expression '
            "'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'",
        ),
        (
            "spec.containers[0].resources.requests",
            "FieldValueInvalid",
            'Invalid value: "2": must be less than or equal to cpu limit of 1',
        ),
        (
            "spec.containers[0].resources.requests[memory]",
            "FieldValueInvalid",
            'Invalid value: "-1Mi": must be greater than or equal to 0',
        ),
        (
            "spec.containers[0].resources.requests[gpu]",
            "FieldValueInvalid",
            'Invalid value: "gpu": must be a standard resource for containers',
        ),
    ]
    # Messages show quantities as Kubernetes prints them: canonical.
    pod["spec"]["containers"][0]["resources"] = {"requests": {"cpu": "1.5"}, "limits": {"cpu": "1000m"}}
    assert check("Pod", pod) == [
        (
            "spec.containers[0].resources.requests",
            "FieldValueInvalid",
            'Invalid value: "1500m": must be less than or equal to cpu limit of 1',
        )
    ]
    # Limits alone are valid: requests default to them.
    pod["spec"]["containers"][0]["resources"] = {"limits": {"cpu": "500m", "memory": "1Gi"}}
    assert check("Pod", pod) == []


def test_pod_probes_and_tolerations() -> None:
    pod = nginx_pod(
        tolerations=[
            {"key": "k", "operator": "Exists", "value": "v"},
            {"operator": "Equal", "value": "v"},
            {"key": "k", "effect": "NoSchedule", "tolerationSeconds": 5},
        ]
    )
    pod["spec"]["containers"][0]["livenessProbe"] = {"periodSeconds": 5}
    pod["spec"]["containers"][0]["startupProbe"] = {"exec": {"command": ["true"]}, "successThreshold": 2}
    assert fields("Pod", pod) == [
        "spec.containers[0].livenessProbe",
        "spec.containers[0].startupProbe.successThreshold",
        "spec.tolerations[0].operator",
        "spec.tolerations[1].operator",
        "spec.tolerations[2].effect",
    ]


def test_pod_dns_and_host_network() -> None:
    assert check("Pod", nginx_pod(dnsPolicy="None")) == [
        (
            "spec.dnsConfig",
            "FieldValueRequired",
            "Required value: must provide `dnsConfig` when `dnsPolicy` is None",
        )
    ]
    dns_config = {"nameservers": ["192.0.2.1", "resolver"], "searches": ["ns1.svc.cluster-domain.example."]}
    custom = nginx_pod(dnsPolicy="None", dnsConfig=dns_config)
    assert check("Pod", custom) == [
        (
            "spec.dnsConfig.nameservers[1]",
            "FieldValueInvalid",
            'Invalid value: "resolver": must be valid IP address',
        )
    ]
    host = nginx_pod(hostNetwork=True)
    host["spec"]["containers"][0]["ports"] = [{"containerPort": 80, "hostPort": 8080}]
    assert check("Pod", host) == [
        (
            "spec.containers[0].ports[0].containerPort",
            "FieldValueInvalid",
            "Invalid value: 80: must match `hostPort` when `hostNetwork` is true",
        )
    ]
    host["spec"]["containers"][0]["ports"] = [{"containerPort": 80}]  # the host port defaults to 80
    assert check("Pod", host) == []


def test_security_contexts() -> None:
    pod = nginx_pod(securityContext={"runAsUser": -1, "fsGroup": 2000})
    pod["spec"]["containers"][0]["securityContext"] = {"privileged": True, "allowPrivilegeEscalation": False}
    assert [c[:2] for c in check("Pod", pod)] == [
        ("spec.containers[0].securityContext", "FieldValueInvalid"),
        ("spec.securityContext.runAsUser", "FieldValueInvalid"),
    ]
    assert check("Pod", pod)[1][2] == "Invalid value: -1: must be between 0 and 2147483647, inclusive"


def test_padded_images_are_refused_in_pods_only() -> None:
    pod = nginx_pod(containers=[{"name": "web", "image": " nginx"}])
    assert fields("Pod", pod) == ["spec.containers[0].image"]
    template = {"metadata": {"name": "t", "namespace": "d"}, "template": {"spec": pod["spec"]}}
    assert check("PodTemplate", template) == []


def test_affinity() -> None:
    # The docs' pod with node affinity and pod anti-affinity.
    zones = {
        "key": "topology.kubernetes.io/zone",
        "operator": "In",
        "values": ["antarctica-east1", "antarctica-west1"],
    }
    other = {"key": "another-node-label-key", "operator": "In", "values": ["another-node-label-value"]}
    s2 = {"labelSelector": {"matchExpressions": [{"key": "security", "operator": "In", "values": ["S2"]}]},
          "topologyKey": "topology.kubernetes.io/zone"}  # fmt: skip
    affinity = {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [{"matchExpressions": [zones]}]
            },
            "preferredDuringSchedulingIgnoredDuringExecution": [
                {"weight": 1, "preference": {"matchExpressions": [other]}}
            ],
        },
        "podAntiAffinity": {
            "preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 100, "podAffinityTerm": s2}]
        },
    }
    assert check("Pod", nginx_pod(affinity=affinity)) == []
    affinity["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"][0]["weight"] = 0
    del affinity["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"][0]["podAffinityTerm"][
        "topologyKey"
    ]
    path = "spec.affinity.podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution[0]"
    assert check("Pod", nginx_pod(affinity=affinity)) == [
        (f"{path}.weight", "FieldValueInvalid", "Invalid value: 0: must be in the range 1-100"),
        (f"{path}.podAffinityTerm.topologyKey", "FieldValueRequired", "Required value: can not be empty"),
    ]


def test_ephemeral_containers() -> None:
    debug = {
        "name": "debugger",
        "image": "busybox",
        "targetContainerName": "nginx",
        "stdin": True,
        "tty": True,
    }
    assert check("Pod", nginx_pod(ephemeralContainers=[debug])) == []
    bad = {**debug, "name": "nginx", "targetContainerName": "app", "ports": [{"containerPort": 80}]}
    assert [c[:2] for c in check("Pod", nginx_pod(ephemeralContainers=[bad]))] == [
        ("spec.ephemeralContainers[0].targetContainerName", "FieldValueNotFound"),
        ("spec.ephemeralContainers[0].name", "FieldValueDuplicate"),
        ("spec.ephemeralContainers[0].ports", "FieldValueForbidden"),
    ]


def test_ephemeral_containers_subresource_update() -> None:
    info = by_kind("", "Pod")
    assert info is not None
    debug = {"name": "debugger", "image": "busybox", "targetContainerName": "nginx"}
    old = nginx_pod(ephemeralContainers=[debug])
    apply_defaults(info, old)
    added = copy.deepcopy(old)
    added["spec"]["ephemeralContainers"].append({**debug, "name": "second"})
    apply_defaults(info, added)
    assert validate_ephemeral_containers_update(added, old) == []
    removed = copy.deepcopy(old)
    removed["spec"]["ephemeralContainers"] = []
    assert [(c.field, c.type) for c in validate_ephemeral_containers_update(removed, old)] == [
        ("spec.ephemeralContainers", "FieldValueForbidden")
    ]


def test_pod_update_allows_image_only() -> None:
    old = nginx_pod()
    new = copy.deepcopy(old)
    new["spec"]["containers"][0]["image"] = "nginx:1.16.1"
    new["spec"]["activeDeadlineSeconds"] = 30
    new["spec"]["tolerations"] = [{"key": "k", "operator": "Exists"}]
    assert check("Pod", new, old) == []
    new["spec"]["containers"][0]["ports"] = [{"containerPort": 8080}]
    result = check("Pod", new, old)
    assert [r[:2] for r in result] == [("spec", "FieldValueForbidden")]
    assert result[0][2].startswith(
        "Forbidden: pod updates may not change fields other than "
        "`spec.containers[*].image`,`spec.initContainers[*].image`,"
    )
    # tolerationSeconds of an existing toleration may change; a negative grace period may become 1.
    toleration = {"key": "k", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}
    tolerating = nginx_pod(tolerations=[toleration], terminationGracePeriodSeconds=-1)
    shorter = copy.deepcopy(tolerating)
    shorter["spec"]["tolerations"][0]["tolerationSeconds"] = 10
    shorter["spec"]["terminationGracePeriodSeconds"] = 1
    assert check("Pod", shorter, tolerating) == []
    longer = copy.deepcopy(old)
    longer["spec"]["activeDeadlineSeconds"] = 60
    assert check("Pod", longer, new) == [
        (
            "spec.activeDeadlineSeconds",
            "FieldValueInvalid",
            "Invalid value: 60: must be less than or equal to previous value",
        )
    ]
    renamed = copy.deepcopy(old)
    renamed["metadata"]["name"] = "other"
    assert check("Pod", renamed, old) == [
        ("metadata.name", "FieldValueInvalid", 'Invalid value: "other": field is immutable')
    ]


def test_namespace_is_required_for_namespaced_kinds() -> None:
    pod = nginx_pod()
    del pod["metadata"]["namespace"]
    assert fields("Pod", pod) == ["metadata.namespace"]
    pod["metadata"] = {"generateName": "web-", "namespace": "default"}
    assert check("Pod", pod) == [
        ("metadata.name", "FieldValueRequired", "Required value: name or generateName is required")
    ]


# --- services -------------------------------------------------------------------------------------------


def service(**spec: Any) -> Obj:
    svc: Obj = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "my-service", "namespace": "default"},
        "spec": {
            "selector": {"app.kubernetes.io/name": "MyApp"},
            "ports": [{"protocol": "TCP", "port": 80, "targetPort": 9376}],
        },
    }
    svc["spec"].update(spec)
    return svc


def test_documented_services_are_valid() -> None:
    assert check("Service", service()) == []
    assert (
        check("Service", service(type="NodePort", ports=[{"port": 80, "targetPort": 80, "nodePort": 30007}]))
        == []
    )
    assert check("Service", service(clusterIP="None")) == []
    external = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "my-service", "namespace": "prod"},
        "spec": {"type": "ExternalName", "externalName": "my.database.example.com"},
    }
    assert check("Service", external) == []
    multi = service(
        ports=[
            {"name": "http", "port": 80, "targetPort": 9376},
            {"name": "https", "port": 443, "targetPort": "https"},
        ]
    )
    assert check("Service", multi) == []


def test_service_errors() -> None:
    assert check("Service", service(ports=[])) == [("spec.ports", "FieldValueRequired", "Required value")]
    assert check("Service", service(type="Magic")) == [
        (
            "spec.type",
            "FieldValueNotSupported",
            'Unsupported value: "Magic": supported values: "ClusterIP", "ExternalName", "LoadBalancer", "NodePort"',  # noqa: E501
        )
    ]
    two = service(ports=[{"port": 80}, {"port": 0, "name": "b", "nodePort": 30001}])
    assert check("Service", two) == [
        ("spec.ports[0].name", "FieldValueRequired", "Required value"),
        (
            "spec.ports[1].port",
            "FieldValueInvalid",
            "Invalid value: 0: must be between 1 and 65535, inclusive",
        ),
        (  # targetPort defaults to the port
            "spec.ports[1].targetPort",
            "FieldValueInvalid",
            "Invalid value: 0: must be between 1 and 65535, inclusive",
        ),
        (
            "spec.ports[1].nodePort",
            "FieldValueForbidden",
            "Forbidden: may not be used when `type` is 'ClusterIP'",
        ),
    ]
    assert check("Service", service(clusterIP="10.0.0.300")) == [
        (
            "spec.clusterIPs[0]",
            "FieldValueInvalid",
            "Invalid value: \"10.0.0.300\": must be empty, 'None', or a valid IP address",
        )
    ]
    assert check("Service", service(type="ExternalName", ports=[])) == [
        ("spec.externalName", "FieldValueRequired", "Required value")
    ]
    bad_name = service()
    bad_name["metadata"]["name"] = "1st-service"  # services are DNS-1035 labels: a letter first
    assert fields("Service", bad_name) == ["metadata.name"]


def test_service_ports_affinity_and_traffic_policy() -> None:
    dup = service(ports=[{"name": "a", "port": 80}, {"name": "b", "port": 80}])
    assert check("Service", dup) == [
        (
            "spec.ports[1]",
            "FieldValueDuplicate",
            'Duplicate value: core.ServicePort{Name:"", Protocol:"TCP", AppProtocol:(*string)(nil), Port:80, '
            'TargetPort:intstr.IntOrString{Type:0, IntVal:0, StrVal:""}, NodePort:0}',
        )
    ]
    sticky = service(sessionAffinity="ClientIP", sessionAffinityConfig={"clientIP": {"timeoutSeconds": 0}})
    assert check("Service", sticky) == [
        (
            "spec.sessionAffinityConfig.clientIP.timeoutSeconds",
            "FieldValueInvalid",
            "Invalid value: 0: must be greater than 0 and less than 86400",
        )
    ]
    assert check("Service", service(sessionAffinity="ClientIP")) == []  # the timeout defaults to 10800
    local = service(externalTrafficPolicy="Local")
    assert check("Service", local) == [
        (
            "spec.externalTrafficPolicy",
            "FieldValueInvalid",
            'Invalid value: "Local": may only be set for externally-accessible services',
        )
    ]
    assert check("Service", service(type="LoadBalancer", externalTrafficPolicy="Local")) == []


def test_service_cluster_ip_is_immutable() -> None:
    old = service(clusterIP="10.43.0.10")
    new = service(clusterIP="10.43.0.11")
    assert check("Service", new, old) == [
        (
            "spec.clusterIPs[0]",
            "FieldValueInvalid",
            'Invalid value: []string{"10.43.0.11"}: may not change once set',
        )
    ]


# --- configmaps and secrets -----------------------------------------------------------------------------


def test_configmaps() -> None:
    cm = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "game-demo", "namespace": "default"},
        "data": {"player_initial_lives": "3", "game.properties": "enemy.types=aliens,monsters\n"},
    }
    assert check("ConfigMap", cm) == []
    cm["data"]["bad key"] = "x"
    cm["binaryData"] = {"player_initial_lives": "AAE="}
    # Kubernetes walks the data map in Go's random order: compare the causes as a set.
    assert sorted(check("ConfigMap", cm)) == [
        (
            "data[bad key]",
            "FieldValueInvalid",
            "Invalid value: \"bad key\": a valid config key must consist of alphanumeric characters, '-', '_' or '.' "  # noqa: E501
            "(e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')",  # noqa: E501
        ),
        (
            "data[player_initial_lives]",
            "FieldValueInvalid",
            'Invalid value: "player_initial_lives": duplicate of key present in binaryData',
        ),
    ]
    big = {"metadata": {"name": "big", "namespace": "default"}, "data": {"a": "x" * (1024 * 1024 + 1)}}
    assert check("ConfigMap", big) == [("", "FieldValueTooLong", "Too long: must have at most 1048576 bytes")]


def test_immutable_configmap() -> None:
    old = {"metadata": {"name": "c", "namespace": "default"}, "data": {"a": "1"}, "immutable": True}
    new = copy.deepcopy(old)
    new["data"]["a"] = "2"
    assert check("ConfigMap", new, old) == [
        ("data", "FieldValueForbidden", "Forbidden: field is immutable when `immutable` is set")
    ]
    new = copy.deepcopy(old)
    new["immutable"] = False
    assert fields("ConfigMap", new, old) == ["immutable"]


def secret(**fields_: Any) -> Obj:
    obj: Obj = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s", "namespace": "default"}}
    obj.update(fields_)
    return obj


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def test_secrets() -> None:
    assert check("Secret", secret(data={"username": b64("admin")}, stringData={"password": "t0p"})) == []
    assert check("Secret", secret(type="kubernetes.io/basic-auth", stringData={"username": "admin"})) == []
    assert check("Secret", secret(type="kubernetes.io/tls", data={"tls.crt": b64("c")})) == [
        ("data[tls.key]", "FieldValueRequired", "Required value")
    ]
    assert check("Secret", secret(type="kubernetes.io/dockerconfigjson", data={})) == [
        ("data[.dockerconfigjson]", "FieldValueRequired", "Required value")
    ]
    assert check("Secret", secret(type="kubernetes.io/service-account-token")) == [
        ("metadata.annotations[kubernetes.io/service-account.name]", "FieldValueRequired", "Required value")
    ]
    assert fields("Secret", secret(data={"k": "not base64!"})) == ["data[k]"]
    docker = secret(type="kubernetes.io/dockerconfigjson", data={".dockerconfigjson": b64("{not json")})
    assert [c[:2] for c in check("Secret", docker)] == [("data[.dockerconfigjson]", "FieldValueInvalid")]
    assert check("Secret", secret(type="kubernetes.io/basic-auth", data={"password": ""})) == []


def test_secret_type_is_immutable() -> None:
    old = secret(data={"a": b64("1")})
    new = secret(data={"a": b64("1")}, type="example.com/custom")
    assert check("Secret", new, old) == [
        ("type", "FieldValueInvalid", 'Invalid value: "example.com/custom": field is immutable')
    ]


# --- namespaces, nodes, storage, quotas -----------------------------------------------------------------


def test_namespaces_are_dns_labels() -> None:
    assert check("Namespace", {"metadata": {"name": "development"}}) == []
    assert fields("Namespace", {"metadata": {"name": "dev.team"}}) == ["metadata.name"]
    assert check("Namespace", {"metadata": {"name": "x", "namespace": "y"}}) == [
        ("metadata.namespace", "FieldValueForbidden", "Forbidden: not allowed on this type")
    ]


def test_finalizers_without_a_domain_must_be_kubernetes_own() -> None:
    cm = {
        "metadata": {
            "name": "c",
            "namespace": "d",
            "finalizers": ["example.com/cleanup", "orphan", "cleanup"],
        }
    }
    assert check("ConfigMap", cm) == [
        (
            "metadata.finalizers",
            "FieldValueInvalid",
            'Invalid value: "cleanup": name is neither a standard finalizer name nor is it fully qualified',
        )
    ]
    ns = {"metadata": {"name": "dev"}, "spec": {"finalizers": ["kubernetes", "mine"]}}
    assert [c[:2] for c in check("Namespace", ns)] == [("spec.finalizers", "FieldValueInvalid")]


def test_nodes() -> None:
    node = {
        "metadata": {"name": "node-1"},
        "spec": {
            "podCIDR": "10.42.0.0/24",
            "taints": [{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}],
        },
    }
    assert check("Node", node) == []
    node["spec"]["taints"].append({"key": "dedicated", "value": "gpu", "effect": "NoSchedule"})
    assert check("Node", node) == [
        (
            "spec.taints[1]",
            "FieldValueDuplicate",
            'Duplicate value: core.Taint{Key:"dedicated", Value:"gpu", Effect:"NoSchedule", '
            "TimeAdded:(*v1.Time)(nil)}: taints must be unique by key and effect pair",
        )
    ]
    node["spec"]["taints"][1] = {"key": "k", "effect": "Sometimes"}
    node["spec"]["podCIDR"] = "10.42.0.0"
    assert fields("Node", node) == ["spec.podCIDRs[0]", "spec.taints[1].effect"]


def test_persistent_volumes_and_claims() -> None:
    pv = {
        "metadata": {"name": "task-pv-volume"},
        "spec": {
            "storageClassName": "manual",
            "capacity": {"storage": "10Gi"},
            "accessModes": ["ReadWriteOnce"],
            "hostPath": {"path": "/mnt/data"},
        },
    }
    assert check("PersistentVolume", pv) == []
    assert fields("PersistentVolume", {"metadata": {"name": "x"}, "spec": {}}) == [
        "spec.accessModes",
        "spec.capacity",
        "spec",
    ]
    pvc = {
        "metadata": {"name": "task-pv-claim", "namespace": "default"},
        "spec": {
            "storageClassName": "manual",
            "accessModes": ["ReadWriteOnce"],
            "resources": {"requests": {"storage": "3Gi"}},
        },
    }
    assert check("PersistentVolumeClaim", pvc) == []
    assert check("PersistentVolumeClaim", {"metadata": {"name": "c", "namespace": "d"}, "spec": {}}) == [
        ("spec.accessModes", "FieldValueRequired", "Required value: at least 1 access mode is required"),
        ("spec.resources[storage]", "FieldValueRequired", "Required value"),
    ]


def test_volume_and_claim_updates() -> None:
    pv_spec = {
        "capacity": {"storage": "10Gi"},
        "accessModes": ["ReadWriteOnce"],
        "hostPath": {"path": "/mnt/data"},
    }
    pv = {"metadata": {"name": "v"}, "spec": pv_spec}
    moved = copy.deepcopy(pv)
    moved["spec"]["hostPath"]["path"] = "/mnt/other"
    assert [c[:2] for c in check("PersistentVolume", moved, pv)] == [
        ("spec.persistentvolumesource", "FieldValueForbidden")
    ]
    claim_spec = {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "3Gi"}}}
    claim = {"metadata": {"name": "c", "namespace": "d"}, "spec": claim_spec}
    bound = copy.deepcopy(claim)
    bound["spec"]["volumeName"] = "v"
    assert check("PersistentVolumeClaim", bound, claim) == []  # binding sets volumeName once
    grown = copy.deepcopy(bound)
    grown["spec"]["resources"]["requests"]["storage"] = "5Gi"
    assert check("PersistentVolumeClaim", grown, bound) == []
    assert check("PersistentVolumeClaim", bound, grown) == [
        (
            "spec.resources.requests.storage",
            "FieldValueForbidden",
            "Forbidden: field can not be less than previous value",
        )
    ]
    unbound_growth = copy.deepcopy(claim)
    unbound_growth["spec"]["resources"]["requests"]["storage"] = "5Gi"
    assert [c[:2] for c in check("PersistentVolumeClaim", unbound_growth, claim)] == [
        ("spec", "FieldValueForbidden")
    ]


def test_quota_limit_range_and_endpoints() -> None:
    quota = {
        "metadata": {"name": "q", "namespace": "d"},
        "spec": {
            "hard": {
                "requests.cpu": "1",
                "requests.memory": "1Gi",
                "pods": "10",
                "count/deployments.apps": "2",
            }
        },
    }
    assert check("ResourceQuota", quota) == []
    quota["spec"]["hard"]["pods"] = "-1"
    assert fields("ResourceQuota", quota) == ["spec.hard[pods]"]
    odd_spec = {"hard": {"gpus": "1", "pods": "1.5"}, "scopes": ["BestEffort", "NotBestEffort"]}
    odd = {"metadata": {"name": "q", "namespace": "d"}, "spec": odd_spec}
    assert check("ResourceQuota", odd) == [
        (
            "spec.hard[gpus]",
            "FieldValueInvalid",
            'Invalid value: "gpus": must be a standard resource for quota',
        ),
        ("spec.hard[pods]", "FieldValueInvalid", 'Invalid value: "1500m": must be an integer'),
        (
            "spec.scopes",
            "FieldValueInvalid",
            'Invalid value: []string{"BestEffort", "NotBestEffort"}: conflicting scopes',
        ),
    ]
    limits = {
        "metadata": {"name": "l", "namespace": "d"},
        "spec": {"limits": [{"type": "Container", "default": {"cpu": "500m"}, "max": {"cpu": "1"}}]},
    }
    assert check("LimitRange", limits) == []
    limits["spec"]["limits"][0] = {"type": "Container", "max": {"cpu": "1"}, "min": {"cpu": "2"}}
    assert check("LimitRange", limits) == [  # default and defaultRequest were defaulted from max
        ("spec.limits[0].min[cpu]", "FieldValueInvalid", "Invalid value: 2: min value 2 is greater than max value 1"),  # noqa: E501
        ("spec.limits[0].defaultRequest[cpu]", "FieldValueInvalid",
         "Invalid value: 1: min value 2 is greater than default request value 1"),
        ("spec.limits[0].default[cpu]", "FieldValueInvalid",
         "Invalid value: 2: min value 2 is greater than default value 1"),
    ]  # fmt: skip
    pvc_limits = {
        "metadata": {"name": "l", "namespace": "d"},
        "spec": {"limits": [{"type": "PersistentVolumeClaim"}]},
    }
    assert fields("LimitRange", pvc_limits) == ["spec.limits[0].limits"]
    endpoints = {
        "metadata": {"name": "e", "namespace": "d"},
        "subsets": [{"addresses": [{"ip": "192.0.2.42"}], "ports": [{"port": 9376}]}],
    }
    assert check("Endpoints", endpoints) == []
    endpoints["subsets"][0]["addresses"][0]["ip"] = "host"
    assert fields("Endpoints", endpoints) == ["subsets[0].addresses[0].ip"]


@pytest.mark.parametrize("broken", [None, "text", 5, ["a"]])
def test_wrong_json_types_never_crash(broken: Any) -> None:
    for kind in ("Pod", "Service", "ConfigMap", "Secret", "Node", "PersistentVolumeClaim"):
        obj: Obj = {
            "metadata": {"name": "x", "namespace": "d", "labels": broken},
            "spec": broken,
            "data": broken,
        }
        check(kind, obj)  # causes or none, but never an exception


def test_selector_requirement_operators() -> None:
    """Node selector and label selector requirements share the In/NotIn and Exists/DoesNotExist value rules
    (Kubernetes' validateNodeSelectorRequirement and ValidateLabelSelectorRequirement); Gt/Lt are node
    selectors' own."""
    node_reqs = [{"key": "a", "operator": "In"}, {"key": "b", "operator": "Exists", "values": ["x"]},
                 {"key": "c", "operator": "Gt", "values": ["1", "2"]}, {"key": "d", "operator": "Near"},
                 {"key": "e", "operator": "NotIn", "values": ["x"]}, {"key": "f", "operator": "DoesNotExist"},
                 {"key": "g", "operator": "Lt", "values": ["3"]}]
    label_reqs = [{"key": "a", "operator": "NotIn", "values": []},
                  {"key": "b", "operator": "DoesNotExist", "values": ["x"]},
                  {"key": "c", "operator": "Gt", "values": ["1"]},
                  {"key": "e", "operator": "In", "values": ["x"]}]
    affinity = {
        "nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": [{"matchExpressions": node_reqs}]}},
        "podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
            {"labelSelector": {"matchExpressions": label_reqs}, "topologyKey": "zone"}]},
    }
    node = ("spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0]"
            ".matchExpressions")
    label = ("spec.affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution[0].labelSelector"
             ".matchExpressions")
    causes = check("Pod", nginx_pod(affinity=affinity))
    assert sorted(causes) == sorted([
        (f"{node}[0].values", "FieldValueRequired",
         "Required value: must be specified when `operator` is 'In' or 'NotIn'"),
        (f"{node}[1].values", "FieldValueForbidden",
         "Forbidden: may not be specified when `operator` is 'Exists' or 'DoesNotExist'"),
        (f"{node}[2].values", "FieldValueRequired",
         "Required value: must be specified single value when `operator` is 'Lt' or 'Gt'"),
        (f"{node}[3].operator", "FieldValueInvalid", 'Invalid value: "Near": not a valid selector operator'),
        (f"{label}[0].values", "FieldValueRequired",
         "Required value: must be specified when `operator` is 'In' or 'NotIn'"),
        (f"{label}[1].values", "FieldValueForbidden",
         "Forbidden: may not be specified when `operator` is 'Exists' or 'DoesNotExist'"),
        (f"{label}[2].operator", "FieldValueInvalid", 'Invalid value: "Gt": not a valid selector operator'),
    ])
