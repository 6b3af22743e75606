"""The per-container monitor (our conmon/containerd-shim).

`python -S -I monitor.py --server STATE_DIR` starts the monitor server (see fork_server), which forks a
monitor per container; `python -S -I monitor.py DIR` runs one monitor alone (the fallback).

Standard library only and no pyk8s imports, and only C modules on the start path (no json, socket,
subprocess or signal wrappers: they pull in re and enum), so it starts in ~15 ms instead of ~40.
It detaches from the kubelet (double fork, own session) so containers outlive the kubelet, becomes the
child subreaper so the container's init is reparented to it, starts the container with `runc run -d`
(or `runsc create` + `start`), reports `{"ok": …}` on its stdout, then copies the container's
output into the CRI log file, serves attach on DIR/attach.sock, and on exit writes DIR/exit.json (exit
code, time, OOM kill) and leaves.

Attach frames, both ways: 1 byte stream, 4 bytes big-endian length, payload. Client to monitor:
0 stdin, 3 close stdin, 4 resize ("W H"). Monitor to client: 1 stdout, 2 stderr, 5 exit code.
"""

import _signal  # type: ignore[import-not-found]  # C module: no enum import
import _socket
import os
import select
import struct
import sys
import time
from _json import encode_basestring_ascii as _quote

SERVER_IDLE_SECONDS = 60
PARTIAL_LIMIT = 16 * 1024  # a line longer than this is logged in P(artial) pieces, as containerd does


def _now_rfc3339(ns: int) -> str:
    secs, frac = divmod(ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs)) + f".{frac:09d}Z"


class LogWriter:
    """CRI log format: `<RFC3339Nano> <stream> <F|P> <content>` per line."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o640) if path else -1
        self.pending = {"stdout": b"", "stderr": b""}

    def reopen(self) -> None:
        """After the kubelet rotated the file (renamed it away): continue in a new one at `path`."""
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o640)

    def _emit(self, stream: str, tag: str, content: bytes) -> None:
        if self.fd >= 0:
            head = f"{_now_rfc3339(time.time_ns())} {stream} {tag} ".encode()
            os.write(self.fd, head + content + b"\n")

    def feed(self, stream: str, data: bytes) -> None:
        buf = self.pending[stream] + data
        while True:
            nl = buf.find(b"\n")
            if nl < 0:
                break
            line, buf = buf[:nl], buf[nl + 1 :]
            if line.endswith(b"\r"):  # a tty ends lines with CRLF
                line = line[:-1]
            while len(line) > PARTIAL_LIMIT:
                self._emit(stream, "P", line[:PARTIAL_LIMIT])
                line = line[PARTIAL_LIMIT:]
            self._emit(stream, "F", line)
        while len(buf) >= PARTIAL_LIMIT:
            self._emit(stream, "P", buf[:PARTIAL_LIMIT])
            buf = buf[PARTIAL_LIMIT:]
        self.pending[stream] = buf

    def flush(self) -> None:
        for stream, buf in self.pending.items():
            if buf:
                self._emit(stream, "F", buf)
        self.pending = {"stdout": b"", "stderr": b""}


def _dumps(obj: dict[str, object]) -> str:
    """JSON of a flat dict of str, bool, int and float (json itself is slow to import)."""
    items = []
    for key, value in obj.items():
        if isinstance(value, bool):
            text = "true" if value else "false"
        elif isinstance(value, str):
            text = _quote(value)
        else:
            text = repr(value)
        items.append(f"{_quote(key)}: {text}")
    return "{" + ", ".join(items) + "}"


def _write_json(path: str, obj: dict[str, object]) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(_dumps(obj))
    os.rename(tmp, path)


def read_config(path: str) -> dict[str, list[str]]:
    """monitor.conf: one `key<TAB>value<TAB>value…` per line (written by service.py)."""
    cfg = {}
    with open(path) as f:
        for line in f.read().split("\n"):
            if line:
                key, *values = line.split("\t")
                cfg[key] = values
    return cfg


def _spawn(argv: list[str], stdio: list[int]) -> int:
    return os.posix_spawnp(argv[0], argv, os.environ, file_actions=[
        (os.POSIX_SPAWN_DUP2, fd, target) for target, fd in enumerate(stdio)])


def _wait(pid: int) -> int:
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])


def _runtime_error(log_path: str, fallback: bytes) -> str:
    """runc's own error message from its JSON log (the last error line)."""
    import json  # only on this error path

    message = ""
    try:
        with open(log_path) as f:
            for line in f:
                try:
                    entry = json.loads(line)
                except ValueError:
                    continue
                if entry.get("level") in ("error", "fatal"):
                    message = entry.get("msg", "")
    except OSError:
        pass
    return message or fallback.decode(errors="replace").strip() or "container could not be started"


