"""`pyk8s images import | list | pull | seed`, run as a user runs them; two processes sharing one store."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from .conftest import Registry, skopeo
from .test_import import two_images


def pyk8s(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pyk8s.cli.main", *args], capture_output=True, text=True,
                          timeout=60)


def test_seed_import_list(tmp_path: Path) -> None:
    data = str(tmp_path / "data")
    seeded = pyk8s("images", "seed", "--data-dir", data)
    assert seeded.returncode == 0, seeded.stderr
    assert "docker.io/library/busybox:latest sha256:" in seeded.stdout
    two_images(tmp_path / "layout")
    skopeo("copy", f"oci:{tmp_path / 'layout'}:example.com/app1:v1",
           f"docker-archive:{tmp_path / 'app1.tar'}:example.com/app1:v1")
    imported = pyk8s("images", "import", str(tmp_path / "app1.tar"), "--data-dir", data)
    assert imported.returncode == 0, imported.stderr
    assert "imported example.com/app1:v1 sha256:" in imported.stdout
    listed = pyk8s("images", "list", "--data-dir", data)
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert lines[0].split() == ["IMAGE", "TAG", "IMAGE", "ID", "SIZE"]
    rows = {tuple(line.split()[:2]) for line in lines[1:]}
    assert rows == {("docker.io/library/busybox", "latest"), ("example.com/app1", "v1")}
    assert (tmp_path / "data" / "agent" / "images" / "index.json").exists()


def test_errors_are_one_line(tmp_path: Path) -> None:
    bad = pyk8s("images", "import", str(tmp_path / "missing.tar"), "--data-dir", str(tmp_path))
    assert bad.returncode == 1 and "no such file" in bad.stderr and "Traceback" not in bad.stderr
    refused = pyk8s("images", "pull", "127.0.0.1:1/none:v1", "--data-dir", str(tmp_path))
    assert refused.returncode == 1 and "ErrImagePull" in refused.stderr and "Traceback" not in refused.stderr


def test_pull_command(tmp_path: Path, registry: Registry) -> None:
    two_images(tmp_path / "layout")
    registry.push(f"oci:{tmp_path / 'layout'}:example.com/app2:v1", "team/app2:v1")
    pulled = pyk8s("images", "pull", f"{registry.host}/team/app2:v1", "--data-dir", str(tmp_path / "d"))
    assert pulled.returncode == 0, pulled.stderr
    assert "sha256:" in pulled.stdout


def test_two_processes_share_one_store(tmp_path: Path) -> None:
    """Two imports of the same images at once, in two processes: both succeed, layers stored once."""
    two_images(tmp_path / "layout")
    data = str(tmp_path / "data")
    procs = [subprocess.Popen([sys.executable, "-m", "pyk8s.cli.main", "images", "import",
                               str(tmp_path / "layout"), "--data-dir", data],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    for p in procs:
        out, err = p.communicate(timeout=60)
        assert p.returncode == 0, err
        assert out.count("imported") == 2
    layers = os.listdir(tmp_path / "data" / "agent" / "images" / "layers" / "sha256")
    assert len(layers) == 3
    assert os.listdir(tmp_path / "data" / "agent" / "images" / "tmp") == []
    listed = pyk8s("images", "list", "--data-dir", data)
    assert len(listed.stdout.splitlines()) == 3
