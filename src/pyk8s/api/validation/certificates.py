"""certificates.k8s.io validation, after Kubernetes' pkg/apis/certificates/validation: a parseable PEM
request, a signer name `<domain>/<path>`, known key usages, at least ten minutes of validity, and
conditions where Approved and Denied exclude each other."""

from __future__ import annotations

import base64
import binascii
from typing import Any

from cryptography import x509

from pyk8s.api.errors import Cause
from pyk8s.api.validation import _field as f

Obj = dict[str, Any]

KEY_USAGES = (
    "signing", "digital signature", "content commitment", "key encipherment", "key agreement",
    "data encipherment", "cert sign", "crl sign", "encipher only", "decipher only", "any", "server auth",
    "client auth", "code signing", "email protection", "s/mime", "ipsec end system", "ipsec tunnel",
    "ipsec user", "timestamping", "ocsp signing", "microsoft sgc", "netscape sgc",
)
_UNIQUE_CONDITIONS = ("Approved", "Denied", "Failed")


def _request_error(request: Any) -> str:
    """Why `spec.request` (base64 of a PEM CSR in JSON) is not a certificate request; "" when it is."""
    try:
        pem = base64.b64decode(str(request), validate=True)
        x509.load_pem_x509_csr(pem)
    except (binascii.Error, ValueError):
        return "PEM block type must be CERTIFICATE REQUEST"
    return ""


def _signer_name_errors(name: str) -> list[str]:
    domain, sep, path = name.partition("/")
    if not sep or not path:
        return ["must be a fully qualified domain and path of the form 'example.com/signer-name'"]
    return f.dns1123_subdomain(domain)


def validate_csr(obj: Obj, old: Obj | None) -> list[Cause]:
    spec = f.as_dict(obj.get("spec"))
    causes: list[Cause] = []
    request = spec.get("request")
    if not request:
        causes.append(f.required("spec.request"))
    elif err := _request_error(request):
        causes.append(f.invalid("spec.request", "<request>", err))
    signer = spec.get("signerName")
    if not signer:
        causes.append(f.required("spec.signerName"))
    else:
        causes += f.check("spec.signerName", str(signer), _signer_name_errors)
    usages = f.as_list(spec.get("usages"))
    if not usages:
        causes.append(f.required("spec.usages", "usages must be provided"))
    seen: set[str] = set()
    for i, usage in enumerate(usages):
        if usage not in KEY_USAGES:
            causes.append(f.not_supported(f"spec.usages[{i}]", usage, KEY_USAGES))
        elif usage in seen:
            causes.append(f.duplicate(f"spec.usages[{i}]", usage))
        seen.add(str(usage))
    seconds = spec.get("expirationSeconds")
    if seconds is not None and (not f.is_int(seconds) or seconds < 600):
        causes.append(f.invalid("spec.expirationSeconds", seconds,
                                "may not specify an expirationSeconds less than 600 seconds (10 minutes)"))
    causes += _conditions(f.as_list(f.as_dict(obj.get("status")).get("conditions")))
    if old is not None:
        causes += f.immutable("spec", obj.get("spec"), old.get("spec"))
    return causes


def _conditions(conditions: list[Any]) -> list[Cause]:
    causes: list[Cause] = []
    seen: set[str] = set()
    for i, cond in enumerate(conditions):
        ctype = str(f.as_dict(cond).get("type") or "")
        path = f"status.conditions[{i}].type"
        if not ctype:
            causes.append(f.required(path))
        elif ctype in _UNIQUE_CONDITIONS and ctype in seen:
            causes.append(f.duplicate(path, ctype))
        seen.add(ctype)
    if "Approved" in seen and "Denied" in seen:
        causes.append(f.invalid("status.conditions", "<conditions>",
                                "Approved and Denied conditions are mutually exclusive"))
    return causes
