"""RBAC authorization as Kubernetes' `plugin/pkg/auth/authorizer/rbac`, plus the privileged-group
short cut (`system:masters` may do anything).

Roles and bindings come from the watch cache through an ObjectLister. They are indexed by subject once
and re-indexed only when they change (a revision callable, or a cheap fingerprint of the listed
objects), so a request costs a few dict lookups and the rules of the roles bound to its user.
ClusterRoles with an aggregationRule get the rules of every ClusterRole their selectors match, as the
clusterrole-aggregation controller would write them."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pyk8s.api.errors import StatusError
from pyk8s.api.labels import selector_from_label_selector
from pyk8s.apiserver.auth import resources
from pyk8s.apiserver.interfaces import Attributes, Decision, ObjectLister, UserInfo

Obj = dict[str, Any]
PRIVILEGED_GROUP = "system:masters"
_SA_PREFIX = "system:serviceaccount:"


@dataclass(frozen=True, slots=True)
class Rule:
    verbs: frozenset[str]
    api_groups: frozenset[str]
    resources: tuple[str, ...]
    resource_names: frozenset[str]
    non_resource_urls: tuple[str, ...]

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Rule:
        return cls(
            frozenset(d.get("verbs") or ()),
            frozenset(d.get("apiGroups") or ()),
            tuple(d.get("resources") or ()),
            frozenset(d.get("resourceNames") or ()),
            tuple(d.get("nonResourceURLs") or ()),
        )

    def to_dict(self) -> Obj:
        out: Obj = {"verbs": sorted(self.verbs)}
        if self.non_resource_urls:
            out["nonResourceURLs"] = list(self.non_resource_urls)
        else:
            out["apiGroups"] = sorted(self.api_groups)
            out["resources"] = list(self.resources)
            if self.resource_names:
                out["resourceNames"] = sorted(self.resource_names)
        return out

    def allows(self, a: Attributes) -> bool:
        if "*" not in self.verbs and a.verb not in self.verbs:
            return False
        if not a.is_resource_request:
            return any(
                u == "*" or u == a.path or (u.endswith("*") and a.path.startswith(u[:-1]))
                for u in self.non_resource_urls
            )
        if "*" not in self.api_groups and a.api_group not in self.api_groups:
            return False
        if not _resource_matches(self.resources, a.resource, a.subresource):
            return False
        return not self.resource_names or a.name in self.resource_names


def _resource_matches(rule_resources: tuple[str, ...], resource: str, subresource: str) -> bool:
    combined = f"{resource}/{subresource}" if subresource else resource
    for r in rule_resources:
        if r == "*" or r == combined:
            return True
        # `*/scale` matches the scale subresource of every resource.
        if subresource and r.startswith("*/") and r[2:] == subresource:
            return True
    return False


def selector_matches(selector: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    """metav1.LabelSelector semantics; a malformed selector matches nothing."""
    try:
        return selector_from_label_selector(selector).matches(labels)
    except StatusError:
        return False


def aggregate_cluster_roles(cluster_roles: Iterable[Obj]) -> dict[str, list[Obj]]:
    """Every ClusterRole's effective rules: its own, or for an aggregated role the rules of each role its
    clusterRoleSelectors match (transitively), without duplicates. A controller can write these back."""
    by_name = {cr["metadata"]["name"]: cr for cr in cluster_roles}
    done: dict[str, list[Obj]] = {}

    def resolve(name: str, visiting: frozenset[str]) -> list[Obj]:
        if name in done:
            return done[name]
        role = by_name[name]
        rules: list[Obj] = list(role.get("rules") or ())
        agg = role.get("aggregationRule")
        if agg:
            rules = []
            for other_name in sorted(by_name):
                other = by_name[other_name]
                if other_name == name or other_name in visiting:
                    continue
                labels = other["metadata"].get("labels") or {}
                if any(selector_matches(sel, labels) for sel in agg.get("clusterRoleSelectors") or ()):
                    for rule in resolve(other_name, visiting | {name}):
                        if rule not in rules:
                            rules.append(rule)
        if not visiting:
            done[name] = rules
        return rules

    return {name: resolve(name, frozenset()) for name in by_name}


_SubjectKey = tuple[str, str]  # ("User", name) or ("Group", name); service accounts become their user name


def _subject_key(subject: Mapping[str, Any], binding_namespace: str) -> _SubjectKey | None:
    kind, name = subject.get("kind", ""), subject.get("name", "")
    if kind == "ServiceAccount":
        ns = subject.get("namespace") or binding_namespace
        return ("User", f"{_SA_PREFIX}{ns}:{name}") if ns and name else None
    if kind in ("User", "Group"):
        return (kind, name)
    return None


@dataclass(frozen=True, slots=True)
class _Grant:
    binding_kind: str
    binding_name: str  # "name" or "name/namespace" as Kubernetes prints it
    role_kind: str
    role_name: str
    role_namespace: str
    subject: _SubjectKey


class _Index:
    def __init__(self, cluster_roles: list[Obj], roles: list[Obj], crbs: list[Obj], rbs: list[Obj]) -> None:
        self.cluster_rules = {
            name: [Rule.from_dict(r) for r in rules]
            for name, rules in aggregate_cluster_roles(cluster_roles).items()
        }
        self.role_rules = {
            (r["metadata"].get("namespace", ""), r["metadata"]["name"]): [
                Rule.from_dict(x) for x in r.get("rules") or ()
            ]
            for r in roles
        }
        self.cluster_grants: dict[_SubjectKey, list[_Grant]] = {}
        self.ns_grants: dict[tuple[str, _SubjectKey], list[_Grant]] = {}
        for b in crbs:
            ref = b.get("roleRef") or {}
            if ref.get("kind") != "ClusterRole":
                continue
            for s in b.get("subjects") or ():
                if key := _subject_key(s, ""):
                    self.cluster_grants.setdefault(key, []).append(
                        _Grant(
                            "ClusterRoleBinding",
                            b["metadata"]["name"],
                            "ClusterRole",
                            ref.get("name", ""),
                            "",
                            key,
                        )
                    )
        for b in rbs:
            ns = b["metadata"].get("namespace", "")
            ref = b.get("roleRef") or {}
            kind = ref.get("kind", "")
            if kind not in ("Role", "ClusterRole"):
                continue
            for s in b.get("subjects") or ():
                if key := _subject_key(s, ns):
                    self.ns_grants.setdefault((ns, key), []).append(
                        _Grant(
                            "RoleBinding",
                            f"{b['metadata']['name']}/{ns}",
                            kind,
                            ref.get("name", ""),
                            ns if kind == "Role" else "",
                            key,
                        )
                    )

    def rules_of(self, g: _Grant) -> list[Rule]:
        if g.role_kind == "ClusterRole":
            return self.cluster_rules.get(g.role_name, [])
        return self.role_rules.get((g.role_namespace, g.role_name), [])

    def grants(self, user: UserInfo, namespace: str) -> Iterable[_Grant]:
        keys: list[_SubjectKey] = [("User", user.name), *(("Group", g) for g in user.groups)]
        for k in keys:
            yield from self.cluster_grants.get(k, ())
        if namespace:
            for k in keys:
                yield from self.ns_grants.get((namespace, k), ())


def _describe(g: _Grant) -> str:
    kind, name = g.subject
    return f'{g.binding_kind} "{g.binding_name}" of {g.role_kind} "{g.role_name}" to {kind} "{name}"'


class RBACAuthorizer:
    """Authorizer over the cluster's Roles, ClusterRoles and their bindings.

    `revision`, when given, returns something that changes whenever any RBAC object changes (the watch
    cache's resourceVersion, say); otherwise a fingerprint of the listed objects is compared."""

    def __init__(
        self,
        lister: ObjectLister,
        *,
        revision: Callable[[], object] | None = None,
        privileged_groups: Iterable[str] = (PRIVILEGED_GROUP,),
    ) -> None:
        self._lister = lister
        self._revision = revision
        self._privileged = frozenset(privileged_groups)
        self._index: _Index | None = None
        self._seen: object = None

    def invalidate(self) -> None:
        """Re-index on the next decision (call it from an RBAC watch event if no revision is given)."""
        self._index = None

    def _lists(self) -> tuple[list[Obj], ...]:
        infos = (
            resources.cluster_roles(),
            resources.roles(),
            resources.cluster_role_bindings(),
            resources.role_bindings(),
        )
        return tuple(list(self._lister(i)) for i in infos)

    def index(self) -> _Index:
        if self._revision is not None:
            rev = self._revision()
            if self._index is None or rev != self._seen:
                self._index, self._seen = _Index(*self._lists()), rev
            return self._index
        lists = self._lists()
        fingerprint = tuple(
            (id(o), o.get("metadata", {}).get("resourceVersion")) for objs in lists for o in objs
        )
        if self._index is None or fingerprint != self._seen:
            self._index, self._seen = _Index(*lists), fingerprint
        return self._index

    def decide(self, a: Attributes) -> Decision:
        if self._privileged.intersection(a.user.groups):
            return Decision(True, f"allowed by the privileged group {PRIVILEGED_GROUP}")
        index = self.index()
        for grant in index.grants(a.user, a.namespace if a.is_resource_request else ""):
            if any(rule.allows(a) for rule in index.rules_of(grant)):
                return Decision(True, f"RBAC: allowed by {_describe(grant)}")
        return Decision(False, "")

    async def authorize(self, attributes: Attributes) -> Decision:
        return self.decide(attributes)

    def role_rules(self, kind: str, namespace: str, name: str) -> list[Rule] | None:
        """The effective rules of a Role (`namespace`/`name`) or ClusterRole (`name`); None if absent."""
        index = self.index()
        if kind == "ClusterRole":
            return index.cluster_rules.get(name)
        return index.role_rules.get((namespace, name))

    def aggregated_rules(self, cluster_role: Obj) -> list[Rule]:
        """The rules an aggregated ClusterRole would collect from the current ClusterRoles."""
        others = [
            cr for cr in self._lists()[0] if cr["metadata"]["name"] != cluster_role["metadata"].get("name")
        ]
        name = cluster_role["metadata"].get("name") or "\x00new"
        candidate = {**cluster_role, "metadata": {**cluster_role["metadata"], "name": name}}
        return [Rule.from_dict(r) for r in aggregate_cluster_roles([*others, candidate])[name]]

    def rules_for(self, user: UserInfo, namespace: str) -> tuple[list[Rule], list[Rule]]:
        """(resource rules, non-resource rules) that apply to `user` in `namespace` — for
        SelfSubjectRulesReview. A privileged user gets the cluster-admin rules."""
        if self._privileged.intersection(user.groups):
            return (
                [Rule(frozenset("*"), frozenset("*"), ("*",), frozenset(), ())],
                [Rule(frozenset("*"), frozenset(), (), frozenset(), ("*",))],
            )
        index = self.index()
        res: list[Rule] = []
        non: list[Rule] = []
        for grant in index.grants(user, namespace):
            for rule in index.rules_of(grant):
                target = non if rule.non_resource_urls else res
                if rule not in target:
                    target.append(rule)
        return res, non


def forbidden_message(a: Attributes) -> str:
    """Kubernetes' wording for a refused request (apiserver responsewriters.forbiddenMessage)."""
    if not a.is_resource_request:
        return f'User "{a.user.name}" cannot {a.verb} path "{a.path}"'
    resource = f"{a.resource}/{a.subresource}" if a.subresource else a.resource
    if a.namespace:
        return (
            f'User "{a.user.name}" cannot {a.verb} resource "{resource}" in API group "{a.api_group}" '
            f'in the namespace "{a.namespace}"'
        )
    return (
        f'User "{a.user.name}" cannot {a.verb} resource "{resource}" in API group "{a.api_group}" '
        "at the cluster scope"
    )


def forbidden_error(a: Attributes, reason: str = "") -> StatusError:
    """The 403 Status Kubernetes returns when no authorizer allowed the request."""
    message = forbidden_message(a)
    if reason:
        message = f"{message}: {reason}"
    if not a.is_resource_request:
        return StatusError(403, "Forbidden", f"forbidden: {message}")
    qualified = f"{a.resource}.{a.api_group}" if a.api_group else a.resource
    target = f'{qualified} "{a.name}"' if a.name else qualified
    details: Obj = {"kind": a.resource}
    if a.name:
        details["name"] = a.name
    if a.api_group:
        details["group"] = a.api_group
    return StatusError(403, "Forbidden", f"{target} is forbidden: {message}", details)
