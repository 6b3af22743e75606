"""mount(2) and umount(2) through libc, and the kernel's mount table: no `mount` processes per volume."""

from __future__ import annotations

import ctypes
import os

MS_RDONLY = 0x1
MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_BIND = 0x1000
MS_REC = 0x4000
MNT_DETACH = 0x2

_libc = ctypes.CDLL(None, use_errno=True)
_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
_libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]


def _check(result: int, what: str) -> None:
    if result != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def mount(source: str, target: str, fstype: str | None, flags: int = 0, data: str = "") -> None:
    _check(
        _libc.mount(source.encode(), target.encode(), fstype.encode() if fstype else None, flags,
                    data.encode() if data else None),
        f"mount {source} on {target}",
    )


def bind(source: str, target: str) -> None:
    mount(source, target, None, MS_BIND | MS_REC)


def unmount(target: str) -> None:
    """Detach `target` (lazily: a process still inside it does not keep the pod's teardown waiting)."""
    _check(_libc.umount2(target.encode(), MNT_DETACH), f"umount {target}")


def _unescape(field: str) -> str:
    # mountinfo escapes space, tab, newline and backslash as \ooo octal.
    if "\\" not in field:  # nearly always; the table (a few mounts per pod) is read per pod setup
        return field
    out, i = [], 0
    while i < len(field):
        if field[i] == "\\" and field[i + 1:i + 4].isdigit() and len(field[i + 1:i + 4]) == 3:
            out.append(chr(int(field[i + 1:i + 4], 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)


def mount_points() -> list[str]:
    """Every mount point of this mount namespace, in mount order."""
    with open("/proc/self/mountinfo") as f:
        return [_unescape(line.split(" ", 5)[4]) for line in f]


def mounts_under(directory: str) -> list[str]:
    """Mount points at or below `directory`, deepest (most recently mounted) first."""
    real = os.path.realpath(directory)  # the kernel reports mount points by their real path
    prefix = real.rstrip("/") + "/"
    found = [p for p in mount_points() if p == real or p.startswith(prefix)]
    return list(reversed(found))


def is_mount_point(path: str) -> bool:
    return os.path.realpath(path) in set(mount_points())
