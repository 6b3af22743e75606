"""The seed image `busybox:latest`, built from the host's static busybox so pods run with no registry.

One uncompressed layer: /bin/busybox, a symlink per applet (`busybox --list`), /etc/passwd and /etc/group
with root and nobody, /tmp (1777), /root, /home, /var. The tar is built deterministically (fixed owners
and times, sorted names), so the same busybox always gives the same image id.
"""

from __future__ import annotations

import asyncio
import io
import os
import shutil
import subprocess
import tarfile

import orjson

from pyk8s.kubelet.cri import Image
from pyk8s.kubelet.images import oci
from pyk8s.kubelet.images.store import ImageStore

SEED_REF = "docker.io/library/busybox:latest"
PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
_PASSWD = b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/home:/bin/false\n"
_GROUP = b"root:x:0:\nnobody:x:65534:\n"
_DIRS = {"bin": 0o755, "dev": 0o755, "etc": 0o755, "home": 0o755, "proc": 0o755, "root": 0o700,
         "sys": 0o755, "tmp": 0o1777, "usr": 0o755, "usr/bin": 0o755, "usr/sbin": 0o755, "sbin": 0o755,
         "var": 0o755, "var/spool": 0o755, "var/www": 0o755}


class SeedError(Exception):
    pass


def find_busybox() -> str:
    path = shutil.which("busybox") or "/bin/busybox"
    if not os.path.exists(path):
        raise SeedError("busybox is not installed (Debian: apt-get install busybox-static)")
    return path


def build_layer(busybox: str) -> bytes:
    """The layer tar: deterministic for one busybox binary."""
    applets = subprocess.run([busybox, "--list"], check=True, capture_output=True, text=True).stdout.split()
    mtime = int(os.stat(busybox).st_mtime)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:

        def add(name: str, kind: bytes, mode: int, data: bytes = b"", link: str = "") -> None:
            ti = tarfile.TarInfo(name)
            ti.type, ti.mode, ti.mtime, ti.linkname = kind, mode, mtime, link
            ti.uname = ti.gname = "root"
            ti.size = len(data)
            tf.addfile(ti, io.BytesIO(data) if data else None)

        for d in sorted(_DIRS):
            add(d, tarfile.DIRTYPE, _DIRS[d])
        with open(busybox, "rb") as f:
            add("bin/busybox", tarfile.REGTYPE, 0o755, f.read())
        for applet in sorted(set(applets) - {"busybox"}):
            add(f"bin/{applet}", tarfile.SYMTYPE, 0o777, link="busybox")
        add("etc/group", tarfile.REGTYPE, 0o644, _GROUP)
        add("etc/passwd", tarfile.REGTYPE, 0o644, _PASSWD)
    return buf.getvalue()


def _write_image(store: ImageStore, layer: bytes) -> str:
    """Write the layer, config and manifest blobs; return the manifest digest."""
    diff_id = store.write_blob(layer)
    config = orjson.dumps({
        "architecture": oci.host_arch(), "os": "linux",
        "config": {"Env": [PATH_ENV], "Cmd": ["sh"]},
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [{"created_by": "pyk8s: busybox from the host's busybox-static"}],
    })
    cfg_digest = store.write_blob(config)
    manifest = orjson.dumps({
        "schemaVersion": 2, "mediaType": oci.OCI_MANIFEST,
        "config": {"mediaType": oci.OCI_CONFIG, "digest": cfg_digest, "size": len(config)},
        "layers": [{"mediaType": oci.OCI_LAYER, "digest": diff_id, "size": len(layer)}],
    })
    return store.write_blob(manifest)


async def build_seed_image(store: ImageStore) -> Image:
    """Build the seed image from the host's busybox and tag it busybox:latest (replacing that tag)."""
    def build() -> str:
        return _write_image(store, build_layer(find_busybox()))

    digest = await asyncio.to_thread(build)
    return await store.register(digest, [SEED_REF], oci.OCI_MANIFEST)


async def ensure_seed_image(store: ImageStore) -> Image:
    """busybox:latest from the store if it is there (whatever its origin), else built now."""
    image = await store.image_status(SEED_REF)
    if image is not None:
        return image
    return await build_seed_image(store)
