"""cri.Stream implementations: exec through `runc exec`, attach through the monitor's socket."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import signal
import struct
import termios
from collections.abc import AsyncIterator, Awaitable, Callable

FRAME = struct.Struct(">BI")  # the monitor's attach frames: stream, length


def stream_pair(reader: asyncio.StreamReader, writer: asyncio.StreamWriter
                ) -> tuple[Callable[[bytes], Awaitable[None]], AsyncIterator[bytes]]:
    """A port-forward's (send, received) over one connection; send(b"") half-closes, received's end closes."""

    async def send(data: bytes) -> None:
        if data:
            writer.write(data)
            await writer.drain()
        elif writer.can_write_eof():
            writer.write_eof()

    async def received() -> AsyncIterator[bytes]:
        try:
            while data := await reader.read(65536):
                yield data
        finally:
            writer.close()

    return send, received()


def _read_pid(path: str) -> int:
    with open(path) as f:
        return int(f.read().strip())


class _Chunks:
    """A byte stream fed by the loop, read once by one consumer; None ends it."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[bytes | None] = asyncio.Queue()

    async def iterate(self) -> AsyncIterator[bytes]:
        while (chunk := await self.queue.get()) is not None:
            yield chunk


def _read_fd(fd: int, out: _Chunks, done: Callable[[], None], first: Callable[[], None]) -> None:
    loop = asyncio.get_running_loop()
    seen = False

    def readable() -> None:
        nonlocal seen
        try:
            data = os.read(fd, 65536)
        except OSError:  # EIO once the terminal's other side is closed
            data = b""
        if data:
            if not seen:
                seen = True
                first()
            out.queue.put_nowait(data)
        else:
            loop.remove_reader(fd)
            out.queue.put_nowait(None)
            done()

    loop.add_reader(fd, readable)


class ExecStream:
    """`runc exec` (or `runsc exec`) in the foreground. With a tty, the runtime's stdio is the slave of a
    pty we own, so it mirrors its size (SIGWINCH) into the container's terminal."""

    def __init__(self, proc: asyncio.subprocess.Process, master: int, pid_file: str) -> None:
        self.proc = proc
        self.master = master
        self.pid_file = pid_file
        self._out = _Chunks()
        self._err = _Chunks()
        self._readers: list[asyncio.Task[None]] = []
        self._size: tuple[int, int] | None = None
        if master >= 0:
            import tty

            tty.setraw(master)  # the container's terminal echoes and edits; ours passes bytes through
            os.set_blocking(master, False)
            _read_fd(master, self._out, lambda: None, self._first_output)
            self._err.queue.put_nowait(None)
        else:
            self._readers = [asyncio.create_task(self._pump(proc.stdout, self._out)),
                             asyncio.create_task(self._pump(proc.stderr, self._err))]

    @staticmethod
    async def _pump(reader: asyncio.StreamReader | None, out: _Chunks) -> None:
        while reader is not None and (data := await reader.read(65536)):
            out.queue.put_nowait(data)
        out.queue.put_nowait(None)

    async def write_stdin(self, data: bytes) -> None:
        if self.master >= 0:
            await asyncio.get_running_loop().run_in_executor(None, os.write, self.master, data)
        elif self.proc.stdin is not None:
            self.proc.stdin.write(data)
            await self.proc.stdin.drain()

    async def close_stdin(self) -> None:
        if self.master >= 0:
            await self.write_stdin(b"\x04")  # EOF on a terminal
        elif self.proc.stdin is not None:
            self.proc.stdin.close()

    def stdout(self) -> AsyncIterator[bytes]:
        return self._out.iterate()

    def stderr(self) -> AsyncIterator[bytes]:
        return self._err.iterate()

    async def resize(self, width: int, height: int) -> None:
        if self.master >= 0:
            self._size = (width, height)
            fcntl.ioctl(self.master, termios.TIOCSWINSZ, struct.pack("HHHH", height, width, 0, 0))
            # runc copies its terminal's size into the container's on SIGWINCH.
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signal.SIGWINCH)

    def _first_output(self) -> None:
        """A resize sent while runc was still starting may be lost: once the container's terminal
        speaks, runc is relaying, so have it copy the size again."""
        if self._size is not None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signal.SIGWINCH)

    async def wait(self) -> int:
        code = await self.proc.wait()
        with contextlib.suppress(OSError):
            os.unlink(self.pid_file)
        if self._readers:
            await asyncio.gather(*self._readers, return_exceptions=True)
        if self.master >= 0:
            with contextlib.suppress(OSError, ValueError):
                asyncio.get_running_loop().remove_reader(self.master)
                os.close(self.master)
            self._out.queue.put_nowait(None)
            self.master = -1
        return code

    async def kill(self) -> None:
        # runc cannot forward SIGKILL: kill the process inside the container by its host pid.
        with contextlib.suppress(OSError, ValueError):
            os.kill(_read_pid(self.pid_file), signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError):
            self.proc.kill()


class AttachStream:
    """A connection to the monitor's attach socket."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 exit_code: Callable[[], int]) -> None:
        self.reader = reader
        self.writer = writer
        self._exit_code = exit_code
        self._out = _Chunks()
        self._err = _Chunks()
        self._code: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._task = asyncio.create_task(self._pump())

    async def _pump(self) -> None:
        try:
            while True:
                head = await self.reader.readexactly(FRAME.size)
                stream, size = FRAME.unpack(head)
                payload = await self.reader.readexactly(size)
                if stream == 1:
                    self._out.queue.put_nowait(payload)
                elif stream == 2:
                    self._err.queue.put_nowait(payload)
                elif stream == 5 and not self._code.done():
                    self._code.set_result(int(payload))
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self._out.queue.put_nowait(None)
            self._err.queue.put_nowait(None)
            if not self._code.done():
                self._code.set_result(self._exit_code())

    async def _send(self, stream: int, data: bytes) -> None:
        self.writer.write(FRAME.pack(stream, len(data)) + data)
        await self.writer.drain()

    async def write_stdin(self, data: bytes) -> None:
        await self._send(0, data)

    async def close_stdin(self) -> None:
        await self._send(3, b"")

    def stdout(self) -> AsyncIterator[bytes]:
        return self._out.iterate()

    def stderr(self) -> AsyncIterator[bytes]:
        return self._err.iterate()

    async def resize(self, width: int, height: int) -> None:
        await self._send(4, f"{width} {height}".encode())

    async def wait(self) -> int:
        return await self._code

    async def kill(self) -> None:
        """Detach: the container keeps running."""
        self.writer.close()
        with contextlib.suppress(Exception):
            await self.writer.wait_closed()
        await asyncio.gather(self._task, return_exceptions=True)
