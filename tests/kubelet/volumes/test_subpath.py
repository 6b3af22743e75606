"""subPath: bind mounts of a path inside a volume, and CVE-2017-1002101 — a symlink planted in a volume
must never expose the host."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pyk8s.kubelet.volumes import VolumeError, mounts
from pyk8s.kubelet.volumes.subpath import safe_open
from tests.kubelet.volumes.conftest import CONFIGMAPS, Env, exists, is_dir, make_pod, read, write


def _container(*volume_mounts: dict[str, object],
               env: list[dict[str, object]] | None = None) -> dict[str, object]:
    return {"name": "c", "image": "busybox", "volumeMounts": list(volume_mounts), "env": env or []}


async def test_symlink_to_host_root_is_refused(env: Env) -> None:
    """What the CVE did: a first container makes `escape -> /` in a shared emptyDir, a second mounts
    subPath `escape`. The kubelet must refuse instead of bind-mounting the host's root."""
    c = _container({"name": "shared", "mountPath": "/x", "subPath": "escape"})
    c2 = _container({"name": "shared", "mountPath": "/y", "subPath": "nested/etc/passwd"})
    pod = await make_pod(env, "cve", [{"name": "shared", "emptyDir": {}}], containers=[c])
    vols = await env.volumes.setup(pod)
    shared = Path(vols.host_path("shared"))
    os.symlink("/", shared / "escape")
    (shared / "nested").mkdir()
    os.symlink("/", shared / "nested" / "etc")
    os.symlink("/", shared / "nested" / "rel-up")
    for container in (c, c2, _container({"name": "shared", "mountPath": "/z", "subPath": "nested/rel-up"})):
        with pytest.raises(VolumeError) as e:
            vols.mounts_for(container)
        assert e.value.reason == "CreateContainerConfigError"
        assert e.value.message == 'failed to prepare subPath for volumeMount "shared" of container "c"'
    assert mounts.mounts_under(str(env.root)) == []  # nothing was mounted, the host's / least of all


def test_safe_open_refuses_a_symlink_swapped_in_after_the_check(tmp_path: Path) -> None:
    """The check-then-use race: whatever the resolved path looked like, opening it component by component
    with O_NOFOLLOW fails on a symlink, at the end or in the middle."""
    (tmp_path / "real").mkdir()
    os.symlink("/", tmp_path / "link")
    fd = safe_open(str(tmp_path), "real")
    os.close(fd)
    with pytest.raises(ValueError, match="is a symlink"):
        safe_open(str(tmp_path), "link")
    with pytest.raises(ValueError, match="is a symlink"):
        safe_open(str(tmp_path), "link/etc")
    with pytest.raises(ValueError, match=r"without '\.\.'"):
        safe_open(str(tmp_path), "real/../../etc")


async def test_subpaths_inside_the_volume_are_bind_mounted(env: Env) -> None:
    c = _container(
        {"name": "shared", "mountPath": "/f", "subPath": "data/file.txt", "readOnly": True},
        {"name": "shared", "mountPath": "/new", "subPath": "made/here"},
        {"name": "shared", "mountPath": "/alias", "subPath": "alias"},
        {"name": "shared", "mountPath": "/whole"},
    )
    pod = await make_pod(env, "sub", [{"name": "shared", "emptyDir": {}}], containers=[c])
    vols = await env.volumes.setup(pod)
    shared = Path(vols.host_path("shared"))
    (shared / "data").mkdir()
    (shared / "data" / "file.txt").write_text("hello")
    os.symlink("data", shared / "alias")  # a symlink that stays inside the volume is followed
    f, new, alias, whole = vols.mounts_for(c)
    assert (f.container_path, f.read_only) == ("/f", True)
    assert mounts.is_mount_point(f.host_path) and read(f.host_path) == "hello"
    assert f.host_path.startswith(env.volumes.pod_dir(pod["metadata"]["uid"]) + "/volume-subpaths/shared/c/")
    # a missing subPath is created as a directory inside the volume, with the volume's mode
    assert is_dir(shared / "made" / "here") and mounts.is_mount_point(new.host_path)
    assert (shared / "made" / "here").stat().st_mode & 0o777 == 0o777
    write(Path(new.host_path, "written"), "x")
    assert read(shared / "made" / "here" / "written") == "x"
    assert read(alias.host_path, "file.txt") == "hello"
    assert whole.host_path == str(shared)

    before = len(mounts.mounts_under(str(env.root)))
    vols.mounts_for(c)  # a restarted container reuses its bind mounts
    assert len(mounts.mounts_under(str(env.root))) == before


async def test_configmap_key_as_subpath_and_subpath_expr(env: Env) -> None:
    await env.client.create(CONFIGMAPS, {"metadata": {"name": "app", "namespace": "default"},
                                         "data": {"app.conf": "port=80"}})
    c = _container(
        {"name": "cfg", "mountPath": "/etc/app.conf", "subPath": "app.conf"},
        {"name": "logs", "mountPath": "/logs", "subPathExpr": "$(POD_NAME)/$(KIND)"},
        env=[{"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
             {"name": "KIND", "value": "app"}],
    )
    pod = await make_pod(env, "expr", [{"name": "cfg", "configMap": {"name": "app"}},
                                       {"name": "logs", "emptyDir": {}}], containers=[c])
    vols = await env.volumes.setup(pod)
    cfg, logs = vols.mounts_for(c)
    assert read(cfg.host_path) == "port=80" and cfg.read_only
    assert (Path(vols.host_path("logs")) / "expr" / "app").is_dir() and mounts.is_mount_point(logs.host_path)


async def test_teardown_unmounts_subpaths_and_never_deletes_through_them(env: Env, tmp_path: Path) -> None:
    host = tmp_path / "host-data"
    host.mkdir()
    (host / "keep").mkdir()
    (host / "keep" / "precious").write_text("mine")
    c = _container({"name": "h", "mountPath": "/k", "subPath": "keep"})
    pod = await make_pod(env, "td", [{"name": "h", "hostPath": {"path": str(host)}}], containers=[c])
    vols = await env.volumes.setup(pod)
    [m] = vols.mounts_for(c)
    assert read(m.host_path, "precious") == "mine"
    await env.volumes.teardown(pod["metadata"]["uid"])
    assert mounts.mounts_under(str(env.root)) == []
    assert read(host / "keep" / "precious") == "mine"
    assert not exists(env.volumes.pod_dir(pod["metadata"]["uid"]))
