"""apps/v1: deployments, replicasets, statefulsets, daemonsets, controllerrevisions
(Kubernetes' pkg/apis/apps/validation)."""

from __future__ import annotations

import re
from typing import Any

from pyk8s.api.errors import Cause
from pyk8s.api.validation import _field as f
from pyk8s.api.validation import pod
from pyk8s.api.validation._selector import (
    immutable_selector,
    invalid_selector,
    is_empty,
    matches,
    validate_label_selector,
)

Obj = dict[str, Any]

_PERCENT = re.compile(r"[0-9]+%")
_PERCENT_ERROR = ("a valid percent string must be a numeric string followed by an ending '%' (e.g. '1%',  or "
                  "'93%', regex used for validation is '[0-9]+%')")  # fmt: skip


# --- IntOrString counts and percentages ---------------------------------------------------------------


def _shown(value: Any) -> str:
    """IntOrString is a fmt.Stringer: Kubernetes prints it bare (`Invalid value: 25%`)."""
    return str(value) if isinstance(value, int | str) else f.go_value(value)


def int_or_percent(value: Any, path: str) -> list[Cause]:
    """ValidatePositiveIntOrPercent: a non-negative count or a `N%` string."""
    if value is None or f.is_int(value):
        return f.non_negative(path, value)
    if isinstance(value, str):
        return [] if _PERCENT.fullmatch(value) else [f.invalid_shown(path, value, _PERCENT_ERROR)]
    return [f.invalid_shown(path, _shown(value), "must be an integer or percentage (e.g '5%')")]


def not_more_than_100_percent(value: Any, path: str) -> list[Cause]:
    if isinstance(value, str) and _PERCENT.fullmatch(value) and int(value[:-1]) > 100:
        return [f.invalid_shown(path, value, "must not be greater than 100%")]
    return []


def _amount(value: Any) -> int:
    """getIntOrPercentValue: the number, whether a count or a percentage."""
    if f.is_int(value):
        return value
    if isinstance(value, str) and _PERCENT.fullmatch(value):
        return int(value[:-1])
    return 0


# --- selectors and templates ----------------------------------------------------------------------------


def _validate_selector(spec: Obj, path: str, kind: str) -> tuple[bool, list[Cause]]:
    """Required, valid, not empty. Returns whether it parses (LabelSelectorAsSelector) and the causes;
    a selector that does not parse adds Kubernetes' `invalid label selector`."""
    selector = spec.get("selector")
    if selector is None:
        return True, [f.required(f"{path}.selector", "")]
    causes = validate_label_selector(selector, f"{path}.selector")
    if is_empty(selector):
        causes.append(invalid_selector(f"{path}.selector", selector, f"empty selector is invalid for {kind}"))
    return not causes or is_empty(selector), causes


def _validate_selector_and_template(spec: Obj, kind: str, workload: str,
                                    unparsable: str | None) -> list[Cause]:
    """spec.selector, then spec.template when the selector parses; when it does not, an `invalid label
    selector` cause with the detail `unparsable` (None: none, as for DaemonSets)."""
    parses, causes = _validate_selector(spec, "spec", kind)
    if parses:
        causes += _validate_template(spec, "spec", workload)
    elif unparsable is not None:
        causes.append(invalid_selector("spec.selector", spec.get("selector"), unparsable))
    return causes


def _validate_template(spec: Obj, path: str, workload: str) -> list[Cause]:
    """ValidatePodTemplateSpecForReplicaSet: the template's labels match the selector (a missing selector
    matches nothing), the pod template is valid, pods restart Always and have no deadline."""
    template = spec.get("template")
    if template is None:
        return [f.required(f"{path}.template", "")]
    selector = spec.get("selector")
    labels = f.as_dict(f.as_dict(f.as_dict(template).get("metadata")).get("labels"))
    causes: list[Cause] = []
    if (selector is None or not is_empty(selector)) and (selector is None or not matches(selector, labels)):
        causes.append(f.invalid(f"{path}.template.metadata.labels", labels,
                                "`selector` does not match template `labels`"))  # fmt: skip
    causes += pod.validate_pod_template_spec(template, f"{path}.template")
    tspec = f.as_dict(f.as_dict(template).get("spec"))
    restart = tspec.get("restartPolicy") or ""
    if restart != "Always":
        causes.append(f.not_supported(f"{path}.template.spec.restartPolicy", restart, ["Always"]))
    deadline = tspec.get("activeDeadlineSeconds")
    if deadline is not None:
        causes.append(f.invalid(f"{path}.template.spec.activeDeadlineSeconds", deadline,
                                f"activeDeadlineSeconds in {workload} is not Supported"))  # fmt: skip
    return causes


