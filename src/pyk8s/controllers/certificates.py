"""CertificateSigningRequest approval and signing, after Kubernetes' pkg/controller/certificates.

- The approver (`csrapproving`) approves kubelet client certificates
  (`kubernetes.io/kube-apiserver-client-kubelet`) that are well formed — CN `system:node:<name>`, O exactly
  `system:nodes`, no SANs, usages digital signature + client auth (+ key encipherment) — when asked for by
  a bootstrapping node (a `system:bootstrap:<id>` user in `system:bootstrappers`) or by the node itself
  (renewal: the requestor is the CN, in `system:nodes`). Kubernetes decides those two cases by a
  SubjectAccessReview on `certificatesigningrequests/nodeclient` and `/selfnodeclient`; pyk8s checks the
  identities directly, as the default bindings would grant. Anything else is left for a person
  (`kubectl certificate approve`).
  Like k3s, which gives every agent holding the join token a `system:kube-proxy` client certificate, it
  also approves a `kubernetes.io/kube-apiserver-client` request for exactly CN `system:kube-proxy` (no
  organisation, no SANs, client usages) from a bootstrapper or from `system:kube-proxy` itself: RBAC
  grants that user only `system:node-proxier`, so a join token yields no more than kube-proxy's rights.
- The signer (`csrsigning`) issues certificates for approved requests of the kube-apiserver client signers
  with the cluster CA, for at most `signing_duration` (or the request's expirationSeconds when shorter).
"""

from __future__ import annotations

import base64
import datetime as dt
import logging
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from pyk8s.api.catalog import require
from pyk8s.api.errors import StatusError
from pyk8s.client.cache import DeletedFinalStateUnknown
from pyk8s.client.controller import Controller
from pyk8s.controllers.manager import ControllerContext

__all__ = ["KUBELET_CLIENT_SIGNER", "CSRApprover", "CSRSigner", "new_csr_approver", "new_csr_signer"]

log = logging.getLogger(__name__)

KUBELET_CLIENT_SIGNER = "kubernetes.io/kube-apiserver-client-kubelet"
KUBE_APISERVER_CLIENT_SIGNER = "kubernetes.io/kube-apiserver-client"
_SIGNERS = (KUBELET_CLIENT_SIGNER, KUBE_APISERVER_CLIENT_SIGNER)
_KUBELET_USAGES = ({"digital signature", "client auth"},
                   {"digital signature", "key encipherment", "client auth"})  # the latter for RSA keys
_DEFAULT_SIGNING_DURATION = 365 * 24 * 3600.0  # --cluster-signing-duration

CSR = require("certificates.k8s.io", "CertificateSigningRequest")

Obj = dict[str, Any]


def _conditions(csr: Obj) -> dict[str, Obj]:
    return {str(c.get("type")): c for c in (csr.get("status") or {}).get("conditions") or []
            if isinstance(c, dict)}


def is_approved(csr: Obj) -> bool:
    conds = _conditions(csr)
    return "Approved" in conds and "Denied" not in conds


def _is_finished(csr: Obj) -> bool:
    conds = _conditions(csr)
    return bool({"Approved", "Denied", "Failed"} & set(conds))


def parse_request(csr: Obj) -> x509.CertificateSigningRequest:
    return x509.load_pem_x509_csr(base64.b64decode((csr.get("spec") or {}).get("request") or ""))


KUBE_PROXY_USER = "system:kube-proxy"


def _client_extras_problem(csr: Obj, request: x509.CertificateSigningRequest) -> str:
    """Why a client certificate request carries more than a client needs: subjectAltNames, other usages."""
    try:
        request.extensions.get_extension_for_class(x509.SubjectAlternativeName)
        return "DNS, email, IP or URI subjectAltNames are not allowed"
    except x509.ExtensionNotFound:
        pass
    if set((csr.get("spec") or {}).get("usages") or []) not in _KUBELET_USAGES:
        return f"usages did not match {sorted(_KUBELET_USAGES[0])}"
    return ""


