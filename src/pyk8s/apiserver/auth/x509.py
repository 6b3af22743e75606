"""Client-certificate authentication: the TLS layer has already verified the peer's chain against the
cluster CA (the server's SSLContext uses CERT_OPTIONAL), so here the certificate only becomes a user:
CN → name, each O → a group, as Kubernetes' x509 authenticator does."""

from __future__ import annotations

import datetime as dt
import ssl
import weakref
from functools import lru_cache

from aiohttp import web
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from pyk8s.api.errors import unauthorized
from pyk8s.apiserver.interfaces import UserInfo


@lru_cache(maxsize=256)
def _parse(der: bytes) -> tuple[str, tuple[str, ...], bool, dt.datetime, dt.datetime]:
    cert = x509.load_der_x509_certificate(der)
    cn = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    orgs = tuple(str(a.value) for a in cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME))
    try:
        usages = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        client_ok = (ExtendedKeyUsageOID.CLIENT_AUTH in usages
                     or ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE in usages)
    except x509.ExtensionNotFound:
        client_ok = True
    return (str(cn[0].value) if cn else "", orgs, client_ok, cert.not_valid_before_utc,
            cert.not_valid_after_utc)


def user_from_der(der: bytes) -> UserInfo:
    """The user a verified client certificate names; 401 when it is not usable for client auth."""
    cn, orgs, client_ok, not_before, not_after = _parse(der)
    if not client_ok:
        raise unauthorized("x509: certificate specifies an incompatible key usage")
    now = dt.datetime.now(dt.UTC)
    if not not_before <= now <= not_after:
        raise unauthorized("x509: certificate has expired or is not yet valid")
    if not cn:
        raise unauthorized("x509: certificate has no common name")
    return UserInfo(name=cn, groups=orgs)


class X509Authenticator:
    def __init__(self) -> None:
        # A connection's peer certificate never changes: read it once per TLS connection, not per request
        # (a copy of the DER and its hash for the parse cache on every request otherwise).
        self._peer: weakref.WeakKeyDictionary[ssl.SSLObject, bytes] = weakref.WeakKeyDictionary()

    async def authenticate(self, request: web.Request) -> UserInfo | None:
        transport = request.transport
        ssl_object = transport.get_extra_info("ssl_object") if transport is not None else None
        if ssl_object is None:
            return None
        der = self._peer.get(ssl_object)
        if der is None:
            der = self._peer[ssl_object] = ssl_object.getpeercert(binary_form=True) or b""
        if not der:
            return None
        return user_from_der(der)
