"""hostPath types with Kubernetes' checks and messages."""

from __future__ import annotations

import os
import socket
import stat
from pathlib import Path

import pytest

from pyk8s.kubelet.volumes.hostpath import check_type


def test_or_create_types_create_with_kubernetes_modes(tmp_path: Path) -> None:
    d, f = tmp_path / "new" / "dir", tmp_path / "sub" / "file"
    check_type(str(d), "DirectoryOrCreate")
    check_type(str(f), "FileOrCreate")
    assert d.is_dir() and stat.S_IMODE(d.stat().st_mode) == 0o755
    assert f.is_file() and stat.S_IMODE(f.stat().st_mode) == 0o644
    check_type(str(d), "DirectoryOrCreate")  # existing: fine
    check_type(str(f), "FileOrCreate")


@pytest.mark.parametrize(("kind", "suffix"), [
    ("Directory", "is not a directory"),
    ("DirectoryOrCreate", "is not a directory"),
    ("File", "is not a file"),
    ("FileOrCreate", "is not a file"),
    ("Socket", "is not a socket file"),
    ("CharDevice", "is not a character device"),
    ("BlockDevice", "is not a block device"),
])
def test_mismatches_are_refused_with_kubernetes_message(tmp_path: Path, kind: str, suffix: str) -> None:
    # A FIFO is none of the kinds; for the *OrCreate types it exists, so nothing is created.
    path = tmp_path / "fifo"
    os.mkfifo(path)
    with pytest.raises(ValueError) as e:
        check_type(str(path), kind)
    assert str(e.value) == f"hostPath type check failed: {path} {suffix}"


def test_missing_paths_and_matching_kinds(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="is not a directory"):
        check_type(str(tmp_path / "missing"), "Directory")
    sock = socket.socket(socket.AF_UNIX)
    try:
        sock.bind(str(tmp_path / "s"))
        check_type(str(tmp_path / "s"), "Socket")
    finally:
        sock.close()
    check_type("/dev/null", "CharDevice")
    check_type(str(tmp_path), "Directory")
    check_type(str(tmp_path / "missing"), "")  # no type: no check, as Kubernetes
    with pytest.raises(ValueError, match="is an invalid volume type"):
        check_type(str(tmp_path), "Bogus")
