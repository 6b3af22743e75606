"""Linux plumbing through libc: overlay and tmpfs mounts, lazy unmounts, a pod's IPC/UTS namespaces, setns for
port-forward sockets."""

from __future__ import annotations

import ctypes
import os
import socket
import threading

_libc = ctypes.CDLL(None, use_errno=True)
MNT_DETACH = 2
CLONE_NEWNET = 0x40000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUTS = 0x04000000
MS_BIND = 4096
MS_NOSUID = 2
MS_NODEV = 4
_setns_lock = threading.Lock()


def _check(rc: int, what: str) -> None:
    if rc != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def mount_overlay(lower: list[str], upper: str, work: str, target: str) -> None:
    """Layers lowest first, as the ImageService lists them (overlayfs wants the topmost first)."""
    opts = f"lowerdir={':'.join(reversed(lower))},upperdir={upper},workdir={work}"
    _check(_libc.mount(b"overlay", target.encode(), b"overlay", 0, opts.encode()), f"mount overlay {target}")


def mount_tmpfs(target: str, size: str = "16m") -> None:
    """A private tmpfs (root only) on `target`."""
    opts = f"mode=0700,size={size}".encode()
    _check(_libc.mount(b"tmpfs", target.encode(), b"tmpfs", MS_NOSUID | MS_NODEV, opts),
           f"mount tmpfs {target}")


def unmount(target: str) -> None:
    """Lazy unmount; a path that is not mounted is fine."""
    if _libc.umount2(target.encode(), MNT_DETACH) != 0:
        err = ctypes.get_errno()
        if err not in (22, 2):  # EINVAL: not a mount point; ENOENT: gone
            raise OSError(err, f"umount {target}: {os.strerror(err)}")


def bind(source: str, target: str) -> None:
    _check(_libc.mount(source.encode(), target.encode(), None, MS_BIND, None), f"bind {source} on {target}")


def hold_ipc_uts(ipc_path: str, uts_path: str, hostname: str) -> None:
    """A new IPC namespace, and a new UTS one with `hostname` set if `uts_path`, kept alive by bind mounts
    on those (existing) files: what `unshare --ipc=… --uts=… hostname …` does, without two processes.
    Namespaces are per thread: only the calling thread enters them, and it returns to its own before
    returning (or raises, when even that fails: the thread must not be used again)."""
    flags = CLONE_NEWIPC | (CLONE_NEWUTS if uts_path else 0)
    with open("/proc/thread-self/ns/ipc", "rb") as own_ipc, open("/proc/thread-self/ns/uts", "rb") as own_uts:
        _check(_libc.unshare(flags), "unshare")
        try:
            if uts_path:
                name = hostname.encode()
                _check(_libc.sethostname(name, len(name)), f"sethostname {hostname!r}")
                bind("/proc/thread-self/ns/uts", uts_path)
            bind("/proc/thread-self/ns/ipc", ipc_path)
        finally:
            _check(_libc.setns(own_ipc.fileno(), CLONE_NEWIPC), "setns back (ipc)")
            _check(_libc.setns(own_uts.fileno(), CLONE_NEWUTS), "setns back (uts)")


def socket_in_netns(netns_path: str, family: int = socket.AF_INET) -> socket.socket:
    """A TCP socket created inside the network namespace at `netns_path` (a socket keeps the namespace
    it was made in). Only this thread switches namespace, and it switches back before returning."""
    with _setns_lock, open("/proc/thread-self/ns/net", "rb") as own, open(netns_path, "rb") as target:
        _check(_libc.setns(target.fileno(), CLONE_NEWNET), "setns")
        try:
            return socket.socket(family, socket.SOCK_STREAM)
        finally:
            _check(_libc.setns(own.fileno(), CLONE_NEWNET), "setns back")
