"""AtomicWriter: Kubernetes' layout (timestamped dir, `..data` swapped by rename, user-visible links)."""

from __future__ import annotations

import os
import threading
from pathlib import Path

from pyk8s.kubelet.volumes.atomic_writer import DATA_DIR, FileProjection, write


def test_layout_modes_and_links(tmp_path: Path) -> None:
    assert write(str(tmp_path), {"a": FileProjection(b"1", 0o644), "d/b": FileProjection(b"2", 0o400)})
    data = tmp_path / DATA_DIR
    assert data.is_symlink() and os.readlink(data).startswith("..")
    ts_dir = tmp_path / os.readlink(data)
    assert ts_dir.is_dir() and not ts_dir.is_symlink()
    assert os.readlink(tmp_path / "a") == "..data/a" and os.readlink(tmp_path / "d") == "..data/d"
    assert (tmp_path / "a").read_bytes() == b"1" and (tmp_path / "d" / "b").read_bytes() == b"2"
    assert (ts_dir / "a").stat().st_mode & 0o777 == 0o644
    assert (ts_dir / "d" / "b").stat().st_mode & 0o777 == 0o400
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["a", "d", DATA_DIR, ts_dir.name])


def test_update_swaps_whole_payload_and_removes_old(tmp_path: Path) -> None:
    write(str(tmp_path), {"a": FileProjection(b"1", 0o644), "b": FileProjection(b"x", 0o644)})
    first = os.readlink(tmp_path / DATA_DIR)
    assert not write(str(tmp_path), {"a": FileProjection(b"1", 0o644), "b": FileProjection(b"x", 0o644)})
    assert os.readlink(tmp_path / DATA_DIR) == first  # unchanged payload: nothing rewritten
    assert write(str(tmp_path), {"a": FileProjection(b"2", 0o644)})
    second = os.readlink(tmp_path / DATA_DIR)
    assert second != first and not (tmp_path / first).exists()
    assert (tmp_path / "a").read_bytes() == b"2"
    assert not os.path.lexists(tmp_path / "b")  # a key that went away is no longer visible
    assert write(str(tmp_path), {"a": FileProjection(b"2", 0o600)})  # a mode change is a change


def test_readers_never_see_a_torn_payload(tmp_path: Path) -> None:
    """Two files always written with the same generation: a reader going through `..data` once sees both
    from one generation."""
    write(str(tmp_path), {"x": FileProjection(b"0", 0o644), "y": FileProjection(b"0", 0o644)})
    torn: list[tuple[bytes, bytes]] = []
    reads = [0]
    stop = threading.Event()

    def read(name: str, dir_fd: int) -> bytes:
        f = os.open(name, os.O_RDONLY, dir_fd=dir_fd)
        try:
            return os.read(f, 10)
        finally:
            os.close(f)

    def reader() -> None:
        while not stop.is_set():
            if not os.path.islink(tmp_path / DATA_DIR):  # the rename(2) swap: `..data` is always there
                torn.append((b"no ..data", b""))
            try:
                fd = os.open(tmp_path / DATA_DIR, os.O_RDONLY | os.O_DIRECTORY)
            except FileNotFoundError:
                continue  # it named a generation removed a moment later: a retry, not a torn read
            try:
                x, y = read("x", fd), read("y", fd)
            except FileNotFoundError:
                continue  # the old generation was removed under us: a retry, not a torn read
            finally:
                os.close(fd)
            reads[0] += 1
            if x != y:
                torn.append((x, y))

    t = threading.Thread(target=reader)
    t.start()
    try:
        for gen in range(1, 200):
            g = str(gen).encode()
            write(str(tmp_path), {"x": FileProjection(g, 0o644), "y": FileProjection(g, 0o644)})
    finally:
        stop.set()
        t.join()
    assert reads[0] > 0 and torn == []
