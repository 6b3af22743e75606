"""apps/v1: deployments, replicasets, statefulsets, daemonsets, controllerrevisions."""

from __future__ import annotations

import re
from typing import Any

from pyk8s.api.errors import Cause
from pyk8s.api.validation import _field as f
from pyk8s.api.validation import pod
from pyk8s.api.validation._selector import is_empty, matches, validate_label_selector

Obj = dict[str, Any]

_PERCENT = re.compile(r"[0-9]+%")


def validate_selector_and_template(spec: Obj, path: str, kind: str) -> list[Cause]:
    """A workload's selector: required, not empty, matching its template's labels; the template restarts
    Always (ValidatePodTemplateSpecForReplicaSet and friends)."""
    causes: list[Cause] = []
    selector = spec.get("selector")
    template = spec.get("template")
    selector_ok = False
    if selector is None:
        causes.append(f.required(f"{path}.selector", ""))
    else:
        selector_causes = validate_label_selector(selector, f"{path}.selector")
        causes += selector_causes
        selector_ok = not selector_causes and not is_empty(selector)
        if is_empty(selector):
            causes.append(f.invalid(f"{path}.selector", selector, f"empty selector is invalid for {kind}"))
    if template is None:
        causes.append(f.required(f"{path}.template", ""))
        return causes
    labels = f.as_dict(f.as_dict(f.as_dict(template).get("metadata")).get("labels"))
    # As Kubernetes, a selector that does not parse is reported once, not matched.
    if selector_ok and not matches(selector, labels):
        causes.append(
            f.invalid(
                f"{path}.template.metadata.labels", labels, "`selector` does not match template `labels`"
            )
        )
    causes += pod.validate_pod_template_spec(template, f"{path}.template")
    tspec = f.as_dict(f.as_dict(template).get("spec"))
    restart = tspec.get("restartPolicy")
    if restart not in (None, "", "Always") and restart in pod.RESTART_POLICIES:
        causes.append(f.not_supported(f"{path}.template.spec.restartPolicy", restart, ["Always"]))
    if tspec.get("activeDeadlineSeconds") is not None:
        causes.append(
            f.forbidden(
                f"{path}.template.spec.activeDeadlineSeconds",
                "activeDeadlineSeconds in ReplicaSet is not Supported",
            )
        )
    return causes


def int_or_percent(value: Any, path: str) -> list[Cause]:
    """An IntOrString that is a count or a percentage: non-negative, percentages up to 100%."""
    if value is None:
        return []
    if f.is_int(value):
        return f.non_negative(path, value)
    if isinstance(value, str) and _PERCENT.fullmatch(value):
        if int(value[:-1]) > 100:
            return [f.invalid(path, value, "must not be greater than 100%")]
        return []
    return [
        f.invalid(
            path,
            value,
            "a valid percent string must be a numeric string followed by an ending "
            "'%' (e.g. '1%',  or '93%', regex used for validation is '[0-9]+%')",
        )
    ]


def _is_zero(value: Any) -> bool:
    return value in (0, "0%")


def _common(spec: Obj, path: str) -> list[Cause]:
    causes = f.non_negative(f"{path}.replicas", spec.get("replicas"))
    causes += f.non_negative(f"{path}.minReadySeconds", spec.get("minReadySeconds"))
    causes += f.non_negative(f"{path}.revisionHistoryLimit", spec.get("revisionHistoryLimit"))
    return causes


def _immutable_selector(obj: Obj, old: Obj | None) -> list[Cause]:
    if old is None:
        return []
    new_sel = f.as_dict(obj.get("spec")).get("selector")
    old_sel = f.as_dict(old.get("spec")).get("selector")
    return f.immutable("spec.selector", new_sel, old_sel)


def validate_deployment(obj: Obj, old: Obj | None) -> list[Cause]:
    spec = f.as_dict(obj.get("spec"))
    causes = _common(spec, "spec")
    causes += validate_selector_and_template(spec, "spec", "deployment")
    strategy = f.as_dict(spec.get("strategy"))
    stype = strategy.get("type")
    causes += f.one_of("spec.strategy.type", stype, ("Recreate", "RollingUpdate"))
    rolling = strategy.get("rollingUpdate")
    if stype == "Recreate" and rolling is not None:
        causes.append(
            f.forbidden(
                "spec.strategy.rollingUpdate", "may not be specified when strategy `type` is 'Recreate'"
            )
        )
    elif rolling is not None:
        rolling = f.as_dict(rolling)
        surge, unavailable = rolling.get("maxSurge"), rolling.get("maxUnavailable")
        causes += int_or_percent(surge, "spec.strategy.rollingUpdate.maxSurge")
        causes += int_or_percent(unavailable, "spec.strategy.rollingUpdate.maxUnavailable")
        if _is_zero(surge) and _is_zero(unavailable):
            causes.append(
                f.invalid(
                    "spec.strategy.rollingUpdate.maxUnavailable",
                    unavailable,
                    "may not be 0 when `maxSurge` is 0",
                )
            )
    deadline = spec.get("progressDeadlineSeconds")
    if deadline is not None:
        causes += f.non_negative("spec.progressDeadlineSeconds", deadline)
        if (
            f.is_int(deadline)
            and f.is_int(spec.get("minReadySeconds"))
            and deadline <= spec["minReadySeconds"]
        ):
            causes.append(
                f.invalid("spec.progressDeadlineSeconds", deadline, "must be greater than minReadySeconds")
            )
    return causes + _immutable_selector(obj, old)