def _kill_bundle_processes(bundle: str) -> None:
    """runsc leaves a failed subcontainer's gofer running until its sandbox ends: end the processes
    that serve this container's bundle (its directory is ours alone)."""
    needle = b"\0" + bundle.encode() + b"\0"
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    cmdline = f.read()
                if needle in cmdline and cmdline.startswith(b"runsc-gofer"):
                    os.kill(int(entry), 9)
            except OSError:
                pass


def _oom_killed(memory_cgroup: str) -> bool:
    if not memory_cgroup:
        return False
    try:
        with open(os.path.join(memory_cgroup, "memory.oom_control")) as f:
            for line in f:
                key, _, value = line.partition(" ")
                if key == "oom_kill" and int(value) > 0:
                    return True
    except (OSError, ValueError):
        pass
    return False


class Monitor:
    def __init__(self, cdir: str, cfg: dict[str, list[str]]) -> None:
        self.cdir = cdir
        self.cfg = cfg
        self.kind = cfg["kind"][0]
        self.log = LogWriter(cfg["log_path"][0] if cfg.get("log_path") else "")
        self.clients: list[_socket.socket] = []
        self.stdin_w = -1
        self.master = -1  # pty master with a tty
        self.outputs: dict[int, str] = {}  # fd -> stream name
        self.reaped: dict[int, int] = {}  # pid -> wait status

    # -- start ------------------------------------------------------------------------------------------

    def base_cmd(self) -> list[str]:
        c = self.cfg
        return [*c.get("prefix", []), c["runtime_path"][0], "--root", c["root"][0],
                "--log", os.path.join(self.cdir, "runtime.log"), "--log-format", "json",
                *c.get("global_flags", [])]

    def start(self) -> int:
        """Start the container; returns the pid to wait for. Raises RuntimeError with the runtime's
        message when it cannot run."""
        c = self.cfg
        tty = c.get("tty") == ["1"]
        null = os.open(os.devnull, os.O_RDWR)
        # Attach is served from the moment the kubelet hears the container started.
        if os.path.exists("attach.sock"):
            os.unlink("attach.sock")
        self.listener = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
        self.listener.bind("attach.sock")  # relative: paths are short, see the console socket
        self.listener.listen(16)
        pid_file = os.path.join(self.cdir, "init.pid")
        child_fds: list[int] = []
        console = None
        if tty:
            # Unix socket paths are short (108 bytes): bind relative to our cwd (the container's
            # directory) and give runc the path through /proc.
            if os.path.exists("console.sock"):
                os.unlink("console.sock")
            console = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
            console.bind("console.sock")
            console.listen(1)
            stdio = [null] * 3
        else:
            out_r, out_w = os.pipe()
            err_r, err_w = os.pipe()
            self.outputs = {out_r: "stdout", err_r: "stderr"}
            child_fds += [out_w, err_w]
            if c.get("stdin") == ["1"]:
                in_r, self.stdin_w = os.pipe()
                child_fds.append(in_r)
                stdio = [in_r, out_w, err_w]
            else:
                stdio = [null, out_w, err_w]
        bundle = c["bundle"][0]
        if self.kind == "runsc":
            cmd = [*self.base_cmd(), "create", "--bundle", bundle, "--pid-file", pid_file]
        else:
            cmd = [*self.base_cmd(), "run", "-d", "--bundle", bundle, "--pid-file", pid_file]
        if console is not None:
            cmd += ["--console-socket", f"/proc/{os.getpid()}/cwd/console.sock"]
        cid = c["id"][0]
        cmd.append(cid)
        runtime_pid = _spawn(cmd, stdio)
        if console is not None:
            # runc hands over the pty master on the console socket, or exits on failure.
            runtime_exit = os.pidfd_open(runtime_pid)
            waiter = select.poll()
            waiter.register(console.fileno(), select.POLLIN)
            waiter.register(runtime_exit, select.POLLIN)
            if any(fd == console.fileno() for fd, _ in waiter.poll()):
                conn = _socket.socket(fileno=console._accept()[0])  # type: ignore[attr-defined]
                _, ancdata, _, _ = conn.recvmsg(1024, _socket.CMSG_SPACE(4))
                conn.close()
                for level, kind, data in ancdata:
                    if level == _socket.SOL_SOCKET and kind == _socket.SCM_RIGHTS:
                        self.master = struct.unpack("i", data[:4])[0]
                        self.outputs = {self.master: "stdout"}
            os.close(runtime_exit)
            console.close()
            os.unlink("console.sock")
        rc = _wait(runtime_pid)
        if rc == 0 and self.kind == "runsc":
            # A subcontainer of a gVisor pod sandbox takes its stdio at start, a sandbox's own at create.
            rc = _wait(_spawn([*self.base_cmd(), "start", cid], stdio))
        for fd in [*child_fds, null]:
            os.close(fd)
        if rc != 0:
            message = _runtime_error(os.path.join(self.cdir, "runtime.log"), b"")
            if self.kind == "runsc":  # a created sandbox whose start failed stays up otherwise
                null = os.open(os.devnull, os.O_RDWR)
                _wait(_spawn([*self.base_cmd(), "delete", "--force", cid], [null, null, null]))
                os.close(null)
                _kill_bundle_processes(bundle)
            raise RuntimeError(message)
        if c.get("subcontainer") == ["1"]:
            # A container in the pod's gVisor sandbox lives inside it: `runsc wait` reports its status.
            out = os.open("wait.json", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            null = os.open(os.devnull, os.O_RDWR)
            wait_pid = _spawn([*self.base_cmd(), "wait", cid], [null, out, null])
            os.close(out)
            os.close(null)
            return wait_pid
        # runc: the container's init; runsc: the sandbox process, which exits with the container's
        # status. Either is reparented to us (the subreaper) once the runtime's command has exited.
        with open(pid_file) as f:
            return int(f.read().strip())

    # -- serve --------------------------------------------------------------------------------------------

    def send_all(self, stream: int, data: bytes) -> None:
        frame = struct.pack(">BI", stream, len(data)) + data
        for client in list(self.clients):
            try:
                client.sendall(frame)
            except OSError:  # BlockingIOError too: it fell behind
                self.drop(client)

    def drop(self, client: _socket.socket) -> None:
        if client in self.clients:
            self.clients.remove(client)
            self.poll.unregister(client.fileno())
            client.close()
            if self.cfg.get("stdin_once") == ["1"] and self.stdin_w >= 0:
                os.close(self.stdin_w)
                self.stdin_w = -1

    def client_input(self, client: _socket.socket, bufs: dict[int, bytes]) -> None:
        try:
            data = client.recv(65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self.drop(client)
            return
        buf = bufs.get(client.fileno(), b"") + data
        while len(buf) >= 5:
            stream, size = struct.unpack(">BI", buf[:5])
            if len(buf) < 5 + size:
                break
            payload, buf = buf[5 : 5 + size], buf[5 + size :]
            if stream == 0:
                target = self.master if self.master >= 0 else self.stdin_w
                if target >= 0:
                    try:
                        os.write(target, payload)
                    except OSError:
                        pass
            elif stream == 3 and self.stdin_w >= 0:
                os.close(self.stdin_w)
                self.stdin_w = -1
            elif stream == 4 and self.master >= 0:
                import fcntl
                import termios

                width, height = (int(x) for x in payload.split())
                fcntl.ioctl(self.master, termios.TIOCSWINSZ, struct.pack("HHHH", height, width, 0, 0))
        bufs[client.fileno()] = buf

    def serve(self, pid: int) -> int:
        """Copy output until the container has exited and its output is drained; returns the status."""
        _signal.pthread_sigmask(_signal.SIG_SETMASK, [])  # the kubelet's mask is inherited
        wake_r, wake_w = os.pipe()
        os.set_blocking(wake_w, False)
        _signal.set_wakeup_fd(wake_w)
        _signal.signal(_signal.SIGCHLD, lambda *_: None)
        _signal.signal(_signal.SIGUSR1, lambda *_: None)  # reopen the log (rotation)
        listener = self.listener
        self.poll = select.poll()
        self.poll.register(wake_r, select.POLLIN)
        self.poll.register(listener.fileno(), select.POLLIN)
        for fd in self.outputs:
            self.poll.register(fd, select.POLLIN)
        by_fd: dict[int, _socket.socket] = {}
        bufs: dict[int, bytes] = {}
        status: int | None = None
        drain_deadline = 0.0
        while True:
            # Reap everything (we are the subreaper); remember the container's status.
            while True:
                try:
                    wpid, wstatus = os.waitpid(-1, os.WNOHANG)
                except ChildProcessError:
                    break
                if wpid == 0:
                    break
                self.reaped[wpid] = wstatus
            if status is None and pid in self.reaped:
                status = self.reaped[pid]
                drain_deadline = time.monotonic() + 2.0
            if status is not None and (not self.outputs or time.monotonic() > drain_deadline):
                break
            timeout = None if status is None else max(0, int((drain_deadline - time.monotonic()) * 1000))
            for fd, _ in self.poll.poll(timeout):
                if fd == wake_r:  # the wakeup fd carries the numbers of the signals that arrived
                    if _signal.SIGUSR1 in os.read(wake_r, 4096):
                        self.log.reopen()
                elif fd == listener.fileno():
                    client = _socket.socket(fileno=listener._accept()[0])  # type: ignore[attr-defined]
                    # A slow attach client must never stall the container: a megabyte of slack, then
                    # it is dropped (send_all).
                    client.setsockopt(_socket.SOL_SOCKET, _socket.SO_SNDBUF, 1 << 20)
                    client.setblocking(False)
                    self.clients.append(client)
                    by_fd[client.fileno()] = client
                    self.poll.register(client.fileno(), select.POLLIN)
                elif fd in self.outputs:
                    try:
                        data = os.read(fd, 65536)
                    except OSError:  # EIO: the pty's other side is gone
                        data = b""
                    if not data:
                        self.poll.unregister(fd)
                        del self.outputs[fd]
                        continue
                    self.log.feed(self.outputs[fd], data)
                    self.send_all(1 if self.outputs[fd] == "stdout" else 2, data)
                elif fd in by_fd:
                    self.client_input(by_fd[fd], bufs)
        self.log.flush()
        listener.close()
        os.unlink("attach.sock")
        return status if status is not None else 0


def _exit_code(status: int) -> int:
    if os.WIFSIGNALED(status):
        return 128 + os.WTERMSIG(status)
    return os.WEXITSTATUS(status)


def _detach() -> None:
    """Leave the caller: the first child is reaped by it at once; the grandchild lives on, in a session
    of its own, with the caller's stdout (the report pipe) as fd 1."""
    if os.fork() > 0:
        os._exit(0)
    os.setsid()
    if os.fork() > 0:
        os._exit(0)


def run_monitor(cdir: str, report: int) -> None:
    """Start the container of `cdir`, report on `report`, then watch it to the end."""
    cfg = read_config(os.path.join(cdir, "monitor.conf"))
    import ctypes

    ctypes.CDLL(None).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
    _signal.signal(_signal.SIGUSR1, lambda *_: None)  # a log reopen this early is simply not needed
    os.chdir(cdir)
    monitor = Monitor(cdir, cfg)
    try:
        pid = monitor.start()
    except Exception as e:  # any failure to start is the container's start error
        if os.path.exists("attach.sock"):
            os.unlink("attach.sock")
        _write_json(os.path.join(cdir, "exit.json"), {
            "exit_code": 128, "finished_at": time.time(), "started_at": 0.0, "oom": False,
            "reason": "ContainerCannotRun", "message": str(e)})
        os.write(report, _dumps({"ok": False, "message": str(e)}).encode())
        os.close(report)
        return
    started_at = time.time()
    with open("/proc/self/stat") as f:  # with the pid, names this process even after pid reuse
        boot_ticks = int(f.read().rsplit(")", 1)[1].split()[19])
    _write_json(os.path.join(cdir, "started.json"), {"pid": pid, "started_at": started_at,
                                                     "monitor_pid": os.getpid(),
                                                     "monitor_start": boot_ticks})
    os.write(report, _dumps({"ok": True, "pid": pid}).encode())
    os.close(report)
    try:
        status = monitor.serve(pid)
    except Exception:  # still record how the container ends
        import traceback

        traceback.print_exc()
        reaped = monitor.reaped.get(pid)
        if reaped is None:
            try:
                reaped = os.waitpid(pid, 0)[1]
            except ChildProcessError:
                reaped = 255 << 8
        status = reaped
    code = _exit_code(status)
    if cfg.get("subcontainer") == ["1"]:
        import json

        try:
            with open(os.path.join(cdir, "wait.json")) as f:
                code = int(json.load(f)["exitStatus"])  # already 128+signal for a killed process
        except (OSError, ValueError, KeyError):
            code = 255
    oom = _oom_killed(cfg["memory_cgroup"][0] if cfg.get("memory_cgroup") else "")
    _write_json(os.path.join(cdir, "exit.json"), {
        "exit_code": code, "finished_at": time.time(), "started_at": started_at, "oom": oom})
    monitor.send_all(5, str(code).encode())
    for client in monitor.clients:
        client.close()


def _stdio_to_null() -> int:
    """fd 0 and 1 to /dev/null; returns a copy of the old fd 1 (the report pipe)."""
    report = os.dup(1)
    null = os.open(os.devnull, os.O_RDWR)
    os.dup2(null, 0)
    os.dup2(null, 1)
    os.close(null)
    # A daemon keeps only what it opened: an inherited descriptor (uvloop's spawn passes some on, such as
    # the write end of another child's pipe) would keep that pipe's reader waiting until we exit.
    os.closerange(3, report)
    os.closerange(report + 1, os.sysconf("SC_OPEN_MAX"))
    return report


def fork_server(state_dir: str) -> None:
    """A zygote: forks a ready interpreter for each container instead of starting a new one (a fork
    costs ~1 ms, a fresh `python -S` with these imports ~17 ms of CPU). Requests on
    STATE_DIR/monitor.sock are one line, a container directory; the forked monitor reports on that
    connection. Monitors are sessions of their own: they outlive this server and the kubelet. Idle
    for SERVER_IDLE_SECONDS, it leaves (the runtime starts another when it needs one)."""
    _detach()
    report = _stdio_to_null()
    import ctypes  # noqa: F401 - loaded once here, shared by every forked monitor

    os.chdir(state_dir)
    if os.path.exists("monitor.sock"):
        os.unlink("monitor.sock")
    listener = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    listener.bind("monitor.sock")
    listener.listen(128)
    _signal.signal(_signal.SIGCHLD, _signal.SIG_IGN)  # forked monitors are reaped by the kernel
    os.write(report, b"ready")
    os.close(report)
    waiter = select.poll()
    waiter.register(listener.fileno(), select.POLLIN)
    while waiter.poll(SERVER_IDLE_SECONDS * 1000):
        conn = _socket.socket(fileno=listener._accept()[0])  # type: ignore[attr-defined]
        request = b""
        while not request.endswith(b"\n"):
            chunk = conn.recv(4096)
            if not chunk:
                break
            request += chunk
        cdir = request.decode().strip()
        if cdir == "exit" or not os.path.exists("monitor.sock"):
            conn.close()
            break
        if os.fork() == 0:
            listener.close()
            _signal.signal(_signal.SIGCHLD, _signal.SIG_DFL)
            os.setsid()
            try:
                report = os.dup(conn.fileno())
                conn.close()  # the kubelet reads the report to EOF: only `report` may hold it open
                run_monitor(cdir, report)
            finally:
                os._exit(0)
        conn.close()
    if os.path.exists("monitor.sock"):
        os.unlink("monitor.sock")


def main() -> None:
    if sys.argv[1] == "--server":
        fork_server(sys.argv[2])
        return
    _detach()
    run_monitor(sys.argv[1], _stdio_to_null())


if __name__ == "__main__":
    main()
