"""The computed, create-only endpoints: TokenRequest (serviceaccounts/token), TokenReview,
SelfSubjectReview (`kubectl auth whoami`), SubjectAccessReview, LocalSubjectAccessReview,
SelfSubjectAccessReview (`kubectl auth can-i`) and SelfSubjectRulesReview (`kubectl auth can-i --list`).

The HTTP core has already authorized `create` on each of these for the caller; the handlers only compute
the answer. Shapes and messages follow Kubernetes' registry/authentication and registry/authorization."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pyk8s.api.errors import Cause, StatusError, bad_request, invalid, not_found
from pyk8s.api.meta import rfc3339
from pyk8s.apiserver.auth import resources
from pyk8s.apiserver.auth.rbac import RBACAuthorizer
from pyk8s.apiserver.auth.resources import GetObject
from pyk8s.apiserver.auth.tokens import (
    BootstrapTokenAuthenticator,
    BoundObject,
    ServiceAccountTokens,
    TokenInvalid,
)
from pyk8s.apiserver.auth.union import with_authenticated
from pyk8s.apiserver.interfaces import Attributes, Authorizer, UserInfo, VirtualCreate

Obj = dict[str, Any]
AUTHN = "authentication.k8s.io"
AUTHZ = "authorization.k8s.io"
MIN_EXPIRATION = 600
MAX_EXPIRATION = 1 << 32
DEFAULT_EXPIRATION = 3600
_BOUND_KINDS = {"Pod": resources.pods, "Secret": resources.secrets, "Node": resources.nodes}


def _answer(body: Obj, kind: str, group: str, status: Obj, **meta: str) -> Obj:
    metadata: Obj = dict(body.get("metadata") or {})
    metadata.setdefault("creationTimestamp", None)
    metadata.update(meta)
    return {
        "kind": kind,
        "apiVersion": f"{group}/v1",
        "metadata": metadata,
        "spec": body.get("spec") or {},
        "status": status,
    }


def _check_kind(body: Obj, kind: str, group: str) -> None:
    got = body.get("kind")
    if got and got != kind:
        raise bad_request(f"the kind of the body ({got}) is not {kind}")
    version = body.get("apiVersion")
    if version and not str(version).startswith(f"{group}/"):
        raise bad_request(f"the apiVersion of the body ({version}) is not in {group}")


class AuthReviews:
    """Builds the VirtualCreate handlers. `authorizer` is the whole authorization chain (it answers the
    access reviews); `rbac` lists rules for SelfSubjectRulesReview."""

    def __init__(
        self,
        *,
        tokens: ServiceAccountTokens,
        bootstrap: BootstrapTokenAuthenticator | None,
        authorizer: Authorizer,
        rbac: RBACAuthorizer | None,
        get_object: GetObject,
    ) -> None:
        self._tokens = tokens
        self._bootstrap = bootstrap
        self._authorizer = authorizer
        self._rbac = rbac
        self._get = get_object

    def handlers(self) -> dict[tuple[str, str, str], VirtualCreate]:
        return {
            ("", "serviceaccounts", "token"): self.token_request,
            (AUTHN, "tokenreviews", ""): self.token_review,
            (AUTHN, "selfsubjectreviews", ""): self.self_subject_review,
            (AUTHZ, "subjectaccessreviews", ""): self.subject_access_review,
            (AUTHZ, "selfsubjectaccessreviews", ""): self.self_subject_access_review,
            (AUTHZ, "localsubjectaccessreviews", ""): self.local_subject_access_review,
            (AUTHZ, "selfsubjectrulesreviews", ""): self.self_subject_rules_review,
        }

    # --- authentication.k8s.io

    async def token_request(self, user: UserInfo, namespace: str, name: str, body: Obj) -> Obj:
        _check_kind(body, "TokenRequest", AUTHN)
        spec: Obj = dict(body.get("spec") or {})
        seconds = spec.get("expirationSeconds")
        seconds = DEFAULT_EXPIRATION if seconds is None else seconds
        causes: list[Cause] = []
        if not isinstance(seconds, int) or isinstance(seconds, bool):
            causes.append(Cause("FieldValueInvalid", "must be an integer", "spec.expirationSeconds"))
        elif seconds < MIN_EXPIRATION:
            causes.append(
                Cause(
                    "FieldValueInvalid",
                    f"Invalid value: {seconds}: may not specify a duration less than 10 minutes",
                    "spec.expirationSeconds",
                )
            )
        elif seconds > MAX_EXPIRATION:
            causes.append(
                Cause(
                    "FieldValueInvalid",
                    f"Invalid value: {seconds}: may not specify a duration larger than 2^32 seconds",
                    "spec.expirationSeconds",
                )
            )
        audiences = spec.get("audiences") or []
        if not isinstance(audiences, list) or not all(isinstance(a, str) for a in audiences):
            causes.append(Cause("FieldValueInvalid", "must be a list of strings", "spec.audiences"))
        if causes:
            raise invalid("TokenRequest", name, causes, AUTHN)

        sa = await resources.fetch(self._get, resources.service_accounts(), namespace, name)
        if sa is None:
            raise not_found("serviceaccounts", name)
        sa_uid = str(sa.get("metadata", {}).get("uid", ""))
        bound = await self._bound_object(spec.get("boundObjectRef"), namespace, name)

        token, exp = self._tokens.issue(
            namespace=namespace,
            name=name,
            uid=sa_uid,
            audiences=audiences or self._tokens.api_audiences,
            expiration_seconds=seconds,
            bound=bound,
        )
        spec["audiences"] = list(audiences or self._tokens.api_audiences)
        spec["expirationSeconds"] = seconds
        spec.setdefault("boundObjectRef", None)
        if bound is not None:
            spec["boundObjectRef"] = {**spec["boundObjectRef"], "uid": bound.uid}
        answer = _answer(
            {**body, "spec": spec},
            "TokenRequest",
            AUTHN,
            {"token": token, "expirationTimestamp": rfc3339(exp)},
            name=name,
            namespace=namespace,
        )
        return answer

    async def _bound_object(self, ref: Any, namespace: str, sa_name: str) -> BoundObject | None:
        if not ref:
            return None
        if not isinstance(ref, dict):
            raise bad_request("spec.boundObjectRef must be an object")
        kind, obj_name, uid = ref.get("kind", ""), ref.get("name", ""), ref.get("uid", "")
        info = _BOUND_KINDS.get(kind)
        if info is None:
            raise bad_request(
                f'cannot bind token to object of kind "{kind}": must be one of Pod, Secret, Node'
            )
        ns = "" if kind == "Node" else namespace
        obj = await resources.fetch(self._get, info(), ns, obj_name)
        if obj is None:
            raise not_found(info().plural, obj_name)
        actual_uid = str(obj.get("metadata", {}).get("uid", ""))
        if uid and uid != actual_uid:
            raise StatusError(
                409,
                "Conflict",
                f"the UID in the bound object reference ({uid}) does not match "
                f"the UID in record. The object might have been deleted and then recreated",
            )
        if kind == "Pod" and (obj.get("spec") or {}).get("serviceAccountName", "default") != sa_name:
            raise bad_request(
                f'cannot bind token for serviceaccount "{sa_name}" to pod running with different '
                f"serviceaccount name."
            )
        return BoundObject(kind, obj_name, actual_uid)

    async def _review_token(self, token: str, audiences: Sequence[str]) -> tuple[UserInfo, list[str]]:
        if self._tokens.is_ours(token):
            return await self._tokens.verify(token, audiences or None)
        if self._bootstrap is not None:
            # Bootstrap tokens are not audience-scoped: valid only for the API server's own audiences.
            accepted = [
                a for a in (audiences or self._tokens.api_audiences) if a in self._tokens.api_audiences
            ]
            if not accepted:
                raise TokenInvalid("token audiences are invalid for the target audiences")
            return await self._bootstrap.check(token), accepted
        raise TokenInvalid("invalid bearer token")

    async def token_review(self, user: UserInfo, namespace: str, name: str, body: Obj) -> Obj:
        _check_kind(body, "TokenReview", AUTHN)
        spec = body.get("spec") or {}
        token = spec.get("token") or ""
        if not token:
            raise bad_request("token is required for TokenReview in authentication")
        audiences = list(spec.get("audiences") or ())
        try:
            reviewed, accepted = await self._review_token(token, audiences)
        except TokenInvalid as e:
            status: Obj = {"authenticated": False, "user": {}, "error": f"[{e}]"}
        else:
            status = {
                "authenticated": True,
                "user": with_authenticated(reviewed).to_dict(),
                "audiences": accepted,
            }
        return _answer(body, "TokenReview", AUTHN, status)

    async def self_subject_review(self, user: UserInfo, namespace: str, name: str, body: Obj) -> Obj:
        _check_kind(body, "SelfSubjectReview", AUTHN)
        return _answer(body, "SelfSubjectReview", AUTHN, {"userInfo": user.to_dict()})

    # --- authorization.k8s.io

    def _attributes(self, user: UserInfo, spec: Obj, *, local_namespace: str | None = None) -> Attributes:
        res, non = spec.get("resourceAttributes"), spec.get("nonResourceAttributes")
        causes: list[Cause] = []
        if res is not None and non is not None:
            causes.append(
                Cause(
                    "FieldValueInvalid",
                    "cannot be specified in combination with resourceAttributes",
                    "spec.nonResourceAttributes",
                )
            )
        if res is None and non is None:
            causes.append(
                Cause(
                    "FieldValueInvalid",
                    "exactly one of nonResourceAttributes or resourceAttributes must be specified",
                    "spec.resourceAttributes",
                )
            )
        if local_namespace is not None and non is not None:
            causes.append(
                Cause("FieldValueInvalid", "disallowed on this kind of request", "spec.nonResourceAttributes")
            )
        if causes:
            raise invalid("SubjectAccessReview", "", causes, AUTHZ)
        if res is not None:
            ns = str(res.get("namespace", ""))
            if local_namespace is not None and ns != local_namespace:
                raise bad_request(
                    f"spec.resourceAttributes.namespace must match namespace: {local_namespace}"
                )
            return Attributes(
                user=user,
                verb=str(res.get("verb", "")),
                is_resource_request=True,
                api_group=str(res.get("group", "")),
                api_version=str(res.get("version", "")),
                namespace=ns,
                resource=str(res.get("resource", "")),
                subresource=str(res.get("subresource", "")),
                name=str(res.get("name", "")),
            )
        non = non or {}
        return Attributes(
            user=user, verb=str(non.get("verb", "")), is_resource_request=False, path=str(non.get("path", ""))
        )

    async def _access_status(self, attributes: Attributes) -> Obj:
        decision = await self._authorizer.authorize(attributes)
        status: Obj = {"allowed": decision.allowed}
        if decision.denied:
            status["denied"] = True
        if decision.reason:
            status["reason"] = decision.reason
        return status

    @staticmethod
    def _spec_user(spec: Obj) -> UserInfo:
        user, groups = str(spec.get("user") or ""), tuple(spec.get("groups") or ())
        if not user and not groups:
            raise invalid(
                "SubjectAccessReview",
                "",
                [Cause("FieldValueInvalid", "at least one of user or group must be specified", "spec.user")],
                AUTHZ,
            )
        extra = {k: tuple(v) for k, v in (spec.get("extra") or {}).items()}
        return UserInfo(name=user, uid=str(spec.get("uid") or ""), groups=groups, extra=extra)

    async def subject_access_review(self, user: UserInfo, namespace: str, name: str, body: Obj) -> Obj:
        _check_kind(body, "SubjectAccessReview", AUTHZ)
        spec = body.get("spec") or {}
        attributes = self._attributes(self._spec_user(spec), spec)
        return _answer(body, "SubjectAccessReview", AUTHZ, await self._access_status(attributes))

    async def local_subject_access_review(self, user: UserInfo, namespace: str, name: str, body: Obj) -> Obj:
        _check_kind(body, "LocalSubjectAccessReview", AUTHZ)
        if not namespace:
            raise bad_request("namespace is required on this type")
        spec = body.get("spec") or {}
        attributes = self._attributes(self._spec_user(spec), spec, local_namespace=namespace)
        return _answer(
            body,
            "LocalSubjectAccessReview",
            AUTHZ,
            await self._access_status(attributes),
            namespace=namespace,
        )

    async def self_subject_access_review(self, user: UserInfo, namespace: str, name: str, body: Obj) -> Obj:
        _check_kind(body, "SelfSubjectAccessReview", AUTHZ)
        attributes = self._attributes(user, body.get("spec") or {})
        return _answer(body, "SelfSubjectAccessReview", AUTHZ, await self._access_status(attributes))

    async def self_subject_rules_review(self, user: UserInfo, namespace: str, name: str, body: Obj) -> Obj:
        _check_kind(body, "SelfSubjectRulesReview", AUTHZ)
        spec = body.get("spec") or {}
        if self._rbac is None:
            status: Obj = {"resourceRules": [], "nonResourceRules": [], "incomplete": True}
        else:
            res, non = self._rbac.rules_for(user, str(spec.get("namespace") or ""))
            status = {
                "resourceRules": [r.to_dict() for r in res],
                "nonResourceRules": [r.to_dict() for r in non],
                "incomplete": False,
            }
        return _answer(body, "SelfSubjectRulesReview", AUTHZ, status)
