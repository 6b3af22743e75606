"""subPath, safe against CVE-2017-1002101: a symlink a container planted in a volume must not lead a later
container's mount out of the volume.

As Kubernetes (pkg/volume/util/subpath): the subPath is resolved, must lie inside the volume, and is then
opened one component at a time from the volume root with O_NOFOLLOW, so a symlink swapped in after the
check cannot redirect it; the kubelet bind-mounts that open file descriptor (`/proc/self/fd/N`) to a
target under the pod's directory and hands the runtime the target, a path nothing in a container can
change.
"""

from __future__ import annotations

import os
import stat

from pyk8s.kubelet.volumes import mounts

_O_PATH = getattr(os, "O_PATH", 0o10000000)


def _within(path: str, base: str) -> bool:
    return path == base or path.startswith(base.rstrip("/") + "/")


def _components(relative: str) -> list[str]:
    parts = [p for p in relative.split("/") if p not in ("", ".")]
    if relative.startswith("/") or ".." in parts:
        raise ValueError(f"subpath {relative!r} must be a relative path without '..'")
    return parts


def safe_open(base: str, relative: str, *, create_mode: int | None = None) -> int:
    """An O_PATH fd of `base/relative`, opened component by component without following a symlink.
    Missing components become directories with `create_mode` (None: an error)."""
    parts = _components(relative)
    fd = os.open(base, _O_PATH | os.O_NOFOLLOW | os.O_DIRECTORY)
    try:
        for i, part in enumerate(parts):
            flags = _O_PATH | os.O_NOFOLLOW
            try:
                nxt = os.open(part, flags, dir_fd=fd)
            except FileNotFoundError:
                if create_mode is None:
                    raise
                # mkdirat needs a real directory fd, not O_PATH.
                dfd = os.open(f"/proc/self/fd/{fd}", os.O_RDONLY | os.O_DIRECTORY)
                try:
                    os.mkdir(part, create_mode, dir_fd=dfd)
                    os.chmod(part, create_mode, dir_fd=dfd, follow_symlinks=False)
                except FileExistsError:
                    pass
                finally:
                    os.close(dfd)
                nxt = os.open(part, flags, dir_fd=fd)
            if stat.S_ISLNK(os.fstat(nxt).st_mode):
                os.close(nxt)
                raise ValueError(f"subpath component {'/'.join(parts[:i + 1])!r} is a symlink")
            os.close(fd)
            fd = nxt
        return fd
    except BaseException:
        os.close(fd)
        raise


def prepare(volume_path: str, sub_path: str, target: str) -> str:
    """Bind-mount `volume_path/sub_path` onto `target` safely; returns `target`. A missing subPath is
    created as a directory with the volume root's mode, as the kubelet does."""
    base = os.path.realpath(volume_path)
    # Follow symlinks that stay inside the volume (a configMap key is one), refuse any that leave it.
    # The check is then enforced by opening the resolved path without following anything.
    candidate = os.path.join(base, *_components(sub_path))
    resolved = os.path.realpath(candidate)
    if not _within(resolved, base):
        raise ValueError(f"subpath {candidate!r} not within volume path {base!r}")
    fd = safe_open(base, os.path.relpath(resolved, base) if resolved != base else ".",
                   create_mode=stat.S_IMODE(os.stat(base).st_mode))
    try:
        is_dir = stat.S_ISDIR(os.fstat(fd).st_mode)
        if mounts.is_mount_point(target):
            return target  # a restarted container reuses its bind mount, as the kubelet does
        os.makedirs(os.path.dirname(target), mode=0o750, exist_ok=True)
        if is_dir:
            os.makedirs(target, mode=0o750, exist_ok=True)
        elif not os.path.exists(target):
            os.close(os.open(target, os.O_WRONLY | os.O_CREAT, 0o640))
        mounts.bind(f"/proc/self/fd/{fd}", target)
    finally:
        os.close(fd)
    return target
