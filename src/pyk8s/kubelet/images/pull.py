"""Pulling an image over the OCI distribution API into the store.

Manifest (an index or list resolves to linux/<host arch>), config and layers, each checked against its
digest; blobs already in the store are not fetched again. Authentication as registries ask for it: a
`WWW-Authenticate: Bearer realm=…,service=…` challenge sends us to the token endpoint (with basic
credentials when we have them); a `Basic` challenge takes the credentials directly. Credentials come from
imagePullSecrets first, then `registries.yaml`. Failures are ImagePullError (reason ErrImagePull) carrying
the registry's own words: "manifest unknown", "unauthorized: authentication required" …
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import re
import ssl
from dataclasses import dataclass

import aiohttp
import orjson

from pyk8s.kubelet.cri import Image, ImagePullError, RegistryAuth
from pyk8s.kubelet.images import oci, reference
from pyk8s.kubelet.images.registries import Endpoint, HostConfig, RegistriesConfig
from pyk8s.kubelet.images.store import DigestMismatch, ImageStore

MANIFEST_ACCEPT = ", ".join((oci.OCI_INDEX, oci.DOCKER_LIST, oci.OCI_MANIFEST, oci.DOCKER_MANIFEST))
_CHALLENGE_PARAM = re.compile(r'(\w+)="([^"]*)"')
_PARALLEL_BLOBS = 4
_TIMEOUT = aiohttp.ClientTimeout(total=None, connect=10, sock_read=60)


class _Unreachable(Exception):
    """The endpoint could not be spoken to at all: try the next one."""


class _RegistryError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class _Creds:
    user: str = ""
    password: str = ""
    identity_token: str = ""  # docker's OAuth2 refresh token, traded at the token endpoint


def _decode(auth: str) -> tuple[str, str]:
    try:
        user, _, password = base64.b64decode(auth).decode().partition(":")
    except ValueError:
        return "", ""
    return user, password


def _credentials(registry: str, ep: Endpoint, auths: list[RegistryAuth], cfg: HostConfig) -> _Creds:
    """Pull secrets naming the endpoint or the registry first, then registries.yaml."""
    candidates = [(a.username, a.password, a.auth, a.identity_token) for a in auths
                  if reference.registry_host(a.server) in (ep.host, registry)]
    candidates.append((cfg.username, cfg.password, cfg.auth, cfg.identity_token))
    for user, password, auth, token in candidates:
        if token:
            return _Creds(user, password, token)
        if user or password:
            return _Creds(user, password)
        if auth:
            return _Creds(*_decode(auth))
    return _Creds()


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


async def _error_text(resp: aiohttp.ClientResponse) -> str:
    """The registry's `errors` list as docker prints it: "manifest unknown: manifest unknown"."""
    try:
        doc = orjson.loads(await resp.read())
        errs = [f"{str(e.get('code', '')).lower().replace('_', ' ')}: {e.get('message', '')}"
                for e in doc.get("errors") or []]
        if errs:
            return "; ".join(errs)
    except (orjson.JSONDecodeError, AttributeError, aiohttp.ClientError):
        pass
    return f"unexpected status from the registry: {resp.status} {resp.reason}"


class _Registry:
    """One endpoint's session: a base URL that answered, and the Authorization header it asked for."""

    def __init__(self, session: aiohttp.ClientSession, ep: Endpoint, repo: str,
                 creds: _Creds, ssl_ctx: ssl.SSLContext | bool) -> None:
        self._session = session
        self._ep = ep
        self._repo = repo
        self._creds = creds
        self._ssl = ssl_ctx
        self._base = ""
        self._authorization = ""

    async def _open(self, url: str, accept: str) -> aiohttp.ClientResponse:
        headers = {"Accept": accept}
        if self._authorization:
            headers["Authorization"] = self._authorization
        return await self._session.get(url, headers=headers, ssl=self._ssl)

    async def get(self, path: str, accept: str = "*/*") -> aiohttp.ClientResponse:
        """GET `/v2/<repo>/<path>`, authenticating when challenged; raises _RegistryError unless 200."""
        urls = [self._base] if self._base else list(self._ep.urls)
        for i, base in enumerate(urls):
            url = f"{base}{self._ep.path}/v2/{self._repo}/{path}"
            try:
                resp = await self._open(url, accept)
                if resp.status == 401 and not self._authorization:
                    challenge = resp.headers.get("WWW-Authenticate", "")
                    resp.release()
                    await self._authenticate(challenge)
                    resp = await self._open(url, accept)
            except (TimeoutError, aiohttp.ClientConnectionError, ssl.SSLError) as e:
                # A loopback registry without TLS: try http. One whose certificate we reject speaks TLS:
                # plain http would only hide the reason.
                if i + 1 < len(urls) and not isinstance(e, aiohttp.ClientConnectorCertificateError):
                    continue
                raise _Unreachable(f"failed to do request: GET {url}: {e}") from e
            self._base = base
            if resp.status != 200:
                text = await _error_text(resp)
                resp.release()
                raise _RegistryError(resp.status, text)
            return resp
        raise _Unreachable(f"no usable address for {self._ep.host}")

    async def _authenticate(self, challenge: str) -> None:
        scheme, _, rest = challenge.partition(" ")
        creds = self._creds
        if scheme.lower() == "basic":
            if creds.user or creds.password:  # else the retry answers 401 with the registry's message
                self._authorization = _basic(creds.user, creds.password)
        elif scheme.lower() == "bearer":
            params = dict(_CHALLENGE_PARAM.findall(rest))
            realm = params.get("realm", "")
            if not realm:
                raise _RegistryError(401, f"unauthorized: bad challenge from the registry: {challenge}")
            query = {"scope": params.get("scope") or f"repository:{self._repo}:pull"}
            if params.get("service"):
                query["service"] = params["service"]
            try:
                if creds.identity_token:  # OAuth2: trade the refresh token for an access token
                    form = {**query, "grant_type": "refresh_token", "refresh_token": creds.identity_token,
                            "client_id": "pyk8s"}
                    req = self._session.post(realm, data=form, ssl=self._ssl)
                else:
                    basic = {"Authorization": _basic(creds.user, creds.password)} if (
                        creds.user or creds.password) else {}
                    req = self._session.get(realm, params=query, headers=basic, ssl=self._ssl)
                async with req as resp:
                    if resp.status != 200:
                        raise _RegistryError(resp.status, f"failed to fetch a token from {realm}: "
                                             f"{await _error_text(resp)}")
                    doc = orjson.loads(await resp.read())
            except (TimeoutError, aiohttp.ClientError) as e:
                raise _Unreachable(f"failed to fetch a token from {realm}: {e}") from e
            except orjson.JSONDecodeError as e:
                raise _RegistryError(401, f"the token endpoint {realm} answered no JSON: {e}") from e
            token = doc.get("token") or doc.get("access_token") if isinstance(doc, dict) else None
            if not token:
                raise _RegistryError(401, "unauthorized: the token endpoint returned no token")
            self._authorization = f"Bearer {token}"

    async def manifest(self, ref: str, expected: str | None) -> tuple[str, bytes, str]:
        resp = await self.get(f"manifests/{ref}", MANIFEST_ACCEPT)
        body = await resp.read()
        digest = "sha256:" + hashlib.sha256(body).hexdigest()
        if expected and digest != expected:
            raise DigestMismatch(f"manifest digest {digest} does not match {expected}")
        return digest, body, resp.headers.get("Content-Type", "").split(";")[0]

    async def blob(self, store: ImageStore, digest: str) -> None:
        resp = await self.get(f"blobs/{digest}")
        w = store.blob_writer(digest)
        try:
            async for chunk in resp.content.iter_chunked(1 << 18):
                w.write(chunk)
            await asyncio.to_thread(w.commit)
        except BaseException:
            w.abort()
            raise
        finally:
            resp.release()


