"""Linux plumbing through libc: overlay mounts, lazy unmounts, setns for port-forward sockets."""

from __future__ import annotations

import ctypes
import os
import socket
import threading

_libc = ctypes.CDLL(None, use_errno=True)
MNT_DETACH = 2
CLONE_NEWNET = 0x40000000
_setns_lock = threading.Lock()


def _check(rc: int, what: str) -> None:
    if rc != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def mount_overlay(lower: list[str], upper: str, work: str, target: str) -> None:
    """Layers lowest first, as the ImageService lists them (overlayfs wants the topmost first)."""
    opts = f"lowerdir={':'.join(reversed(lower))},upperdir={upper},workdir={work}"
    _check(_libc.mount(b"overlay", target.encode(), b"overlay", 0, opts.encode()), f"mount overlay {target}")


def unmount(target: str) -> None:
    """Lazy unmount; a path that is not mounted is fine."""
    if _libc.umount2(target.encode(), MNT_DETACH) != 0:
        err = ctypes.get_errno()
        if err not in (22, 2):  # EINVAL: not a mount point; ENOENT: gone
            raise OSError(err, f"umount {target}: {os.strerror(err)}")


def is_mounted(target: str) -> bool:
    target = os.path.realpath(target)
    with open("/proc/self/mountinfo") as f:
        return any(line.split()[4] == target for line in f)


def socket_in_netns(netns_path: str, family: int = socket.AF_INET) -> socket.socket:
    """A TCP socket created inside the network namespace at `netns_path` (a socket keeps the namespace
    it was made in). Only this thread switches namespace, and it switches back before returning."""
    with _setns_lock, open("/proc/thread-self/ns/net", "rb") as own, open(netns_path, "rb") as target:
        _check(_libc.setns(target.fileno(), CLONE_NEWNET), "setns")
        try:
            return socket.socket(family, socket.SOCK_STREAM)
        finally:
            _check(_libc.setns(own.fileno(), CLONE_NEWNET), "setns back")
