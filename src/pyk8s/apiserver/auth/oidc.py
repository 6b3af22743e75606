"""Service-account issuer discovery, as Kubernetes serves it: `/.well-known/openid-configuration` and
`/openid/v1/jwks`, so other systems can verify the cluster's service-account tokens (the default policy
lets every service account read them: system:service-account-issuer-discovery)."""

from __future__ import annotations

import orjson
from aiohttp import web

from pyk8s.apiserver.auth.tokens import ServiceAccountTokens

CONFIGURATION_PATH = "/.well-known/openid-configuration"
JWKS_PATH = "/openid/v1/jwks"


def add_routes(app: web.Application, tokens: ServiceAccountTokens, *, jwks_uri: str | None = None) -> None:
    """Register both documents; they are computed once, as the key does not change while serving."""
    configuration = orjson.dumps(tokens.openid_configuration(jwks_uri))
    jwks = orjson.dumps(tokens.jwks())
    headers = {"Cache-Control": "public, max-age=3600"}

    async def get_configuration(_: web.Request) -> web.Response:
        return web.Response(body=configuration, content_type="application/json", headers=headers)

    async def get_jwks(_: web.Request) -> web.Response:
        return web.Response(body=jwks, content_type="application/jwk-set+json", headers=headers)

    app.router.add_get(CONFIGURATION_PATH, get_configuration)
    app.router.add_get(JWKS_PATH, get_jwks)
