"""Fixtures: a busybox rootfs layer, a test double for the image store (runc itself is real), and a
runtime on a temporary state dir whose sandboxes, containers, mounts and cgroups are all removed after
each test, even a failing one."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import shutil
import subprocess
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest

from pyk8s.kubelet import cri
from pyk8s.kubelet.runtime import RuncRuntime

BUSYBOX = "/bin/busybox"
IMAGE_ID = "sha256:" + "b" * 64

needs_root = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("runc") is None or not os.path.exists(BUSYBOX),
    reason="needs root, runc and busybox-static")


def _build_layer(root: Path) -> Path:
    layer = root / "layer"
    (layer / "bin").mkdir(parents=True)
    for d in ("etc", "tmp", "proc", "sys", "dev", "root", "www"):
        (layer / d).mkdir()
    shutil.copy(BUSYBOX, layer / "bin" / "busybox")
    applets = subprocess.run([BUSYBOX, "--list"], capture_output=True, text=True, check=True).stdout.split()
    for applet in applets:
        if applet != "busybox":
            os.symlink("busybox", layer / "bin" / applet)
    (layer / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534::/:/bin/sh\n")
    (layer / "etc" / "group").write_text("root:x:0:\nnogroup:x:65534:\n")
    (layer / "www" / "index.html").write_text("hello from the pod\n")
    return layer


class FakeImages:
    """The image store's test double: one image, the busybox layer."""

    def __init__(self, layer: Path) -> None:
        self.layer = layer
        self.image = cri.Image(id=IMAGE_ID, repo_tags=("docker.io/library/busybox:latest",),
                               repo_digests=(), size=0, config=cri.ImageConfig(cmd=("sh",)))

    async def pull_image(self, ref: str, auth: list[cri.RegistryAuth] | None = None) -> cri.Image:
        return self.image

    async def image_status(self, ref: str) -> cri.Image | None:
        return self.image

    async def list_images(self) -> list[cri.Image]:
        return [self.image]

    async def remove_image(self, ref: str) -> None:
        pass

    def layer_dirs(self, image_id: str) -> list[str]:
        return [str(self.layer)]


@pytest.fixture(scope="session")
def busybox_layer(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _build_layer(tmp_path_factory.mktemp("busybox"))


def remove_cgroups(parent: str) -> None:
    """`parent`'s directory under every controller, with what is below it; one still holding a process
    (a failed test's) stays."""
    for ctrl in os.listdir("/sys/fs/cgroup"):
        d = Path("/sys/fs/cgroup") / ctrl / parent
        if d.is_dir():
            for sub in [*sorted(d.rglob("*"), reverse=True), d]:
                if sub.is_dir():
                    with contextlib.suppress(OSError):
                        sub.rmdir()


@pytest.fixture
def cgroup_parent() -> Iterator[str]:
    parent = f"pyk8s-test-{secrets.token_hex(4)}"
    yield parent
    remove_cgroups(parent)  # after the runtime fixtures' teardown, which empties it


@pytest.fixture
async def runtime(tmp_path: Path, busybox_layer: Path, cgroup_parent: str) -> AsyncIterator[RuncRuntime]:
    rt = RuncRuntime(str(tmp_path / "runtime"), FakeImages(busybox_layer), None)
    yield rt
    # Clean up even after a failure, with a fresh object (as a restarted kubelet would).
    rt2 = RuncRuntime(str(tmp_path / "runtime"), FakeImages(busybox_layer), None)
    for s in await rt2.list_pod_sandboxes():
        await rt2.remove_pod_sandbox(s.id)
    for c in await rt2.list_containers():
        await rt2.remove_container(c.id)
    await rt.close()
    await rt2.close()


def sandbox_config(cgroup_parent: str, tmp_path: Path, **kw: object) -> cri.SandboxConfig:
    uid = secrets.token_hex(8)
    cfg = cri.SandboxConfig(pod_uid=uid, namespace="default", name="pod-" + uid[:6], hostname="mypod",
                            cgroup_parent=f"{cgroup_parent}/pod{uid}", log_directory=str(tmp_path / "logs"))
    for k, v in kw.items():
        setattr(cfg, k, v)
    return cfg


def container_config(args: list[str], **kw: object) -> cri.ContainerConfig:
    cfg = cri.ContainerConfig(name="c", image=IMAGE_ID, args=args, log_path="c/0.log")
    for k, v in kw.items():
        setattr(cfg, k, v)
    return cfg


async def wait_for(check: Callable[[], object], timeout: float = 10.0) -> object:  # noqa: ASYNC109
    """Poll `check` until it returns something truthy (a deadline, never a bare sleep)."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        await asyncio.sleep(0.02)


def read_text(path: str | Path) -> str:
    return Path(path).read_text()


def mountinfo() -> str:
    return Path("/proc/self/mountinfo").read_text()


def cmdlines() -> list[bytes]:
    """Every process's command line (for leak checks)."""
    out = []
    for p in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            out.append(p.read_bytes())
        except OSError:
            pass
    return out