def _immutable_selector(obj: Obj, old: Obj | None) -> list[Cause]:
    if old is None:
        return []
    new_sel = f.as_dict(obj.get("spec")).get("selector")
    return immutable_selector("spec.selector", new_sel, f.as_dict(old.get("spec")).get("selector"))


# --- kinds ------------------------------------------------------------------------------------------------


def _validate_deployment_strategy(strategy: Obj, path: str) -> list[Cause]:
    stype = strategy.get("type")
    rolling = strategy.get("rollingUpdate")
    if stype == "Recreate":
        if rolling is not None:
            return [
                f.forbidden(
                    f"{path}.rollingUpdate", "may not be specified when strategy `type` is 'Recreate'"
                )
            ]
        return []
    if stype == "RollingUpdate":
        if rolling is None:
            return [f.required(f"{path}.rollingUpdate", "this should be defaulted and never be nil")]
        rolling = f.as_dict(rolling)
        surge, unavailable = rolling.get("maxSurge"), rolling.get("maxUnavailable")
        r_path = f"{path}.rollingUpdate"
        causes = int_or_percent(unavailable, f"{r_path}.maxUnavailable")
        causes += int_or_percent(surge, f"{r_path}.maxSurge")
        if _amount(unavailable) == 0 and _amount(surge) == 0:
            causes.append(f.invalid_shown(f"{r_path}.maxUnavailable", _shown(unavailable),
                                          "may not be 0 when `maxSurge` is 0"))  # fmt: skip
        return causes + not_more_than_100_percent(unavailable, f"{r_path}.maxUnavailable")
    return [f.not_supported(f"{path}.type", stype or "", ["Recreate", "RollingUpdate"])]


def validate_deployment(obj: Obj, old: Obj | None) -> list[Cause]:
    """ValidateDeploymentSpec and the immutable selector of apps/v1."""
    spec = f.as_dict(obj.get("spec"))
    causes = f.non_negative("spec.replicas", spec.get("replicas"))
    causes += _validate_selector_and_template(spec, "deployment", "ReplicaSet", "invalid label selector")
    causes += _validate_deployment_strategy(f.as_dict(spec.get("strategy")), "spec.strategy")
    causes += f.non_negative("spec.minReadySeconds", spec.get("minReadySeconds"))
    causes += f.non_negative("spec.revisionHistoryLimit", spec.get("revisionHistoryLimit"))
    deadline = spec.get("progressDeadlineSeconds")
    if deadline is not None:
        causes += f.non_negative("spec.progressDeadlineSeconds", deadline)
        if f.is_int(deadline) and deadline <= (spec.get("minReadySeconds") or 0):
            causes.append(
                f.invalid("spec.progressDeadlineSeconds", deadline, "must be greater than minReadySeconds")
            )
    return causes + _immutable_selector(obj, old)


def validate_replica_set(obj: Obj, old: Obj | None) -> list[Cause]:
    spec = f.as_dict(obj.get("spec"))
    causes = f.non_negative("spec.replicas", spec.get("replicas"))
    causes += f.non_negative("spec.minReadySeconds", spec.get("minReadySeconds"))
    # "deployment" here is Kubernetes' own wording for replica sets too.
    causes += _validate_selector_and_template(spec, "deployment", "ReplicaSet", "invalid label selector")
    return causes + _immutable_selector(obj, old)


_STS_MUTABLE = ("replicas", "ordinals", "template", "updateStrategy", "persistentVolumeClaimRetentionPolicy",
                "minReadySeconds")  # fmt: skip
_STS_UPDATE_ERROR = (
    "updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', "
    "'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden"
)


