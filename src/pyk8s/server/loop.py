"""The event loop pyk8s' long-running processes use."""

from __future__ import annotations

import asyncio
import gc
import os
from collections.abc import Coroutine
from typing import Any


def run_loop(main: Coroutine[Any, Any, None]) -> None:
    """uvloop unless PYK8S_EVENT_LOOP=asyncio: the API server spends much of its time in the event loop's
    socket and TLS handling, which uvloop does in C (creates/s +25% measured side by side).

    The collector runs less often: watch caches and informers hold every object, so each collection is
    costly (it took ~21% of the API server's CPU; these thresholds cut CPU per create by 25-30%, measured).
    A gen-1 collection scans what survived the last `threshold1` gen-0 ones: at 20 that was ~1M informer
    objects, a 250 ms (CPU) pause in the components process; at 4 its pauses are ~70 ms, for the same GC
    CPU in total (each object is still scanned once there) and as many full collections (4 * 500 = 20 * 100
    gen-0 collections apart), measured over 12,000 pod creates.
    """
    gc.set_threshold(50_000, 4, 500)
    if os.environ.get("PYK8S_EVENT_LOOP", "uvloop") == "uvloop":
        import uvloop

        uvloop.run(main)
    else:
        asyncio.run(main)
