"""apps/v1 defaults: replicas, update strategies, history limits, and the pod template inside."""

from __future__ import annotations

from pyk8s.api.defaults import core
from pyk8s.api.defaults import pod as pod_defaults
from pyk8s.api.defaults._util import Obj, child, dicts, set_default


def deployment(obj: Obj) -> None:
    spec = child(obj, "spec")
    set_default(spec, "replicas", 1)
    strategy = child(spec, "strategy")
    set_default(strategy, "type", "RollingUpdate")
    if strategy["type"] == "RollingUpdate":
        rolling = child(strategy, "rollingUpdate")
        set_default(rolling, "maxUnavailable", "25%")
        set_default(rolling, "maxSurge", "25%")
    set_default(spec, "revisionHistoryLimit", 10)
    set_default(spec, "progressDeadlineSeconds", 600)
    pod_defaults.pod_template(spec.get("template"))


def replica_set(obj: Obj) -> None:
    spec = child(obj, "spec")
    set_default(spec, "replicas", 1)
    pod_defaults.pod_template(spec.get("template"))


def stateful_set(obj: Obj) -> None:
    spec = child(obj, "spec")
    set_default(spec, "replicas", 1)
    set_default(spec, "podManagementPolicy", "OrderedReady")
    strategy = child(spec, "updateStrategy")
    if not strategy.get("type"):
        strategy["type"] = "RollingUpdate"
        child(strategy, "rollingUpdate")  # as Kubernetes: only an unset type gets a rollingUpdate block
    if strategy["type"] == "RollingUpdate" and isinstance(strategy.get("rollingUpdate"), dict):
        set_default(strategy["rollingUpdate"], "partition", 0)
    set_default(spec, "revisionHistoryLimit", 10)
    retention = child(spec, "persistentVolumeClaimRetentionPolicy")
    set_default(retention, "whenDeleted", "Retain")
    set_default(retention, "whenScaled", "Retain")
    for claim in dicts(spec.get("volumeClaimTemplates")):
        core.persistent_volume_claim(claim)
    pod_defaults.pod_template(spec.get("template"))


def daemon_set(obj: Obj) -> None:
    spec = child(obj, "spec")
    strategy = child(spec, "updateStrategy")
    set_default(strategy, "type", "RollingUpdate")
    if strategy["type"] == "RollingUpdate":
        rolling = child(strategy, "rollingUpdate")
        set_default(rolling, "maxUnavailable", 1)
        set_default(rolling, "maxSurge", 0)
    set_default(spec, "revisionHistoryLimit", 10)
    pod_defaults.pod_template(spec.get("template"))
