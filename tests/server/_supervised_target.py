"""A child for tests/server/test_supervisor.py: records its pid and arguments, then waits to be stopped."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path


async def run(record: Path, payload: bytes) -> None:
    with record.open("a") as f:
        f.write(f"{os.getpid()} {payload.decode()}\n")
    await asyncio.Event().wait()
