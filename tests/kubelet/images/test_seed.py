"""The seed image busybox:latest built from the host's busybox-static."""
# ruff: noqa: ASYNC221, ASYNC240 - tests read a few small files and run short commands inline

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

from pyk8s.kubelet.images import SEED_REF, ImageStore, ensure_seed_image
from pyk8s.kubelet.images.seed import find_busybox


async def test_seed_image_contents(store: ImageStore) -> None:
    image = await ensure_seed_image(store)
    assert image.repo_tags == (SEED_REF,)
    assert image.config.cmd == ("sh",)
    assert any(e.startswith("PATH=") and "/bin" in e for e in image.config.env)
    [layer] = [Path(d) for d in store.layer_dirs(image.id)]
    busybox = find_busybox()
    assert (layer / "bin/busybox").read_bytes() == Path(busybox).read_bytes()
    assert os.stat(layer / "bin/busybox").st_mode & 0o111
    applets = subprocess.run([busybox, "--list"], capture_output=True, text=True, check=True).stdout.split()
    for applet in set(applets) - {"busybox"}:
        assert os.readlink(layer / "bin" / applet) == "busybox", applet
    assert {"sh", "ls", "httpd", "wget"} <= set(os.listdir(layer / "bin"))
    passwd = (layer / "etc/passwd").read_text()
    assert passwd.startswith("root:x:0:0:") and "\nnobody:x:65534:65534:" in passwd
    assert "nobody:x:65534:" in (layer / "etc/group").read_text()
    assert stat.S_IMODE(os.stat(layer / "tmp").st_mode) == 0o1777
    for d in ("root", "var", "home"):
        assert (layer / d).is_dir()
    # The image runs: the extracted busybox answers as a shell.
    out = subprocess.run([str(layer / "bin/sh"), "-c", "echo hi"], capture_output=True, text=True)
    assert out.stdout == "hi\n"


async def test_seed_answers_to_every_spelling_and_is_built_once(store: ImageStore) -> None:
    image = await ensure_seed_image(store)
    for ref in ("busybox", "busybox:latest", "library/busybox", "docker.io/library/busybox:latest", image.id):
        assert await store.image_status(ref) == image, ref
    before = os.stat(store.root / "index.json").st_mtime_ns
    assert await ensure_seed_image(store) == image
    assert os.stat(store.root / "index.json").st_mtime_ns == before  # cached: nothing rewritten


async def test_seed_build_is_deterministic(store: ImageStore, tmp_path: Path) -> None:
    other = ImageStore(tmp_path / "other")
    assert (await ensure_seed_image(store)).id == (await ensure_seed_image(other)).id
