"""The event loop pyk8s' long-running processes use."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Coroutine
from typing import Any


def run_loop(main: Coroutine[Any, Any, None]) -> None:
    """uvloop unless PYK8S_EVENT_LOOP=asyncio: the API server spends much of its time in the event loop's
    socket and TLS handling, which uvloop does in C (creates/s +25% measured side by side)."""
    if os.environ.get("PYK8S_EVENT_LOOP", "uvloop") == "uvloop":
        import uvloop

        uvloop.run(main)
    else:
        asyncio.run(main)
