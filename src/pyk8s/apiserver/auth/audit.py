"""`--audit-log PATH`: one audit.k8s.io/v1 Event per request (level Metadata, stage ResponseComplete),
as JSON lines. Events are queued and written by a thread, so the request path never waits on the disk;
when the queue is over `max_buffer` events (the disk cannot keep up) new events are dropped and counted,
like Kubernetes' batch audit backend."""

from __future__ import annotations

import datetime as dt
import os
import queue
import sys
import threading
import uuid
from typing import IO, Any

import orjson
from aiohttp import web

from pyk8s.apiserver.interfaces import Decision, RequestInfo, UserInfo

Obj = dict[str, Any]
_STOP = object()


def _micro(ts: dt.datetime) -> str:
    return ts.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def audit_event(
    request: web.Request,
    info: RequestInfo | None,
    user: UserInfo | None,
    code: int,
    received: dt.datetime,
    *,
    decision: Decision | None = None,
    audit_id: str | None = None,
    completed: dt.datetime | None = None,
) -> Obj:
    """The Event Kubernetes logs at level Metadata for one finished request. `audit_id` defaults to the
    request's `Audit-ID` header or a new UUID (the core should echo it as the `Audit-Id` response header)."""
    event: Obj = {
        "kind": "Event",
        "apiVersion": "audit.k8s.io/v1",
        "level": "Metadata",
        "auditID": audit_id or request.headers.get("Audit-ID") or str(uuid.uuid4()),
        "stage": "ResponseComplete",
        "requestURI": request.path_qs,
        "verb": info.verb if info is not None else request.method.lower(),
        "user": user.to_dict() if user is not None else {},
        "sourceIPs": [request.remote] if request.remote else [],
        "userAgent": request.headers.get("User-Agent", ""),
        "responseStatus": {"metadata": {}, "code": code},
        "requestReceivedTimestamp": _micro(received),
        "stageTimestamp": _micro(completed or dt.datetime.now(dt.UTC)),
    }
    if info is not None and info.is_resource_request:
        ref: Obj = {"resource": info.resource}
        for key, value in (("namespace", info.namespace), ("name", info.name), ("apiGroup", info.api_group),
                           ("apiVersion", info.api_version), ("subresource", info.subresource)):
            if value:
                ref[key] = value
        event["objectRef"] = ref
    if decision is not None:
        event["annotations"] = {"authorization.k8s.io/decision": "allow" if decision.allowed else "forbid",
                                "authorization.k8s.io/reason": decision.reason}
    return event


class AuditLog:
    """Callable sink for audit events: `AuditLog(path)(event)`. `path` "-" writes to stdout."""

    def __init__(self, path: str, *, max_buffer: int = 10000) -> None:
        self._out: IO[bytes]
        if path == "-":
            self._out = sys.stdout.buffer
            self._owned = False
        else:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            self._out = os.fdopen(fd, "ab")
            self._owned = True
        self._queue: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._max = max_buffer
        self.dropped = 0
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="audit-log", daemon=True)
        self._thread.start()

    def __call__(self, event: Obj) -> None:
        if self._closed:
            return
        if self._queue.qsize() >= self._max:
            self.dropped += 1
            return
        self._queue.put(event)

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            batch: list[object] = [item]
            # Take whatever else is waiting so one write and one flush cover a burst.
            while not self._queue.empty() and len(batch) < 1000:
                batch.append(self._queue.get_nowait())
            stop = any(x is _STOP for x in batch)
            lines = b"".join(orjson.dumps(x) + b"\n" for x in batch if x is not _STOP)
            if lines:
                try:
                    self._out.write(lines)
                    self._out.flush()
                except OSError:
                    self.dropped += len(batch) - stop
            if stop:
                return

    def close(self) -> None:
        """Write everything queued, then close the file."""
        if self._closed:
            return
        self._closed = True
        self._queue.put(_STOP)
        self._thread.join()
        if self._owned:
            self._out.close()
