"""Kubernetes' AtomicWriter: a volume's files change all at once or not at all, as a running pod sees them.

Layout (pkg/volume/util/atomic_writer.go):

    <dir>/..2026_11_23_03_10_00.123456789/<paths>   the payload, written whole
    <dir>/..data -> ..2026_11_23_03_10_00.123456789 swapped by rename(2), atomically
    <dir>/<first path component> -> ..data/<first path component>   what the user sees

A reader that opens `<dir>/key` resolves `..data` once, so it reads either the old payload or the new,
never a mix. The old timestamped directory is removed after the swap.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

DATA_DIR = "..data"
_DATA_TMP = "..data_tmp"


@dataclass(frozen=True)
class FileProjection:
    data: bytes
    mode: int
    uid: int = -1  # -1: leave the owner alone
    gid: int = -1


Payload = Mapping[str, FileProjection]


def _current(target: str) -> str | None:
    try:
        link = os.readlink(os.path.join(target, DATA_DIR))
    except OSError:
        return None
    return os.path.join(target, link)


def _same(ts_dir: str, payload: Payload, mode_mask: int) -> bool:
    """Whether the published payload already is `payload` (same paths, bytes, and modes apart from the
    bits in `mode_mask`)."""
    found: set[str] = set()
    for root, _dirs, files in os.walk(ts_dir):
        for name in files:
            found.add(os.path.relpath(os.path.join(root, name), ts_dir))
    if found != set(payload):
        return False
    for path, proj in payload.items():
        full = os.path.join(ts_dir, path)
        st = os.lstat(full)
        if (st.st_mode & 0o7777 | mode_mask) != (proj.mode | mode_mask) \
                or (proj.uid >= 0 and st.st_uid != proj.uid):
            return False
        with open(full, "rb") as f:
            if f.read() != proj.data:
                return False
    return True


def write(target: str, payload: Payload, set_perms: Callable[[str], None] | None = None,
          mode_mask: int = 0) -> bool:
    """Publish `payload` (relative path → file) in `target`; True when something changed. `set_perms` is
    called with the new timestamped directory before it becomes visible (fsGroup ownership); `mode_mask`
    are the mode bits it may add, which do not count as a change."""
    old = _current(target)
    if old is not None and os.path.isdir(old) and _same(old, payload, mode_mask):
        return False
    stamp = datetime.now(UTC).strftime("..%Y_%m_%d_%H_%M_%S.")
    ts_dir = tempfile.mkdtemp(prefix=stamp, dir=target)
    os.chmod(ts_dir, 0o755)
    for path, proj in payload.items():
        full = os.path.join(ts_dir, path)
        parent = os.path.dirname(full)
        if parent != ts_dir:
            os.makedirs(parent, mode=0o755, exist_ok=True)
        fd = os.open(full, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, proj.mode)
        try:
            os.write(fd, proj.data)
            os.fchmod(fd, proj.mode)  # the umask must not narrow it
            if proj.uid >= 0 or proj.gid >= 0:
                os.fchown(fd, proj.uid, proj.gid)
        finally:
            os.close(fd)
    if set_perms is not None:
        set_perms(ts_dir)
    tmp_link = os.path.join(target, _DATA_TMP)
    if os.path.lexists(tmp_link):
        os.unlink(tmp_link)
    os.symlink(os.path.basename(ts_dir), tmp_link)
    os.rename(tmp_link, os.path.join(target, DATA_DIR))
    _update_user_links(target, {p.split("/", 1)[0] for p in payload})
    if old is not None and os.path.dirname(old.rstrip("/")) == target.rstrip("/"):
        shutil.rmtree(old, ignore_errors=True)
    return True


def _update_user_links(target: str, wanted: set[str]) -> None:
    for name in os.listdir(target):
        if name.startswith(".."):
            continue
        if name not in wanted:
            full = os.path.join(target, name)
            if os.path.islink(full):
                os.unlink(full)
            elif os.path.isdir(full):
                shutil.rmtree(full)
            else:
                os.unlink(full)
    for name in wanted:
        link = os.path.join(target, name)
        if not os.path.islink(link):
            os.symlink(os.path.join(DATA_DIR, name), link)
