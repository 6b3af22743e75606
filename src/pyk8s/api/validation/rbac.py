"""rbac.authorization.k8s.io/v1: roles, cluster roles and their bindings."""

from __future__ import annotations

from typing import Any

from pyk8s.api.errors import Cause
from pyk8s.api.validation import _field as f
from pyk8s.api.validation._selector import validate_label_selector

Obj = dict[str, Any]

GROUP = "rbac.authorization.k8s.io"


def _validate_rule(rule: Any, path: str, namespaced: bool) -> list[Cause]:
    rule = f.as_dict(rule)
    causes: list[Cause] = []
    if not f.as_list(rule.get("verbs")):
        causes.append(f.required(f"{path}.verbs", "verbs must contain at least one value"))
    urls = f.as_list(rule.get("nonResourceURLs"))
    if urls:
        if namespaced:
            causes.append(
                f.invalid(
                    f"{path}.nonResourceURLs", urls, "namespaced rules cannot apply to non-resource URLs"
                )
            )
        if rule.get("apiGroups") or rule.get("resources") or rule.get("resourceNames"):
            causes.append(
                f.invalid(
                    f"{path}.nonResourceURLs",
                    urls,
                    "rules cannot apply to both regular resources and non-resource URLs",
                )
            )
        return causes
    if not f.as_list(rule.get("apiGroups")):
        causes.append(f.required(f"{path}.apiGroups", "resource rules must supply at least one api group"))
    if not f.as_list(rule.get("resources")):
        causes.append(f.required(f"{path}.resources", "resource rules must supply at least one resource"))
    return causes


def _validate_rules(obj: Obj, namespaced: bool) -> list[Cause]:
    causes: list[Cause] = []
    for i, rule in enumerate(f.as_list(obj.get("rules"))):
        causes += _validate_rule(rule, f"rules[{i}]", namespaced)
    return causes


def validate_role(obj: Obj, old: Obj | None) -> list[Cause]:
    return _validate_rules(obj, namespaced=True)


def validate_cluster_role(obj: Obj, old: Obj | None) -> list[Cause]:
    causes = _validate_rules(obj, namespaced=False)
    aggregation = obj.get("aggregationRule")
    if aggregation is not None:
        selectors = f.as_list(f.as_dict(aggregation).get("clusterRoleSelectors"))
        if not selectors:
            causes.append(
                f.required(
                    "aggregationRule.clusterRoleSelectors",
                    "at least one clusterRoleSelector required if aggregationRule is non-nil",
                )
            )
        for i, sel in enumerate(selectors):
            causes += validate_label_selector(sel, f"aggregationRule.clusterRoleSelectors[{i}]")
    return causes


def _validate_subject(subject: Any, path: str, namespaced: bool) -> list[Cause]:
    subject = f.as_dict(subject)
    causes: list[Cause] = []
    name = subject.get("name")
    if not name:
        causes.append(f.required(f"{path}.name", ""))
    kind = subject.get("kind")
    api_group = subject.get("apiGroup") or ""
    if kind == "ServiceAccount":
        if name:
            causes += f.check(f"{path}.name", str(name), f.dns1123_subdomain)
        if api_group:
            causes.append(f.not_supported(f"{path}.apiGroup", api_group, [""]))
        if not namespaced and not subject.get("namespace"):
            causes.append(f.required(f"{path}.namespace", ""))
    elif kind in ("User", "Group"):
        if api_group and api_group != GROUP:
            causes.append(f.not_supported(f"{path}.apiGroup", api_group, [GROUP]))
    else:
        causes.append(f.not_supported(f"{path}.kind", kind or "", ["ServiceAccount", "User", "Group"]))
    return causes


def _validate_binding(obj: Obj, old: Obj | None, namespaced: bool) -> list[Cause]:
    causes: list[Cause] = []
    ref = f.as_dict(obj.get("roleRef"))
    if ref.get("apiGroup") != GROUP:
        causes.append(f.not_supported("roleRef.apiGroup", ref.get("apiGroup") or "", [GROUP]))
    kinds = ["Role", "ClusterRole"] if namespaced else ["ClusterRole"]
    if ref.get("kind") not in kinds:
        causes.append(f.not_supported("roleRef.kind", ref.get("kind") or "", kinds))
    if not ref.get("name"):
        causes.append(f.required("roleRef.name", ""))
    else:
        causes += f.check("roleRef.name", str(ref["name"]), f.path_segment_name)
    for i, subject in enumerate(f.as_list(obj.get("subjects"))):
        causes += _validate_subject(subject, f"subjects[{i}]", namespaced)
    if old is not None and old.get("roleRef") != obj.get("roleRef"):
        group, kind, name = (f.go_value(f.key(ref.get(k) or "")) for k in ("apiGroup", "kind", "name"))
        shown = f"rbac.RoleRef{{APIGroup:{group}, Kind:{kind}, Name:{name}}}"
        causes.append(f.invalid_shown("roleRef", shown, "cannot change roleRef"))
    return causes


def validate_role_binding(obj: Obj, old: Obj | None) -> list[Cause]:
    return _validate_binding(obj, old, namespaced=True)


def validate_cluster_role_binding(obj: Obj, old: Obj | None) -> list[Cause]:
    return _validate_binding(obj, old, namespaced=False)
