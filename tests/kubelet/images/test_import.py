"""Importing OCI layouts and docker-archives; layers extracted once, whiteouts in overlay form."""
# ruff: noqa: ASYNC221, ASYNC240 - tests read a few small files and run mount inline

from __future__ import annotations

import json
import os
import stat
import subprocess
import tarfile
from pathlib import Path

import pytest

from pyk8s.kubelet.images import ImageStore
from pyk8s.kubelet.images.archive import ArchiveError
from pyk8s.kubelet.images.layers import LayerError
from pyk8s.kubelet.images.store import DigestMismatch

from .conftest import Layout, skopeo

BASE = [("etc", None), ("etc/os", b"base\n"), ("gone", None), ("gone/file", b"x"), ("keep", None),
        ("keep/old", b"old"), ("bin", None), ("bin/tool", b"tool")]


def two_images(path: Path) -> Layout:
    """app1 and app2 share the base layer; app2's top layer deletes a file and makes a directory opaque."""
    lay = Layout(path)
    d1, _ = lay.manifest([BASE, [("app1", b"one")]], cmd=["/app1"])
    d2, _ = lay.manifest([BASE, [("app2", b"two"), ("bin/.wh.tool", b""), ("keep/.wh..wh..opq", b""),
                                 ("keep/new", b"new")]], cmd=["/app2"])
    lay.tag(d1, "example.com/app1:v1")
    lay.tag(d2, "example.com/app2:v1")
    return lay


def layer_dirs(store: ImageStore) -> set[str]:
    return set(os.listdir(store.root / "layers" / "sha256"))


async def test_oci_layout_directory(store: ImageStore, tmp_path: Path) -> None:
    two_images(tmp_path / "layout")
    images = await store.import_archive(tmp_path / "layout")
    assert [i.repo_tags for i in images] == [("example.com/app1:v1",), ("example.com/app2:v1",)]
    app1 = await store.image_status("example.com/app1:v1")
    assert app1 is not None and app1.config.cmd == ("/app1",)
    assert app1.repo_digests[0].startswith("example.com/app1@sha256:")
    # Shared layers stored once: three distinct layers, the base one extracted a single time.
    assert len(layer_dirs(store)) == 3
    dirs1, dirs2 = store.layer_dirs(images[0].id), store.layer_dirs(images[1].id)
    assert dirs1[0] == dirs2[0] and dirs1[1] != dirs2[1]
    assert Path(dirs1[0], "etc/os").read_bytes() == b"base\n"  # lowest first
    assert Path(dirs1[1], "app1").read_bytes() == b"one"


async def test_whiteouts_in_overlay_form(store: ImageStore, tmp_path: Path) -> None:
    two_images(tmp_path / "layout")
    await store.import_archive(tmp_path / "layout")
    app2 = await store.image_status("example.com/app2:v1")
    assert app2 is not None
    top = Path(store.layer_dirs(app2.id)[1])
    st = os.lstat(top / "bin" / "tool")
    assert stat.S_ISCHR(st.st_mode) and st.st_rdev == os.makedev(0, 0)
    assert not (top / "bin" / ".wh.tool").exists()
    assert os.getxattr(top / "keep", "trusted.overlay.opaque") == b"y"
    assert not (top / "keep" / ".wh..wh..opq").exists()
    assert (top / "keep" / "new").read_bytes() == b"new"


async def test_oci_layout_tar_and_docker_archive(store: ImageStore, tmp_path: Path) -> None:
    two_images(tmp_path / "layout")
    with tarfile.open(tmp_path / "layout.tar", "w") as tf:
        tf.add(tmp_path / "layout", arcname=".")
    from_tar = await store.import_archive(tmp_path / "layout.tar")
    assert {t for i in from_tar for t in i.repo_tags} == {"example.com/app1:v1", "example.com/app2:v1"}

    # The same images through skopeo's docker-archive (uncompressed layers, docker config): same config
    # digests (image ids), same layer content, so no new layer directories.
    other = ImageStore(tmp_path / "other")
    skopeo("copy", f"oci:{tmp_path / 'layout'}:example.com/app1:v1",
           f"docker-archive:{tmp_path / 'app1.tar'}:example.com/app1:v1")
    imported = await other.import_archive(tmp_path / "app1.tar")
    assert [i.repo_tags for i in imported] == [("example.com/app1:v1",)]
    assert imported[0].id == from_tar[0].id
    assert Path(other.layer_dirs(imported[0].id)[1], "app1").read_bytes() == b"one"


async def test_docker_archive_with_several_images(store: ImageStore, tmp_path: Path) -> None:
    """`docker save a b` writes one manifest.json entry per image; build one from two skopeo archives."""
    two_images(tmp_path / "layout")
    merged, entries = tmp_path / "merged", []
    for app in ("app1", "app2"):
        skopeo("copy", f"oci:{tmp_path / 'layout'}:example.com/{app}:v1",
               f"docker-archive:{tmp_path / app}.tar:example.com/{app}:v1")
        with tarfile.open(tmp_path / f"{app}.tar") as tf:
            tf.extractall(merged, filter="tar")
        entries += json.loads((merged / "manifest.json").read_text())
    (merged / "manifest.json").write_text(json.dumps(entries))
    with tarfile.open(tmp_path / "both.tar", "w") as tf:
        tf.add(merged, arcname=".")
    images = await store.import_archive(tmp_path / "both.tar")
    assert [i.repo_tags for i in images] == [("example.com/app1:v1",), ("example.com/app2:v1",)]
    assert len(layer_dirs(store)) == 3
    assert {i.id for i in await store.list_images()} == {i.id for i in images}


