"""Resolving paths inside a container's rootfs without ever leaving it (symlinks are scoped to the root)."""

from __future__ import annotations

import os
import posixpath

MAX_SYMLINKS = 40


class UnsafePathError(ValueError):
    pass


def secure_join(root: str, path: str) -> str:
    """`path` resolved inside `root` as if root were `/` (like Go's securejoin): absolute symlinks and
    `..` never climb above root. Missing components are kept as they are."""
    parts = [p for p in path.split("/") if p not in ("", ".")]
    resolved: list[str] = []
    links = 0
    while parts:
        part = parts.pop(0)
        if part == "..":
            if resolved:
                resolved.pop()
            continue
        candidate = os.path.join(root, *resolved, part)
        if os.path.islink(candidate):
            links += 1
            if links > MAX_SYMLINKS:
                raise UnsafePathError(f"too many levels of symbolic links in {path!r}")
            target = os.readlink(candidate)
            if target.startswith("/"):
                resolved = []
            parts = [p for p in target.split("/") if p not in ("", ".")] + parts
            continue
        resolved.append(part)
    return "/" + "/".join(resolved)


def check_working_dir(rootfs: str, working_dir: str) -> None:
    """Refuse a workingDir that would leave the container (CVE-2024-21626): runc 1.1.5 leaks a host
    directory fd into the container's init, so a cwd of /proc/self/fd/N (directly or through a
    symlink in the image) would be a host directory. No working directory belongs under /proc."""
    if not working_dir:
        return
    if not working_dir.startswith("/"):
        raise UnsafePathError(f"workingDir {working_dir!r} must be an absolute path")
    for candidate in (posixpath.normpath(working_dir), secure_join(rootfs, working_dir)):
        if candidate == "/proc" or candidate.startswith("/proc/"):
            raise UnsafePathError(f"workingDir {working_dir!r} resolves into /proc ({candidate}): refused")
