"""`--audit-log PATH`: one audit.k8s.io/v1 Event per request (level Metadata, stage ResponseComplete, as
the HTTP core builds it) as JSON lines. Events are queued and written by a thread, so the request path
never waits on the disk; when more than `max_buffer` events are waiting (the disk cannot keep up) new
ones are dropped and counted, like Kubernetes' batch audit backend."""

from __future__ import annotations

import os
import queue
import sys
import threading
from typing import IO, Any

import orjson

Obj = dict[str, Any]
_STOP = object()


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
