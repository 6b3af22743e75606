"""Stopping asyncio tasks without swallowing the caller's own cancellation."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any


async def cancel_and_wait(tasks: Iterable[asyncio.Future[Any]]) -> None:
    """Cancel `tasks` and wait until each has ended, however it ends.

    `with suppress(CancelledError): await task` is the usual idiom, but when the *caller* is cancelled
    while it waits there, the suppress swallows that cancellation too and the caller runs on: a
    `task.cancel()` aimed at it is lost. asyncio.wait does not raise the tasks' errors and lets the
    caller's own cancellation through."""
    pending = list(tasks)
    for t in pending:
        t.cancel()
    if not pending:
        return
    await asyncio.wait(pending)
    for t in pending:  # mark their errors retrieved: the owner chose to stop them
        if not t.cancelled():
            t.exception()
