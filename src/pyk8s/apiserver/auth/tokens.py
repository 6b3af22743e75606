"""Bearer tokens: bound service-account JWTs (issued through TokenRequest, signed with the data dir's
`sa.key`: RS256 for an RSA key, ES256/ES384/ES512 for an ECDSA one, as Kubernetes picks) and bootstrap
tokens (`<id>.<secret>`, checked against `bootstrap-token-<id>` Secrets)."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import hmac
import re
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from pyk8s.api.errors import unauthorized
from pyk8s.api.resource import ResourceInfo
from pyk8s.apiserver.auth import resources
from pyk8s.apiserver.auth.resources import GetObject, Obj
from pyk8s.apiserver.interfaces import UserInfo

DEFAULT_ISSUER = "https://kubernetes.default.svc.cluster.local"
SA_PREFIX = "system:serviceaccount:"
EXTRA_POD_NAME = "authentication.kubernetes.io/pod-name"
EXTRA_POD_UID = "authentication.kubernetes.io/pod-uid"
EXTRA_NODE_NAME = "authentication.kubernetes.io/node-name"
EXTRA_NODE_UID = "authentication.kubernetes.io/node-uid"
EXTRA_CREDENTIAL_ID = "authentication.kubernetes.io/credential-id"


def key_id(public_key_pem: bytes) -> str:
    """Kubernetes' `kid`: the unpadded base64url SHA-256 of the public key's DER encoding."""
    der = serialization.load_pem_public_key(public_key_pem).public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.urlsafe_b64encode(hashlib.sha256(der).digest()).decode().rstrip("=")


# Kubernetes' JWT algorithm for an ECDSA key, by curve (an RSA key signs RS256).
_EC_ALGORITHMS = {"secp256r1": "ES256", "secp384r1": "ES384", "secp521r1": "ES512"}


def signing_algorithm(public_key: object) -> str:
    """The JWT `alg` Kubernetes signs with for this key. ECDSA P-256 signs in ~1/15 of RSA-2048's CPU."""
    if isinstance(public_key, rsa.RSAPublicKey):
        return "RS256"
    if isinstance(public_key, ec.EllipticCurvePublicKey) and public_key.curve.name in _EC_ALGORITHMS:
        return _EC_ALGORITHMS[public_key.curve.name]
    raise ValueError("the service-account signing key must be RSA or ECDSA (P-256, P-384, P-521)")


class TokenInvalid(Exception):
    """A token that is ours but is not (or no longer) valid; the message says why."""


WEBSOCKET_BEARER_PREFIX = "base64url.bearer.authorization.k8s.io."


