"""RBAC's guard against privilege escalation, as Kubernetes' rbac registry (escalation_check.go and
validation.ConfirmNoEscalation): a user may create or update a Role/ClusterRole only with permissions
they already hold (or with the `escalate` verb on it), and a RoleBinding/ClusterRoleBinding only to a
role whose permissions they hold (or with the `bind` verb on it). system:masters may do anything.

An admission plugin: add `RBACEscalationCheck(stack.authorizer)` to the server's admission list."""

from __future__ import annotations

from collections.abc import Iterable

from pyk8s.api.errors import StatusError
from pyk8s.apiserver.auth.rbac import PRIVILEGED_GROUP, RBACAuthorizer, Rule
from pyk8s.apiserver.interfaces import AdmissionRequest, Attributes, Authorizer, Obj, UserInfo

RBAC_GROUP = "rbac.authorization.k8s.io"
_ROLE_KINDS = {"roles": "Role", "clusterroles": "ClusterRole"}
_BINDING_KINDS = {"rolebindings": "RoleBinding", "clusterrolebindings": "ClusterRoleBinding"}


def _atoms(rule: Rule) -> Iterable[Rule]:
    """A rule broken into atoms: one verb, group, resource (and name), or one verb and URL, each."""
    for verb in rule.verbs:
        if rule.non_resource_urls:
            for url in rule.non_resource_urls:
                yield Rule(frozenset((verb,)), frozenset(), (), frozenset(), (url,))
            continue
        for group in rule.api_groups:
            for resource in rule.resources:
                names = rule.resource_names or (None,)
                for name in names:
                    yield Rule(
                        frozenset((verb,)),
                        frozenset((group,)),
                        (resource,),
                        frozenset((name,)) if name is not None else frozenset(),
                        (),
                    )


def _has_resource(owned: tuple[str, ...], resource: str) -> bool:
    if "*" in owned or resource in owned:
        return True
    # "*/status" in the owner's rule covers "pods/status".
    _, sep, sub = resource.partition("/")
    return bool(sep) and f"*/{sub}" in owned


def _covers_atom(owner: Rule, atom: Rule) -> bool:
    (verb,) = atom.verbs
    if "*" not in owner.verbs and verb not in owner.verbs:
        return False
    if atom.non_resource_urls:
        (url,) = atom.non_resource_urls
        return any(
            u == "*" or u == url or (u.endswith("*") and url.startswith(u[:-1]))
            for u in owner.non_resource_urls
        )
    (group,) = atom.api_groups
    (resource,) = atom.resources
    if "*" not in owner.api_groups and group not in owner.api_groups:
        return False
    if not _has_resource(owner.resources, resource):
        return False
    return not owner.resource_names or bool(
        atom.resource_names and atom.resource_names <= owner.resource_names
    )


def uncovered(owner_rules: list[Rule], requested: Iterable[Rule]) -> list[Rule]:
    """The atoms of `requested` that no owner rule covers (policy_comparator.Covers)."""
    return [
        atom
        for rule in requested
        for atom in _atoms(rule)
        if not any(_covers_atom(o, atom) for o in owner_rules)
    ]


def _describe(rules: list[Rule]) -> str:
    def one(r: Rule) -> str:
        if r.non_resource_urls:
            return f"{{NonResourceURLs:{list(r.non_resource_urls)}, Verbs:{sorted(r.verbs)}}}"
        names = f", ResourceNames:{sorted(r.resource_names)}" if r.resource_names else ""
        return (
            f"{{APIGroups:{sorted(r.api_groups)}, Resources:{list(r.resources)}{names}, "
            f"Verbs:{sorted(r.verbs)}}}"
        ).replace("'", '"')

    return "\n".join(one(r) for r in rules)


class RBACEscalationCheck:
    name = "RBACEscalation"

    def __init__(self, rbac: RBACAuthorizer, authorizer: Authorizer | None = None) -> None:
        self._rbac = rbac
        self._authorizer = authorizer or rbac  # the whole chain decides `escalate` and `bind`

    async def admit(self, request: AdmissionRequest) -> None:
        return None

    async def validate(self, request: AdmissionRequest) -> None:
        info = request.resource
        if info.group != RBAC_GROUP or request.operation not in ("CREATE", "UPDATE") or request.subresource:
            return
        if request.obj is None or PRIVILEGED_GROUP in request.user.groups:
            return
        if info.plural in _ROLE_KINDS:
            await self._check_role(request, request.obj)
        elif info.plural in _BINDING_KINDS:
            await self._check_binding(request, request.obj)

    async def _allowed(self, user: UserInfo, verb: str, resource: str, namespace: str, name: str) -> bool:
        decision = await self._authorizer.authorize(
            Attributes(
                user=user,
                verb=verb,
                is_resource_request=True,
                api_group=RBAC_GROUP,
                api_version="v1",
                namespace=namespace,
                resource=resource,
                name=name,
            )
        )
        return decision.allowed

    def _refuse(self, request: AdmissionRequest, missing: list[Rule]) -> StatusError:
        info = request.resource
        groups = " ".join(f'"{g}"' for g in request.user.groups)  # Go's %q of a []string
        message = (
            f'{info.plural}.{info.group} "{request.name}" is forbidden: user "{request.user.name}" '
            f"(groups=[{groups}]) is attempting to grant RBAC permissions not currently held:\n"
            f"{_describe(missing)}"
        )
        return StatusError(
            403, "Forbidden", message, {"name": request.name, "group": info.group, "kind": info.plural}
        )

    def _held(self, user: UserInfo, namespace: str) -> list[Rule]:
        resource_rules, non_resource_rules = self._rbac.rules_for(user, namespace)
        return resource_rules + non_resource_rules

    async def _check_role(self, request: AdmissionRequest, role: Obj) -> None:
        if await self._allowed(
            request.user, "escalate", request.resource.plural, request.namespace, request.name
        ):
            return
        requested = [Rule.from_dict(r) for r in role.get("rules") or ()]
        if role.get("aggregationRule"):
            # The aggregated rules are what the role will grant; the controller fills them in.
            requested += self._rbac.aggregated_rules(role)
        missing = uncovered(self._held(request.user, request.namespace), requested)
        if missing:
            raise self._refuse(request, missing)

    async def _check_binding(self, request: AdmissionRequest, binding: Obj) -> None:
        ref = binding.get("roleRef") or {}
        kind, role_name = ref.get("kind", ""), ref.get("name", "")
        plural = "clusterroles" if kind == "ClusterRole" else "roles"
        if await self._allowed(request.user, "bind", plural, request.namespace, role_name):
            return
        rules = self._rbac.role_rules(kind, request.namespace if kind == "Role" else "", role_name)
        if rules is None:
            raise StatusError(
                404,
                "NotFound",
                f'{plural}.{RBAC_GROUP} "{role_name}" not found',
                {"name": role_name, "group": RBAC_GROUP, "kind": plural},
            )
        missing = uncovered(self._held(request.user, request.namespace), rules)
        if missing:
            raise self._refuse(request, missing)
