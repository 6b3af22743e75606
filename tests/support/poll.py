"""Synchronise tests by polling with a deadline, never by a bare sleep."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any


async def eventually(check: Callable[[], object], within: float = 5.0, what: str = "condition") -> None:
    """Poll `check` until it returns a true value; fail after `within` seconds."""
    try:
        async with asyncio.timeout(within):
            while True:
                if check():
                    return
                await asyncio.sleep(0.01)
    except TimeoutError:
        raise AssertionError(f"timed out waiting for {what}") from None


async def until(check: Callable[[], Awaitable[object]], within: float = 20.0, what: str = "condition") -> Any:
    """Poll an async `check` until it returns a true value (returned); fail after `within` seconds."""
    last: object = None
    try:
        async with asyncio.timeout(within):
            while True:
                last = await check()
                if last:
                    return last
                await asyncio.sleep(0.02)
    except TimeoutError:
        raise AssertionError(f"timed out waiting for {what} (last: {last!r})") from None
