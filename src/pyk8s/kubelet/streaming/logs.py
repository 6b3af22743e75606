"""Reading CRI-format container logs (`<RFC3339Nano> <stream> <F|P> <content>`) as `kubectl logs` wants
them: tail, since, timestamps, byte limit, and follow across the runtime's reopen after a rotation."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

__all__ = ["LogOptions", "parse_rfc3339", "read_logs"]

FOLLOW_POLL = 0.1  # seconds between looks at a followed file (no inotify in the standard library)


@dataclass
class LogOptions:
    follow: bool = False
    tail_lines: int | None = None
    since: float | None = None  # unix seconds: lines at or after it
    timestamps: bool = False
    limit_bytes: int | None = None


def parse_rfc3339(value: str) -> float:
    """RFC 3339 (with up to nanoseconds, as the CRI log writes) → unix seconds."""
    head, _, frac = value.rstrip("Z").partition(".")
    tz = dt.UTC
    if "+" in head[10:] or "-" in head[10:]:
        return dt.datetime.fromisoformat(value).timestamp()
    base = dt.datetime.strptime(head, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=tz).timestamp()
    return base + (float("0." + frac) if frac else 0.0)


def _parse(line: bytes) -> tuple[bytes, bool, bytes] | None:
    """(timestamp, full line?, content) of one CRI log line, None when malformed."""
    parts = line.split(b" ", 3)
    if len(parts) < 3:
        return None
    ts, _stream, tag = parts[0], parts[1], parts[2]
    return ts, tag != b"P", parts[3] if len(parts) == 4 else b""


class _Formatter:
    """Joins partial lines and renders whole lines with optional timestamps and a since filter."""

    def __init__(self, opts: LogOptions) -> None:
        self.opts = opts
        self.partial = b""
        self.first_ts = b""

    def feed(self, raw: bytes) -> bytes | None:
        parsed = _parse(raw)
        if parsed is None:
            return None
        ts, full, content = parsed
        if not self.partial:
            self.first_ts = ts
        self.partial += content
        if not full:
            return None
        out, self.partial = self.partial + b"\n", b""
        if self.opts.since is not None:
            try:
                if parse_rfc3339(self.first_ts.decode()) < self.opts.since:
                    return None
            except ValueError:
                return None
        return self.first_ts + b" " + out if self.opts.timestamps else out


async def read_logs(path: str, opts: LogOptions,
                    running: Callable[[], Awaitable[bool]] | None = None) -> AsyncIterator[bytes]:
    """The log's lines as `kubectl logs` prints them. Following ends when `running()` says the container
    stopped and the file has been read to its end."""
    fmt = _Formatter(opts)
    budget = opts.limit_bytes
    try:
        f = open(path, "rb")  # noqa: SIM115, ASYNC230 — a local file, kept open while following
    except FileNotFoundError:
        return
    try:
        if opts.tail_lines is not None:
            lines = [ln for ln in (fmt.feed(r) for r in f.read().split(b"\n") if r) if ln is not None]
            chunk = b"".join(lines[-opts.tail_lines:] if opts.tail_lines > 0 else [])
            if budget is not None:
                chunk = chunk[:budget]
                budget -= len(chunk)
            if chunk:
                yield chunk
        rest = b""
        final = False  # the container stopped: read to the end once more, then stop following
        while budget is None or budget > 0:
            data = f.read(65536)
            if data:
                rest += data
                *whole, rest = rest.split(b"\n")
                out = b"".join(ln for ln in (fmt.feed(r) for r in whole if r) if ln is not None)
                if budget is not None:
                    out = out[:budget]
                    budget -= len(out)
                if out:
                    yield out
                continue
            if not opts.follow or final:
                break
            # At the end: a rotation leaves a new file at `path`; a stopped container ends the stream.
            try:
                if os.stat(path).st_ino != os.fstat(f.fileno()).st_ino:
                    f.close()
                    f = open(path, "rb")  # noqa: SIM115, ASYNC230
                    continue
            except FileNotFoundError:
                pass
            if running is not None and not await running():
                final = True
                continue
            await asyncio.sleep(FOLLOW_POLL)
    finally:
        f.close()
