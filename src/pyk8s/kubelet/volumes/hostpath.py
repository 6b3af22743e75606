"""hostPath types, checked as Kubernetes' pkg/volume/hostpath does, with its messages."""

from __future__ import annotations

import os
import stat


def check_type(path: str, path_type: str) -> None:
    """Raise ValueError with Kubernetes' message when `path` is not what `path_type` asks for; create it
    for DirectoryOrCreate (0755) and FileOrCreate (0644)."""
    if path_type in ("", None):
        return
    try:
        mode: int | None = os.stat(path).st_mode
    except FileNotFoundError:
        mode = None
    if path_type == "DirectoryOrCreate":
        if mode is None:
            os.makedirs(path, mode=0o755, exist_ok=True)
            os.chmod(path, 0o755)
            return
        path_type = "Directory"
    if path_type == "FileOrCreate":
        if mode is None:
            parent = os.path.dirname(path)
            if parent and not os.path.isdir(parent):
                os.makedirs(parent, mode=0o755, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
            os.fchmod(fd, 0o644)
            os.close(fd)
            return
        path_type = "File"
    checks = {
        "Directory": (stat.S_ISDIR, "is not a directory"),
        "File": (stat.S_ISREG, "is not a file"),
        "Socket": (stat.S_ISSOCK, "is not a socket file"),
        "CharDevice": (stat.S_ISCHR, "is not a character device"),
        "BlockDevice": (stat.S_ISBLK, "is not a block device"),
    }
    if path_type not in checks:
        raise ValueError(f"{path_type} is an invalid volume type")
    test, message = checks[path_type]
    if mode is None or not test(mode):
        raise ValueError(f"hostPath type check failed: {path} {message}")


def check_exists(path: str) -> None:
    """A local PersistentVolume's path must be there (the local plugin does not create it)."""
    if not os.path.exists(path):
        raise ValueError(f"path {path!r} does not exist")