def validate_stateful_set(obj: Obj, old: Obj | None) -> list[Cause]:
    spec = f.as_dict(obj.get("spec"))
    causes: list[Cause] = []
    policy = spec.get("podManagementPolicy")
    if not policy:
        causes.append(f.required("spec.podManagementPolicy", ""))
    elif policy not in ("OrderedReady", "Parallel"):
        causes.append(f.invalid("spec.podManagementPolicy", policy, "must be 'OrderedReady' or 'Parallel'"))
    strategy = f.as_dict(spec.get("updateStrategy"))
    stype, rolling = strategy.get("type"), strategy.get("rollingUpdate")
    if not stype:
        causes.append(f.required("spec.updateStrategy", ""))
    elif stype == "OnDelete":
        if rolling is not None:
            causes.append(f.invalid("spec.updateStrategy.rollingUpdate", rolling,
                                    "only allowed for updateStrategy 'RollingUpdate'"))  # fmt: skip
    elif stype == "RollingUpdate":
        if rolling is not None:
            rolling = f.as_dict(rolling)
            r_path = "spec.updateStrategy.rollingUpdate"
            causes += f.non_negative(f"{r_path}.partition", rolling.get("partition"))
            unavailable = rolling.get("maxUnavailable")
            if unavailable is not None:
                causes += int_or_percent(unavailable, f"{r_path}.maxUnavailable")
                if _amount(unavailable) == 0:
                    causes.append(f.invalid_shown(f"{r_path}.maxUnavailable", _shown(unavailable),
                                                  "must be greater than 0"))  # fmt: skip
                causes += not_more_than_100_percent(unavailable, f"{r_path}.maxUnavailable")
    else:
        causes.append(f.invalid("spec.updateStrategy", strategy, "must be 'RollingUpdate' or 'OnDelete'"))
    retention = f.as_dict(spec.get("persistentVolumeClaimRetentionPolicy"))
    for key in ("whenDeleted", "whenScaled"):
        causes += f.one_of(f"spec.persistentVolumeClaimRetentionPolicy.{key}", retention.get(key),
                           ("Retain", "Delete"), required_when_empty=False)  # fmt: skip
    causes += f.non_negative("spec.replicas", spec.get("replicas"))
    causes += f.non_negative("spec.minReadySeconds", spec.get("minReadySeconds"))
    causes += f.non_negative("spec.ordinals.start", f.as_dict(spec.get("ordinals")).get("start"))
    causes += _validate_selector_and_template(spec, "statefulset", "StatefulSet", "")
    if spec.get("serviceName"):
        causes += f.check("spec.serviceName", str(spec["serviceName"]), f.dns1123_label)
    for i, claim in enumerate(f.as_list(spec.get("volumeClaimTemplates"))):
        if not f.as_dict(f.as_dict(claim).get("metadata")).get("name"):
            causes.append(f.required(f"spec.volumeClaimTemplates[{i}].metadata.name", ""))
    if old is not None:
        old_spec = f.as_dict(old.get("spec"))
        if {k: v for k, v in spec.items() if k not in _STS_MUTABLE} != {
            k: v for k, v in old_spec.items() if k not in _STS_MUTABLE
        }:
            causes.append(f.forbidden("spec", _STS_UPDATE_ERROR))
    return causes


def _validate_daemon_set_strategy(strategy: Obj, path: str) -> list[Cause]:
    stype = strategy.get("type")
    if stype == "OnDelete":
        return []
    if stype != "RollingUpdate":
        return [f.not_supported(f"{path}.type", stype or "", ["RollingUpdate", "OnDelete"])]
    rolling = strategy.get("rollingUpdate")
    if rolling is None:
        return [f.required(f"{path}.rollingUpdate", "")]
    rolling = f.as_dict(rolling)
    r_path = f"{path}.rollingUpdate"
    surge, unavailable = rolling.get("maxSurge"), rolling.get("maxUnavailable")
    causes = int_or_percent(unavailable, f"{r_path}.maxUnavailable")
    causes += int_or_percent(surge, f"{r_path}.maxSurge")
    causes += not_more_than_100_percent(unavailable, f"{r_path}.maxUnavailable")
    causes += not_more_than_100_percent(surge, f"{r_path}.maxSurge")
    has_unavailable, has_surge = _amount(unavailable) != 0, _amount(surge) != 0
    if has_unavailable and has_surge:
        causes.append(f.invalid_shown(f"{r_path}.maxSurge", _shown(surge),
                                      "may not be set when maxUnavailable is non-zero"))  # fmt: skip
    elif not has_unavailable and not has_surge:
        causes.append(f.required(f"{r_path}.maxUnavailable", "cannot be 0 when maxSurge is 0"))
    return causes


def validate_daemon_set(obj: Obj, old: Obj | None) -> list[Cause]:
    spec = f.as_dict(obj.get("spec"))
    causes = _validate_selector_and_template(spec, "daemonset", "DaemonSet", None)
    causes += f.non_negative("spec.minReadySeconds", spec.get("minReadySeconds"))
    causes += _validate_daemon_set_strategy(f.as_dict(spec.get("updateStrategy")), "spec.updateStrategy")
    causes += f.non_negative("spec.revisionHistoryLimit", spec.get("revisionHistoryLimit"))
    return causes + _immutable_selector(obj, old)


def validate_controller_revision(obj: Obj, old: Obj | None) -> list[Cause]:
    causes = f.non_negative("revision", obj.get("revision"))
    if old is not None and obj.get("data") != old.get("data"):
        causes.append(f.invalid("data", "", f.IMMUTABLE))
    return causes