async def _pull_from(store: ImageStore, ref: reference.Reference, reg: _Registry) -> tuple[str, str]:
    """Fetch everything the image needs; return its top-level digest and media type."""
    top, body, content_type = await reg.manifest(ref.reference, ref.digest or None)
    store.write_blob(body, top)
    doc = orjson.loads(body)
    mt = oci.media_type(doc, content_type)
    digest = top
    while oci.media_type(doc, content_type) in oci.INDEX_TYPES:
        chosen = oci.choose_platform(doc)
        if chosen is None:
            raise ImagePullError(f'failed to pull image "{ref}": no matching manifest for '
                                 f"linux/{oci.host_arch()} in the manifest list entries")
        digest, body, content_type = await reg.manifest(chosen["digest"], chosen["digest"])
        store.write_blob(body, digest)
        doc = orjson.loads(body)
    if oci.media_type(doc, content_type) not in oci.MANIFEST_TYPES:
        raise ImagePullError(f'failed to pull image "{ref}": unsupported manifest type {content_type!r}')
    wanted = [doc["config"]["digest"], *(layer["digest"] for layer in doc.get("layers") or [])]
    limit = asyncio.Semaphore(_PARALLEL_BLOBS)

    async def fetch(d: str) -> None:
        if store.has_blob(d):
            return
        async with limit:
            await store.once(f"blob:{d}", lambda: reg.blob(store, d))

    await asyncio.gather(*(fetch(d) for d in wanted))
    return top, mt


async def pull(store: ImageStore, name: str, auths: list[RegistryAuth]) -> Image:
    ref = reference.parse(name)
    try:
        config = RegistriesConfig.load(store.registries_file)
    except (OSError, ValueError, AttributeError) as e:
        raise ImagePullError(f"cannot read registries.yaml: {e}") from e
    failures: list[tuple[str, str]] = []
    async with aiohttp.ClientSession(timeout=_TIMEOUT) as session:
        for ep in config.endpoints(ref.registry):
            host_cfg = config.host_config(ep.host)
            try:
                reg = _Registry(session, ep, ref.repository, _credentials(ref.registry, ep, auths, host_cfg),
                                host_cfg.ssl_context())
                top, mt = await _pull_from(store, ref, reg)
                break
            except (_Unreachable, _RegistryError) as e:
                failures.append((ep.host, str(e)))
            except DigestMismatch as e:
                failures.append((ep.host, f"content verification failed: {e}"))
            except (TimeoutError, aiohttp.ClientError, OSError) as e:
                failures.append((ep.host, f"failed to read from {ep.host}: {e}"))
        else:
            # One endpoint: its words. Mirrors too: each one's, so a mirror's "manifest unknown" is not
            # hidden behind the upstream's connection error.
            why = failures[0][1] if len(failures) == 1 else "; ".join(f"{h}: {m}" for h, m in failures)
            raise ImagePullError(f'failed to pull and unpack image "{ref}": {why}')
    # A reference with a digest names no tag (containerd and docker drop one written beside it).
    names = [f"{ref.name}@{ref.digest}"] if ref.digest else [name]
    try:
        return await store.register(top, names, mt)
    except Exception as e:
        raise ImagePullError(f'failed to pull and unpack image "{ref}": failed to unpack: {e}') from e