def kube_proxy_client_problem(csr: Obj, request: x509.CertificateSigningRequest) -> str:
    """Why the request is not exactly the service proxy's client certificate request."""
    subject = request.subject
    if any(a.oid != NameOID.COMMON_NAME for a in subject):
        return "subject must hold only the common name"
    cns = [str(a.value) for a in subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
    if cns != [KUBE_PROXY_USER]:
        return f"subject common name is not {KUBE_PROXY_USER}"
    return _client_extras_problem(csr, request)


def kubelet_client_problem(csr: Obj, request: x509.CertificateSigningRequest) -> str:
    """Why the request is not a valid kubelet client certificate request (ValidateKubeletClientCSR)."""
    subject = request.subject
    orgs = [a.value for a in subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)]
    if orgs != ["system:nodes"]:
        return "subject organization is not system:nodes"
    cns = [str(a.value) for a in subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
    if len(cns) != 1 or not cns[0].startswith("system:node:"):
        return 'subject common name does not begin with "system:node:"'
    return _client_extras_problem(csr, request)


class CSRApprover(Controller):
    name = "csrapproving"

    def __init__(self, ctx: ControllerContext) -> None:
        super().__init__(workers=ctx.options.workers)
        self.client = ctx.client
        informer = ctx.informers.informer(CSR)
        self.lister = informer.lister
        informer.add_handler(self.enqueue, lambda _old, new: self.enqueue(new), self._deleted)

    def _deleted(self, _: Obj | DeletedFinalStateUnknown) -> None:
        return None

    async def reconcile(self, key: str) -> float | None:
        csr = self.lister.get(key)
        if csr is None or _is_finished(csr):
            return None
        signer = (csr.get("spec") or {}).get("signerName")
        if signer not in _SIGNERS:
            return None
        try:
            request = parse_request(csr)
        except ValueError:
            return None  # validation keeps these out; nothing to approve
        message = self._approval(csr, request, signer)
        if not message:
            return None
        user = str((csr.get("spec") or {}).get("username") or "")
        approved = {**csr, "status": {**(csr.get("status") or {}), "conditions": [
            *((csr.get("status") or {}).get("conditions") or []),
            {"type": "Approved", "status": "True", "reason": "AutoApproved", "message": message},
        ]}}
        try:
            await self.client.update(CSR, approved, subresource="approval")
        except StatusError as e:
            if e.code == 404:
                return None
            raise
        log.info("csrapproving: approved %s for %s", key, user)
        return None

    @staticmethod
    def _approval(csr: Obj, request: x509.CertificateSigningRequest, signer: str) -> str:
        """The approval message when the requestor may have this certificate automatically, else ""."""
        spec = csr.get("spec") or {}
        user, groups = str(spec.get("username") or ""), set(spec.get("groups") or [])
        bootstrapper = user.startswith("system:bootstrap:") and "system:bootstrappers" in groups
        if signer == KUBE_APISERVER_CLIENT_SIGNER:
            if kube_proxy_client_problem(csr, request) or not (bootstrapper or user == KUBE_PROXY_USER):
                return ""
            return "Auto approving kube-proxy client certificate for a holder of the join token."
        if kubelet_client_problem(csr, request):
            return ""
        cn = str(request.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value)
        if user == cn and "system:nodes" in groups:
            return "Auto approving self kubelet client certificate after SubjectAccessReview."
        if bootstrapper:
            return "Auto approving kubelet client certificate after SubjectAccessReview."
        return ""


class CSRSigner(Controller):
    name = "csrsigning"

    def __init__(self, ctx: ControllerContext, signing_duration: float = _DEFAULT_SIGNING_DURATION) -> None:
        super().__init__(workers=ctx.options.workers)
        self.client = ctx.client
        self.signing_duration = signing_duration
        self.ca_cert: x509.Certificate | None = None
        self.ca_key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | None = None
        if ctx.options.ca_cert_pem and ctx.options.ca_key_pem:
            self.ca_cert = x509.load_pem_x509_certificate(ctx.options.ca_cert_pem)
            key = serialization.load_pem_private_key(ctx.options.ca_key_pem, password=None)
            if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
                raise ValueError("csrsigning: the CA key must be EC or RSA")
            self.ca_key = key
        else:
            log.warning("csrsigning: no CA given; certificate requests will not be signed")
        informer = ctx.informers.informer(CSR)
        self.lister = informer.lister
        informer.add_handler(self.enqueue, lambda _old, new: self.enqueue(new), None)

    async def reconcile(self, key: str) -> float | None:
        csr = self.lister.get(key)
        if csr is None or self.ca_cert is None or self.ca_key is None:
            return None
        spec, status = csr.get("spec") or {}, csr.get("status") or {}
        if spec.get("signerName") not in _SIGNERS or not is_approved(csr) or status.get("certificate") \
                or "Failed" in _conditions(csr):
            return None
        try:
            request = parse_request(csr)
            problem = "" if request.is_signature_valid else "the request's signature is invalid"
        except ValueError as e:
            request, problem = None, f"unable to parse the request: {e}"
        if request is not None and not problem and spec.get("signerName") == KUBELET_CLIENT_SIGNER:
            problem = kubelet_client_problem(csr, request)
        if request is None or problem:
            failed = {"type": "Failed", "status": "True", "reason": "SignerValidationFailure",
                      "message": problem}
            new_status = {**status, "conditions": [*(status.get("conditions") or []), failed]}
        else:
            new_status = {**status, "certificate": base64.b64encode(self._sign(request, spec)).decode()}
        try:
            await self.client.update_status(CSR, {**csr, "status": new_status})
        except StatusError as e:
            if e.code == 404:
                return None
            raise
        log.info("csrsigning: %s %s", "signed" if "certificate" in new_status else "refused", key)
        return None

    def _sign(self, request: x509.CertificateSigningRequest, spec: Obj) -> bytes:
        assert self.ca_cert is not None and self.ca_key is not None
        seconds = self.signing_duration
        if isinstance(spec.get("expirationSeconds"), int):
            seconds = min(seconds, float(spec["expirationSeconds"]))
        now = dt.datetime.now(dt.UTC)
        not_after = min(now + dt.timedelta(seconds=seconds), self.ca_cert.not_valid_after_utc)
        usages = set(spec.get("usages") or [])
        public_key = request.public_key()
        if not isinstance(public_key, ec.EllipticCurvePublicKey | rsa.RSAPublicKey):
            raise ValueError("only EC and RSA keys are signed")
        eku = [oid for name, oid in (("client auth", ExtendedKeyUsageOID.CLIENT_AUTH),
                                     ("server auth", ExtendedKeyUsageOID.SERVER_AUTH)) if name in usages]
        builder = (
            x509.CertificateBuilder()
            .subject_name(request.subject)
            .issuer_name(self.ca_cert.subject)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))  # clock skew between nodes
            .not_valid_after(not_after)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(
                digital_signature="digital signature" in usages, content_commitment=False,
                key_encipherment="key encipherment" in usages, data_encipherment=False, key_agreement=False,
                key_cert_sign=False, crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                self.ca_key.public_key()), critical=False)
        )
        if eku:
            builder = builder.add_extension(x509.ExtendedKeyUsage(eku), critical=False)
        cert = builder.sign(self.ca_key, hashes.SHA256())
        return cert.public_bytes(serialization.Encoding.PEM)


def new_csr_approver(ctx: ControllerContext) -> CSRApprover:
    return CSRApprover(ctx)


def new_csr_signer(ctx: ControllerContext) -> CSRSigner:
    return CSRSigner(ctx)
