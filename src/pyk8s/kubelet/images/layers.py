"""Extracting a layer tar into a directory usable as an overlayfs lowerdir.

OCI whiteouts become overlay's own form: `.wh.NAME` a character device 0:0 named NAME, `.wh..wh..opq` the
`trusted.overlay.opaque=y` xattr on its directory. Entries may not write outside the directory, through
`..`, absolute names, symlinked parents or hard links to outside. The uncompressed stream's digest (the
layer's diff_id) is checked while extracting.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import os
import shutil
import stat
import subprocess
import tarfile
from collections.abc import Iterator
from typing import IO

WHITEOUT = ".wh."
OPAQUE = ".wh..wh..opq"
GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


class LayerError(Exception):
    pass


class _HashingReader:
    """A read-only file object that hashes what passes through it."""

    def __init__(self, raw: IO[bytes]) -> None:
        self._raw = raw
        self.hash = hashlib.sha256()

    def read(self, n: int = -1) -> bytes:
        data = self._raw.read(n)
        self.hash.update(data)
        return data

    def drain(self) -> None:
        while self.read(1 << 20):
            pass


@contextlib.contextmanager
def open_uncompressed(blob_path: str) -> Iterator[IO[bytes]]:
    """The blob's tar stream, whatever its compression (told by magic bytes, not by media type)."""
    with open(blob_path, "rb") as f:
        magic = f.read(4)
        f.seek(0)
        if magic[:2] == GZIP_MAGIC:
            with gzip.GzipFile(fileobj=f, mode="rb") as gz:
                yield gz  # type: ignore[misc]
        elif magic == ZSTD_MAGIC:
            zstd = shutil.which("zstd")
            if zstd is None:
                raise LayerError("a zstd-compressed layer needs the zstd program")
            proc = subprocess.Popen([zstd, "-dcq", "--", blob_path], stdout=subprocess.PIPE)
            assert proc.stdout is not None
            try:
                yield proc.stdout
            finally:
                proc.stdout.close()
                if proc.wait() != 0:
                    raise LayerError("zstd could not decompress the layer")
        else:
            yield f


def _inside(root: str, path: str) -> bool:
    return path == root or path.startswith(root + os.sep)


def _clean(name: str) -> str:
    """A member name relative to the layer root, or '' for the root itself."""
    parts = [p for p in name.replace("\\", "/").split("/") if p not in ("", ".")]
    if ".." in parts:
        raise LayerError(f"layer entry {name!r} leaves the layer")
    return "/".join(parts)


def _parent_ok(root: str, rel: str) -> str:
    """The real parent directory of `rel`, created if missing; refuse one a symlink moves outside."""
    parent = os.path.dirname(os.path.join(root, rel))
    real = os.path.realpath(parent)
    if not _inside(root, real):
        raise LayerError(f"layer entry {rel!r} is under a symlink that leaves the layer")
    os.makedirs(real, exist_ok=True)
    return real


def _remove(path: str) -> None:
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path)
    elif os.path.lexists(path):
        os.unlink(path)


def _members(tf: tarfile.TarFile, root: str) -> Iterator[tarfile.TarInfo]:
    for m in tf:
        rel = _clean(m.name)
        if not rel:
            continue
        parent = _parent_ok(root, rel)
        base = os.path.basename(rel)
        if base == OPAQUE:
            os.setxattr(parent, "trusted.overlay.opaque", b"y")
            continue
        if base.startswith(WHITEOUT):
            target = os.path.join(parent, base[len(WHITEOUT) :])
            _remove(target)
            os.mknod(target, 0o600 | stat.S_IFCHR, os.makedev(0, 0))
            continue
        if m.islnk():
            link = _clean(m.linkname)
            real_dir = os.path.realpath(os.path.dirname(os.path.join(root, link)))
            if not link or not _inside(root, real_dir):
                raise LayerError(f"hard link {rel!r} points outside the layer")
            m.linkname = link
        target = os.path.join(parent, base)
        # A later entry replaces an earlier one of another type (tar semantics); a directory stays.
        if os.path.lexists(target) and not (m.isdir() and os.path.isdir(target)):
            _remove(target)
        m.name = os.path.relpath(target, root)
        yield m


def _apply_xattrs(root: str, members: list[tarfile.TarInfo]) -> None:
    for m in members:
        for key, value in m.pax_headers.items():
            if key.startswith("SCHILY.xattr."):
                with contextlib.suppress(OSError):
                    os.setxattr(os.path.join(root, m.name), key[len("SCHILY.xattr.") :],
                                value.encode("utf-8", "surrogateescape"), follow_symlinks=False)


def extract_layer(blob_path: str, dest: str, diff_id: str | None = None) -> str:
    """Extract the layer blob into the new directory `dest`; return the uncompressed digest.
    Raises LayerError when `diff_id` is given and the uncompressed content does not match it."""
    os.makedirs(dest, exist_ok=True)
    root = os.path.realpath(dest)
    with open_uncompressed(blob_path) as raw:
        reader = _HashingReader(raw)
        with_xattrs: list[tarfile.TarInfo] = []
        try:
            with tarfile.open(fileobj=reader, mode="r|", errorlevel=1) as tf:  # type: ignore[call-overload]

                def tracked() -> Iterator[tarfile.TarInfo]:
                    for m in _members(tf, root):
                        if any(k.startswith("SCHILY.xattr.") for k in m.pax_headers):
                            with_xattrs.append(m)
                        yield m

                tf.extractall(root, members=tracked(), numeric_owner=True, filter="fully_trusted")
        except (tarfile.TarError, EOFError, OSError, gzip.BadGzipFile) as e:
            raise LayerError(f"cannot extract layer: {e}") from e
        reader.drain()
        _apply_xattrs(root, with_xattrs)
    digest = "sha256:" + reader.hash.hexdigest()
    if diff_id and digest != diff_id:
        raise LayerError(f"layer content {digest} does not match its diff_id {diff_id}")
    return digest