def bearer_token(request: web.Request) -> str | None:
    """The token of `Authorization: Bearer …`, or — for browsers and kubectl's WebSocket streams, which
    cannot set headers — of a `base64url.bearer.authorization.k8s.io.<token>` WebSocket subprotocol."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() == "bearer":
        return token.strip() or None
    for proto in request.headers.get("Sec-WebSocket-Protocol", "").split(","):
        proto = proto.strip()
        if proto.startswith(WEBSOCKET_BEARER_PREFIX):
            encoded = proto[len(WEBSOCKET_BEARER_PREFIX) :]
            try:
                return base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode() or None
            except (binascii.Error, UnicodeDecodeError):
                return None
    return None


def service_account_username(namespace: str, name: str) -> str:
    return f"{SA_PREFIX}{namespace}:{name}"


def split_service_account_username(username: str) -> tuple[str, str] | None:
    """`system:serviceaccount:NS:NAME` → (NS, NAME); None for any other user name."""
    if not username.startswith(SA_PREFIX):
        return None
    namespace, sep, name = username[len(SA_PREFIX) :].partition(":")
    if not sep or not namespace or not name or ":" in name:
        return None
    return namespace, name


def service_account_groups(namespace: str) -> tuple[str, ...]:
    return ("system:serviceaccounts", f"system:serviceaccounts:{namespace}")


@dataclass(frozen=True, slots=True)
class BoundObject:
    """What a token is bound to (TokenRequest spec.boundObjectRef): Pod, Secret or Node."""

    kind: str
    name: str
    uid: str


class ServiceAccountTokens:
    """Issues and verifies bound service-account tokens in the shape Kubernetes uses (claims `iss`,
    `sub`, `aud`, `exp`, `iat`, `nbf`, `jti`, and `kubernetes.io` with namespace, serviceaccount and the
    bound pod/secret/node), so libraries that decode them find what they expect."""

    def __init__(
        self,
        private_key_pem: bytes,
        public_key_pem: bytes,
        get_object: GetObject,
        *,
        issuer: str = DEFAULT_ISSUER,
        api_audiences: Sequence[str] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        # Parsed once: PyJWT given PEM bytes parses the RSA key on every call (~47 ms to sign, measured).
        private = serialization.load_pem_private_key(private_key_pem, None)
        public = serialization.load_pem_public_key(public_key_pem)
        self.algorithm = signing_algorithm(public)
        if not isinstance(private, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) \
                or not isinstance(public, rsa.RSAPublicKey | ec.EllipticCurvePublicKey) \
                or signing_algorithm(private.public_key()) != self.algorithm:
            raise ValueError("the service-account signing key and public key are not of one kind")
        self._private_key = private
        self._public_key = public
        self.key_id = key_id(public_key_pem)
        self._get = get_object
        self.issuer = issuer
        self.api_audiences = tuple(api_audiences or (issuer,))
        self._clock = clock

    @classmethod
    def from_files(
        cls, sa_key: Path, sa_pub: Path, get_object: GetObject, **kwargs: Any
    ) -> ServiceAccountTokens:
        return cls(sa_key.read_bytes(), sa_pub.read_bytes(), get_object, **kwargs)

    def issue(
        self,
        *,
        namespace: str,
        name: str,
        uid: str,
        audiences: Sequence[str] = (),
        expiration_seconds: int = 3600,
        bound: BoundObject | None = None,
        node: BoundObject | None = None,
        now: float | None = None,
    ) -> tuple[str, int]:
        """A signed token and its expiry (unix seconds)."""
        iat = int(self._clock() if now is None else now)
        exp = iat + expiration_seconds
        k8s: dict[str, Any] = {"namespace": namespace, "serviceaccount": {"name": name, "uid": uid}}
        if bound is not None:
            k8s[bound.kind.lower()] = {"name": bound.name, "uid": bound.uid}
        if node is not None:
            k8s["node"] = {"name": node.name, "uid": node.uid}
        claims = {
            "aud": list(audiences or self.api_audiences),
            "exp": exp,
            "iat": iat,
            "nbf": iat,
            "iss": self.issuer,
            "jti": str(uuid.uuid4()),
            "sub": service_account_username(namespace, name),
            "kubernetes.io": k8s,
        }
        token = jwt.encode(claims, self._private_key, algorithm=self.algorithm, headers={"kid": self.key_id})
        return token, exp

    def jwks(self) -> dict[str, Any]:
        """The public key as a JSON Web Key Set (served at /openid/v1/jwks)."""
        key = self._public_key
        jwk = RSAAlgorithm.to_jwk(key, as_dict=True) if isinstance(key, rsa.RSAPublicKey) \
            else ECAlgorithm.to_jwk(key, as_dict=True)
        return {"keys": [{**jwk, "use": "sig", "alg": self.algorithm, "kid": self.key_id}]}

    def openid_configuration(self, jwks_uri: str | None = None) -> dict[str, Any]:
        """The discovery document at /.well-known/openid-configuration, as Kubernetes serves it."""
        return {
            "issuer": self.issuer,
            "jwks_uri": jwks_uri or f"{self.issuer}/openid/v1/jwks",
            "response_types_supported": ["id_token"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": [self.algorithm],
        }

    def is_ours(self, token: str) -> bool:
        """A JWT whose (unverified) issuer is ours; other bearer tokens are left to other authenticators."""
        if token.count(".") != 2:
            return False
        try:
            claims = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError:
            return False
        return claims.get("iss") == self.issuer

    async def verify(self, token: str, audiences: Sequence[str] | None = None) -> tuple[UserInfo, list[str]]:
        """The token's user and the audiences it was accepted for; TokenInvalid when it is not valid for
        any of `audiences` (default: the API server's), is expired, or its service account, pod or
        secret is gone or was replaced (another uid)."""
        wanted = list(audiences or self.api_audiences)
        try:
            claims = jwt.decode(
                token,
                self._public_key,
                algorithms=[self.algorithm],
                issuer=self.issuer,
                options={"verify_aud": False, "require": ["exp", "iat", "sub", "aud"]},
                leeway=0,
            )
        except jwt.ExpiredSignatureError as e:
            raise TokenInvalid("service account token has expired") from e
        except jwt.PyJWTError as e:
            raise TokenInvalid(f"invalid bearer token, {e}") from e
        token_aud = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
        accepted = [a for a in wanted if a in token_aud]
        if not accepted:
            raise TokenInvalid(
                "token audiences " + repr(token_aud) + " is invalid for the target audiences " + repr(wanted)
            )
        k8s = claims.get("kubernetes.io")
        if not isinstance(k8s, dict):
            raise TokenInvalid("service account token is missing the kubernetes.io claim")
        namespace = str(k8s.get("namespace", ""))
        sa = k8s.get("serviceaccount") or {}
        name, uid = str(sa.get("name", "")), str(sa.get("uid", ""))
        if claims["sub"] != service_account_username(namespace, name):
            raise TokenInvalid("service account token subject does not match its claims")
        await self._check_exists(resources.service_accounts(), namespace, name, uid, "service account")
        extra: dict[str, tuple[str, ...]] = {}
        if jti := claims.get("jti"):
            extra[EXTRA_CREDENTIAL_ID] = (f"JTI={jti}",)
        if isinstance(pod := k8s.get("pod"), dict):
            await self._check_exists(
                resources.pods(), namespace, str(pod.get("name")), str(pod.get("uid")), "pod"
            )
            extra[EXTRA_POD_NAME] = (str(pod.get("name")),)
            extra[EXTRA_POD_UID] = (str(pod.get("uid")),)
        if isinstance(secret := k8s.get("secret"), dict):
            await self._check_exists(
                resources.secrets(), namespace, str(secret.get("name")), str(secret.get("uid")), "secret"
            )
        if isinstance(node := k8s.get("node"), dict):
            await self._check_exists(
                resources.nodes(), "", str(node.get("name")), str(node.get("uid")), "node"
            )
            extra[EXTRA_NODE_NAME] = (str(node.get("name")),)
            extra[EXTRA_NODE_UID] = (str(node.get("uid")),)
        user = UserInfo(name=claims["sub"], uid=uid, groups=service_account_groups(namespace), extra=extra)
        return user, accepted

    async def _check_exists(self, info: ResourceInfo, namespace: str, name: str, uid: str, what: str) -> None:
        obj = await resources.fetch(self._get, info, namespace, name)
        where = f"{namespace}/{name}" if namespace else name
        if obj is None or obj.get("metadata", {}).get("deletionTimestamp"):
            raise TokenInvalid(f"{what} {where} has been deleted")
        if uid and obj.get("metadata", {}).get("uid") != uid:
            actual = obj.get("metadata", {}).get("uid")
            raise TokenInvalid(f"{what} UID ({actual}) does not match claim ({uid})")

    async def authenticate(self, request: web.Request) -> UserInfo | None:
        token = bearer_token(request)
        if token is None or not self.is_ours(token):
            return None
        try:
            user, _ = await self.verify(token)
        except TokenInvalid as e:
            raise unauthorized() from e
        return user


_BOOTSTRAP_TOKEN = re.compile(r"^([a-z0-9]{6})\.([a-z0-9]{16})$")
_BOOTSTRAP_GROUP = re.compile(r"^system:bootstrappers:[a-z0-9:-]{0,255}[a-z0-9]$")
BOOTSTRAP_SECRET_TYPE = "bootstrap.kubernetes.io/token"


def _secret_data(secret: Obj) -> dict[str, str]:
    out: dict[str, str] = {}
    for k, v in (secret.get("data") or {}).items():
        try:
            out[k] = base64.b64decode(v, validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            continue
    # A store that kept stringData unconverted is read too.
    out.update({k: str(v) for k, v in (secret.get("stringData") or {}).items()})
    return out


def _parse_time(value: str) -> dt.datetime | None:
    try:
        return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


class BootstrapTokenAuthenticator:
    """`Bearer <id>.<secret>` against the Secret kube-system/bootstrap-token-<id>, as Kubernetes'
    bootstrap token authenticator: user `system:bootstrap:<id>`, groups `system:bootstrappers` and the
    Secret's `auth-extra-groups`."""

    def __init__(self, get_object: GetObject, *, clock: Callable[[], float] = time.time) -> None:
        self._get = get_object
        self._clock = clock

    async def check(self, token: str) -> UserInfo:
        m = _BOOTSTRAP_TOKEN.match(token)
        if m is None:
            raise TokenInvalid("not a bootstrap token")
        token_id, token_secret = m.groups()
        secret = await resources.fetch(
            self._get, resources.secrets(), "kube-system", f"bootstrap-token-{token_id}"
        )
        if secret is None or secret.get("type") != BOOTSTRAP_SECRET_TYPE:
            raise TokenInvalid(f"no bootstrap token with id {token_id}")
        if secret.get("metadata", {}).get("deletionTimestamp"):
            raise TokenInvalid(f"bootstrap token {token_id} is being deleted")
        data = _secret_data(secret)
        if not hmac.compare_digest(data.get("token-secret", "").encode(), token_secret.encode()):
            raise TokenInvalid(f"bootstrap token {token_id} has another secret")
        if expiration := data.get("expiration"):
            when = _parse_time(expiration)
            if when is None or when.timestamp() <= self._clock():
                raise TokenInvalid(f"bootstrap token {token_id} has expired")
        if data.get("usage-bootstrap-authentication") != "true":
            raise TokenInvalid(f"bootstrap token {token_id} is not marked for authentication")
        groups = ["system:bootstrappers"]
        for g in data.get("auth-extra-groups", "").split(","):
            g = g.strip()
            if not g:
                continue
            if not _BOOTSTRAP_GROUP.match(g):
                raise TokenInvalid(f"bootstrap token {token_id} has an invalid extra group {g!r}")
            if g not in groups:
                groups.append(g)
        return UserInfo(name=f"system:bootstrap:{token_id}", groups=tuple(groups))

    async def authenticate(self, request: web.Request) -> UserInfo | None:
        token = bearer_token(request)
        if token is None or not _BOOTSTRAP_TOKEN.match(token):
            return None
        try:
            return await self.check(token)
        except TokenInvalid as e:
            raise unauthorized() from e
