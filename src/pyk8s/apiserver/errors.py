"""Turning every failure into a Kubernetes Status response."""

from __future__ import annotations

import logging

from aiohttp import web

from pyk8s.api import errors
from pyk8s.apiserver import codec
from pyk8s.store import errors as store_errors

log = logging.getLogger(__name__)


def to_status_error(exc: BaseException) -> errors.StatusError:
    """The StatusError for `exc`; store errors that escaped the registry get their generic mapping."""
    if isinstance(exc, errors.StatusError):
        return exc
    if isinstance(exc, store_errors.KeyNotFound):
        return errors.StatusError(404, "NotFound", "the server could not find the requested resource")
    if isinstance(exc, store_errors.KeyExists):
        return errors.StatusError(409, "AlreadyExists", "the object already exists")
    if isinstance(exc, store_errors.Conflict):
        return errors.StatusError(
            409,
            "Conflict",
            "Operation cannot be fulfilled: the object has been modified; "
            "please apply your changes to the latest version and try again",
        )
    if isinstance(exc, store_errors.Compacted):
        return errors.gone(f"too old resource version: {exc.requested_revision} ({exc.compact_revision})")
    if isinstance(exc, store_errors.InvalidValue):
        if "exceeds the limit" in str(exc):
            return errors.request_entity_too_large(f"Request entity too large: {exc}")
        return errors.StatusError(422, "Invalid", str(exc))
    if isinstance(exc, store_errors.InvalidKey):
        return errors.StatusError(422, "Invalid", str(exc))
    if isinstance(exc, web.HTTPException):
        reasons = {404: "NotFound", 405: "MethodNotAllowed", 413: "RequestEntityTooLarge"}
        message = "the server could not find the requested resource" if exc.status == 404 else exc.reason
        return errors.StatusError(exc.status, reasons.get(exc.status, "BadRequest"), message)
    log.error("unexpected error serving a request", exc_info=exc)
    return errors.internal(f"{type(exc).__name__}: {exc}")


def status_response(err: errors.StatusError, pretty: bool = False) -> web.Response:
    resp = web.Response(
        body=codec.encode(err.to_status(), pretty), status=err.code, content_type="application/json"
    )
    retry = err.details.get("retryAfterSeconds") if err.details else None
    if retry:
        resp.headers["Retry-After"] = str(retry)
    return resp