async def test_multiarch_index_imports_the_host_platform(store: ImageStore, tmp_path: Path) -> None:
    lay = Layout(tmp_path / "layout")
    amd, amd_cfg = lay.manifest([[("which", b"amd64")]], arch="amd64")
    arm, _ = lay.manifest([[("which", b"arm64")]], arch="arm64")
    lay.tag(lay.multiarch([arm, amd]), "example.com/multi:v1")
    [image] = await store.import_archive(tmp_path / "layout")
    assert image.id == amd_cfg
    assert Path(store.layer_dirs(image.id)[0], "which").read_bytes() == b"amd64"


async def test_bare_tag_imports_untagged(store: ImageStore, tmp_path: Path) -> None:
    lay = Layout(tmp_path / "layout")
    d, cfg = lay.manifest([[("f", b"x")]])
    lay.tag(d, "latest")
    [image] = await store.import_archive(tmp_path / "layout")
    assert image.repo_tags == () and image.id == cfg
    assert await store.image_status(cfg) == image


async def test_corrupt_blob_is_refused(store: ImageStore, tmp_path: Path) -> None:
    lay = Layout(tmp_path / "layout")
    d, _ = lay.manifest([[("f", b"x")]])
    lay.tag(d, "example.com/bad:v1")
    manifest = json.loads((lay.path / "blobs/sha256" / str(d["digest"])[7:]).read_text())
    (lay.path / "blobs/sha256" / manifest["layers"][0]["digest"][7:]).write_bytes(b"tampered")
    with pytest.raises(DigestMismatch):
        await store.import_archive(tmp_path / "layout")
    assert await store.list_images() == []


async def test_layer_cannot_escape_through_a_symlink(store: ImageStore, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    lay = Layout(tmp_path / "layout")
    d, _ = lay.manifest([[("link", f"->{outside}"), ("link/pwned", b"x")]])
    lay.tag(d, "example.com/evil:v1")
    with pytest.raises(LayerError, match="leaves the layer"):
        await store.import_archive(tmp_path / "layout")
    assert list(outside.iterdir()) == []
    assert layer_dirs(store) == set()


async def test_not_an_archive(store: ImageStore, tmp_path: Path) -> None:
    (tmp_path / "junk").write_bytes(b"junk")
    with pytest.raises(ArchiveError):
        await store.import_archive(tmp_path / "junk")
    with pytest.raises(ArchiveError):
        await store.import_archive(tmp_path / "missing.tar")


async def test_tags_move_and_remove(store: ImageStore, tmp_path: Path) -> None:
    two_images(tmp_path / "layout")
    _, app2 = await store.import_archive(tmp_path / "layout")
    await store.remove_image("example.com/app1:v1")
    assert await store.image_status("example.com/app1:v1") is None
    assert [i.id for i in await store.list_images()] == [app2.id]
    await store.remove_image(app2.id)
    assert await store.list_images() == []
    await store.remove_image("example.com/nothing:v1")  # idempotent, as CRI RemoveImage


async def test_zstd_and_uncompressed_layers_and_hard_links(store: ImageStore, tmp_path: Path) -> None:
    lay = Layout(tmp_path / "layout")
    dz, _ = lay.manifest([[("z", b"zstd")], [("bin", None), ("bin/a", b"A"), ("bin/b", "=>bin/a")]],
                         compression="zstd")
    dp, _ = lay.manifest([[("plain", b"p")]], compression="")
    lay.tag(dz, "example.com/z:v1")
    lay.tag(dp, "example.com/plain:v1")
    z, plain = await store.import_archive(tmp_path / "layout")
    low, top = (Path(d) for d in store.layer_dirs(z.id))
    assert (low / "z").read_bytes() == b"zstd"
    assert os.stat(top / "bin/a").st_ino == os.stat(top / "bin/b").st_ino
    assert Path(store.layer_dirs(plain.id)[0], "plain").read_bytes() == b"p"


async def test_hard_link_cannot_leave_the_layer(store: ImageStore, tmp_path: Path) -> None:
    lay = Layout(tmp_path / "layout")
    d, _ = lay.manifest([[("evil", "=>../../../../etc/passwd")]])
    lay.tag(d, "example.com/evil:v1")
    with pytest.raises(LayerError, match="leaves the layer"):
        await store.import_archive(tmp_path / "layout")


async def test_layers_mount_as_overlay_lowerdirs(store: ImageStore, tmp_path: Path) -> None:
    """The kernel reads our whiteouts: a deleted file and an opaque directory's old content are gone."""
    two_images(tmp_path / "layout")
    await store.import_archive(tmp_path / "layout")
    app2 = await store.image_status("example.com/app2:v1")
    assert app2 is not None
    target = tmp_path / "rootfs"
    target.mkdir()
    lower = ":".join(reversed(store.layer_dirs(app2.id)))  # overlayfs lists the top layer first
    mounted = subprocess.run(["mount", "-t", "overlay", "overlay", "-o", f"lowerdir={lower}", str(target)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"overlayfs is not available here: {mounted.stderr.strip()}")
    try:
        assert sorted(os.listdir(target / "keep")) == ["new"]
        assert not (target / "bin" / "tool").exists()
        assert (target / "etc/os").read_bytes() == b"base\n"
        assert (target / "app2").read_bytes() == b"two"
    finally:
        subprocess.run(["umount", str(target)], check=True)


def test_stale_work_is_swept(tmp_path: Path) -> None:
    store = ImageStore(tmp_path / "images")
    old, fresh = store.root / "tmp" / "layer-old", store.root / "tmp" / "blob-fresh"
    old.mkdir()
    (old / "f").write_bytes(b"x")
    fresh.write_bytes(b"y")
    os.utime(old, (0, 0))
    ImageStore(tmp_path / "images")
    assert not old.exists() and fresh.exists()
