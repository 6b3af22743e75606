"""Pod and pod template defaults: SetDefaults_PodSpec, SetDefaults_Container, volumes, probes, and the
pod-only SetDefaults_Pod (requests from limits, service links, host ports on the host network)."""

from __future__ import annotations

import copy
from typing import Any

from pyk8s.api.defaults._util import (
    Obj,
    canonical_quantity_field,
    canonical_resources,
    child,
    dicts,
    set_default,
)

_FILE_MODE = 0o644  # 420, what `kubectl get -o yaml` shows as defaultMode
_CONTAINER_KEYS = ("initContainers", "containers", "ephemeralContainers")


def image_pull_policy(image: str) -> str:
    """Always for `:latest` or an untagged image, else IfNotPresent (digests pin the image)."""
    if "@" in image:
        return "IfNotPresent"
    last = image.rsplit("/", 1)[-1]
    tag = last.rsplit(":", 1)[1] if ":" in last else ""
    return "Always" if tag in ("", "latest") else "IfNotPresent"


def _http_get(action: Any) -> None:
    if isinstance(action, dict):
        set_default(action, "path", "/")
        set_default(action, "scheme", "HTTP")


def _probe(probe: Any) -> None:
    if not isinstance(probe, dict):
        return
    set_default(probe, "timeoutSeconds", 1)
    set_default(probe, "periodSeconds", 10)
    set_default(probe, "successThreshold", 1)
    set_default(probe, "failureThreshold", 3)
    _http_get(probe.get("httpGet"))


def _env_sources(env: Any) -> None:
    for var in dicts(env):
        value_from = var.get("valueFrom")
        if not isinstance(value_from, dict):
            continue
        if isinstance(value_from.get("fieldRef"), dict):
            set_default(value_from["fieldRef"], "apiVersion", "v1")
        if isinstance(value_from.get("resourceFieldRef"), dict):
            set_default(value_from["resourceFieldRef"], "divisor", "0")
            canonical_quantity_field(value_from["resourceFieldRef"], "divisor")


def _container(c: Obj) -> None:
    set_default(c, "terminationMessagePath", "/dev/termination-log")
    set_default(c, "terminationMessagePolicy", "File")
    if isinstance(c.get("image"), str):
        set_default(c, "imagePullPolicy", image_pull_policy(c["image"]))
    set_default(c, "resources", {})
    for key in ("limits", "requests"):
        canonical_resources(c.get("resources"), key)
    for port in dicts(c.get("ports")):
        set_default(port, "protocol", "TCP")
    _env_sources(c.get("env"))
    for key in ("livenessProbe", "readinessProbe", "startupProbe"):
        _probe(c.get(key))
    lifecycle = c.get("lifecycle")
    if isinstance(lifecycle, dict):
        for hook in dicts([lifecycle.get("postStart"), lifecycle.get("preStop")]):
            _http_get(hook.get("httpGet"))


def _projection_sources(projected: Obj) -> None:
    for source in dicts(projected.get("sources")):
        token = source.get("serviceAccountToken")
        if isinstance(token, dict):
            set_default(token, "expirationSeconds", 3600)
        downward = source.get("downwardAPI")
        if isinstance(downward, dict):
            for item in dicts(downward.get("items")):
                if isinstance(item.get("fieldRef"), dict):
                    set_default(item["fieldRef"], "apiVersion", "v1")


def _volume(vol: Obj) -> None:
    sources = [k for k in vol if k != "name" and vol[k] is not None]
    if not sources:
        vol["emptyDir"] = {}  # SetDefaults_Volume: a volume with no source is an emptyDir
        return
    for key in ("secret", "configMap", "downwardAPI", "projected"):
        src = vol.get(key)
        if isinstance(src, dict):
            set_default(src, "defaultMode", _FILE_MODE)
    canonical_quantity_field(vol.get("emptyDir"), "sizeLimit")
    if isinstance(vol.get("hostPath"), dict) and "type" not in vol["hostPath"]:
        vol["hostPath"]["type"] = ""
    if isinstance(vol.get("downwardAPI"), dict):
        for item in dicts(vol["downwardAPI"].get("items")):
            if isinstance(item.get("fieldRef"), dict):
                set_default(item["fieldRef"], "apiVersion", "v1")
    if isinstance(vol.get("projected"), dict):
        _projection_sources(vol["projected"])
    image = vol.get("image")
    if isinstance(image, dict) and not image.get("pullPolicy"):
        image["pullPolicy"] = image_pull_policy(str(image.get("reference") or ""))
    if isinstance(vol.get("iscsi"), dict):
        set_default(vol["iscsi"], "iscsiInterface", "default")


def pod_spec(spec: Obj) -> None:
    """SetDefaults_PodSpec and everything nested in it; used for pods and every pod template."""
    set_default(spec, "dnsPolicy", "ClusterFirst")
    set_default(spec, "restartPolicy", "Always")
    set_default(spec, "securityContext", {})
    set_default(spec, "terminationGracePeriodSeconds", 30)
    set_default(spec, "schedulerName", "default-scheduler")
    for key in _CONTAINER_KEYS:
        for c in dicts(spec.get(key)):
            _container(c)
    for vol in dicts(spec.get("volumes")):
        _volume(vol)
    canonical_resources(spec, "overhead")


def pod_template(template: Any) -> None:
    if isinstance(template, dict):
        pod_spec(child(template, "spec"))


def pod(obj: Obj) -> None:
    """SetDefaults_Pod: the pod spec, then requests copied from limits, service links, and host ports
    equal to container ports on the host network."""
    spec = child(obj, "spec")
    pod_spec(spec)
    set_default(spec, "enableServiceLinks", True)
    host_network = spec.get("hostNetwork") is True
    for key in ("containers", "initContainers"):
        for c in dicts(spec.get(key)):
            resources = c.get("resources")
            if isinstance(resources, dict) and isinstance(resources.get("limits"), dict):
                requests = child(resources, "requests")
                for name, value in resources["limits"].items():
                    requests.setdefault(name, copy.deepcopy(value))
            if host_network:
                for port in dicts(c.get("ports")):
                    set_default(port, "hostPort", port.get("containerPort"))