def validate_replica_set(obj: Obj, old: Obj | None) -> list[Cause]:
    spec = f.as_dict(obj.get("spec"))
    causes = _common(spec, "spec") + validate_selector_and_template(spec, "spec", "replicaset")
    return causes + _immutable_selector(obj, old)


_STS_UPDATABLE = (
    "'replicas', 'ordinals', 'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' "
    "and 'minReadySeconds'"
)


def validate_stateful_set(obj: Obj, old: Obj | None) -> list[Cause]:
    spec = f.as_dict(obj.get("spec"))
    causes = _common(spec, "spec") + validate_selector_and_template(spec, "spec", "statefulset")
    causes += f.one_of(
        "spec.podManagementPolicy",
        spec.get("podManagementPolicy"),
        ("OrderedReady", "Parallel"),
        required_when_empty=False,
    )
    strategy = f.as_dict(spec.get("updateStrategy"))
    causes += f.one_of(
        "spec.updateStrategy.type",
        strategy.get("type"),
        ("OnDelete", "RollingUpdate"),
        required_when_empty=False,
    )
    rolling = strategy.get("rollingUpdate")
    if rolling is not None:
        if strategy.get("type") == "OnDelete":
            causes.append(
                f.invalid(
                    "spec.updateStrategy.rollingUpdate",
                    rolling,
                    "only allowed for updateStrategy 'RollingUpdate'",
                )
            )
        causes += f.non_negative(
            "spec.updateStrategy.rollingUpdate.partition", f.as_dict(rolling).get("partition")
        )
        unavailable = f.as_dict(rolling).get("maxUnavailable")
        causes += int_or_percent(unavailable, "spec.updateStrategy.rollingUpdate.maxUnavailable")
        if _is_zero(unavailable):
            causes.append(
                f.invalid(
                    "spec.updateStrategy.rollingUpdate.maxUnavailable", unavailable, "must be greater than 0"
                )
            )
    retention = f.as_dict(spec.get("persistentVolumeClaimRetentionPolicy"))
    for key in ("whenDeleted", "whenScaled"):
        causes += f.one_of(
            f"spec.persistentVolumeClaimRetentionPolicy.{key}",
            retention.get(key),
            ("Retain", "Delete"),
            required_when_empty=False,
        )
    if spec.get("serviceName"):
        causes += f.check("spec.serviceName", str(spec["serviceName"]), f.dns1123_label)
    for i, claim in enumerate(f.as_list(spec.get("volumeClaimTemplates"))):
        name = f.as_dict(f.as_dict(claim).get("metadata")).get("name")
        if not name:
            causes.append(f.required(f"spec.volumeClaimTemplates[{i}].metadata.name", ""))
    if old is not None:
        old_spec = f.as_dict(old.get("spec"))
        mutable = (
            "replicas",
            "ordinals",
            "template",
            "updateStrategy",
            "persistentVolumeClaimRetentionPolicy",
            "minReadySeconds",
        )
        if {k: v for k, v in spec.items() if k not in mutable} != {
            k: v for k, v in old_spec.items() if k not in mutable
        }:
            causes.append(
                f.forbidden(
                    "spec",
                    f"updates to statefulset spec for fields other than {_STS_UPDATABLE} are forbidden",
                )
            )
    return causes


def validate_daemon_set(obj: Obj, old: Obj | None) -> list[Cause]:
    spec = f.as_dict(obj.get("spec"))
    causes = f.non_negative("spec.minReadySeconds", spec.get("minReadySeconds"))
    causes += f.non_negative("spec.revisionHistoryLimit", spec.get("revisionHistoryLimit"))
    causes += validate_selector_and_template(spec, "spec", "daemonset")
    strategy = f.as_dict(spec.get("updateStrategy"))
    causes += f.one_of("spec.updateStrategy.type", strategy.get("type"), ("RollingUpdate", "OnDelete"))
    rolling = strategy.get("rollingUpdate")
    if strategy.get("type") == "RollingUpdate" and rolling is not None:
        rolling = f.as_dict(rolling)
        surge, unavailable = rolling.get("maxSurge"), rolling.get("maxUnavailable")
        causes += int_or_percent(surge, "spec.updateStrategy.rollingUpdate.maxSurge")
        causes += int_or_percent(unavailable, "spec.updateStrategy.rollingUpdate.maxUnavailable")
        if _is_zero(surge) and _is_zero(unavailable):
            causes.append(
                f.invalid(
                    "spec.updateStrategy.rollingUpdate.maxUnavailable",
                    unavailable,
                    "may not be 0 when `maxSurge` is 0",
                )
            )
    return causes + _immutable_selector(obj, old)


def validate_controller_revision(obj: Obj, old: Obj | None) -> list[Cause]:
    causes = f.non_negative("revision", obj.get("revision"))
    if old is not None and obj.get("data") != old.get("data"):
        causes.append(f.invalid("data", "", f.IMMUTABLE))
    return causes
