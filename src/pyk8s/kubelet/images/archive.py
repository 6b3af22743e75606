"""Importing images from an OCI image layout (directory or tar) or a docker-archive tar (`docker save`).

Every blob is copied into the store with its digest checked; a docker-archive image gets an OCI manifest
written for it. Names come from `io.containerd.image.name`, else `org.opencontainers.image.ref.name` when
it is a whole reference (a bare tag names no repository: the image is imported untagged), or from a
docker-archive's RepoTags.
"""

from __future__ import annotations

import asyncio
import os
import tarfile
from pathlib import Path
from typing import IO, Any

import orjson

from pyk8s.kubelet.cri import Image
from pyk8s.kubelet.images import oci
from pyk8s.kubelet.images.layers import GZIP_MAGIC, ZSTD_MAGIC
from pyk8s.kubelet.images.store import ImageStore


class ArchiveError(Exception):
    pass


class _Source:
    """Files of a directory or a tar, by relative path."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._tar: tarfile.TarFile | None = None
        self._members: dict[str, tarfile.TarInfo] = {}
        if not path.is_dir():
            try:
                self._tar = tarfile.open(path, "r:*")  # noqa: SIM115 (closed by close())
            except (tarfile.TarError, OSError) as e:
                raise ArchiveError(f"{path}: not a tar archive or OCI layout directory: {e}") from e
            for m in self._tar.getmembers():
                if m.isfile() or m.issym() or m.islnk():
                    self._members[os.path.normpath(m.name).lstrip("/")] = m

    def exists(self, name: str) -> bool:
        if self._tar is None:
            return (self.path / name).is_file()
        return os.path.normpath(name) in self._members

    def open(self, name: str) -> IO[bytes]:
        name = os.path.normpath(name)
        if self._tar is None:
            target = (self.path / name).resolve()
            if not target.is_relative_to(self.path.resolve()):
                raise ArchiveError(f"{name} points outside the layout")
            return open(target, "rb")
        m = self._members.get(name)
        f = self._tar.extractfile(m) if m is not None else None
        if f is None:
            raise ArchiveError(f"{self.path}: {name} is missing")
        return f

    def read(self, name: str) -> bytes:
        with self.open(name) as f:
            return f.read()

    def close(self) -> None:
        if self._tar is not None:
            self._tar.close()


def _json(data: bytes, what: str) -> Any:
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as e:
        raise ArchiveError(f"{what} is not JSON: {e}") from e


def _names(descriptor: dict[str, Any]) -> list[str]:
    ann = descriptor.get("annotations") or {}
    if ann.get(oci.CONTAINERD_NAME):
        return [str(ann[oci.CONTAINERD_NAME])]
    ref = str(ann.get(oci.REF_NAME) or "")
    return [ref] if (":" in ref or "/" in ref) else []


def _copy_oci(store: ImageStore, src: _Source, descriptor: dict[str, Any]) -> None:
    """Copy what one top-level descriptor needs on this host: the index, its platform manifest, the
    config and the layers."""
    digest = descriptor["digest"]

    def blob(d: str) -> str:
        algo, _, hexpart = d.partition(":")
        name = f"blobs/{algo}/{hexpart}"
        if not store.has_blob(d):
            with src.open(name) as f:
                store.ingest(f, d)
        return d

    doc = store.read_json(blob(digest))
    for _ in range(4):
        if oci.media_type(doc) not in oci.INDEX_TYPES:
            break
        chosen = oci.choose_platform(doc)
        if chosen is None:
            raise ArchiveError(f"no linux/{oci.host_arch()} image in index {digest}")
        digest = blob(chosen["digest"])
        doc = store.read_json(digest)
    blob(doc["config"]["digest"])
    for layer in doc.get("layers") or []:
        blob(layer["digest"])


def _read_oci(store: ImageStore, src: _Source) -> list[tuple[str, list[str], str]]:
    index = _json(src.read("index.json"), "index.json")
    found = []
    for d in index.get("manifests") or []:
        _copy_oci(store, src, d)
        found.append((d["digest"], _names(d), d.get("mediaType", "")))
    return found


def _layer_type(store: ImageStore, digest: str) -> str:
    with open(store.blob_path(digest), "rb") as f:
        magic = f.read(4)
    if magic[:2] == GZIP_MAGIC:
        return oci.OCI_LAYER_GZIP
    return oci.OCI_LAYER_ZSTD if magic == ZSTD_MAGIC else oci.OCI_LAYER


def _read_docker(store: ImageStore, src: _Source) -> list[tuple[str, list[str], str]]:
    entries = _json(src.read("manifest.json"), "manifest.json")
    if not isinstance(entries, list):
        raise ArchiveError("manifest.json is not a list")
    found = []
    for e in entries:
        config = src.read(e["Config"])
        cfg_digest = store.write_blob(config)
        layers = []
        for name in e.get("Layers") or []:
            with src.open(name) as f:
                digest = store.ingest(f)
            layers.append({"mediaType": _layer_type(store, digest), "digest": digest,
                           "size": store.blob_path(digest).stat().st_size})
        manifest = {"schemaVersion": 2, "mediaType": oci.OCI_MANIFEST,
                    "config": {"mediaType": oci.OCI_CONFIG, "digest": cfg_digest, "size": len(config)},
                    "layers": layers}
        tags = list(e.get("RepoTags") or [])
        found.append((store.write_blob(orjson.dumps(manifest)), tags, oci.OCI_MANIFEST))
    return found


async def import_archive(store: ImageStore, path: Path) -> list[Image]:
    def read() -> list[tuple[str, list[str], str]]:
        if not path.exists():
            raise ArchiveError(f"{path}: no such file or directory")
        src = _Source(path)
        try:
            if src.exists("index.json") and src.exists("oci-layout"):
                return _read_oci(store, src)
            if src.exists("manifest.json"):
                return _read_docker(store, src)
            raise ArchiveError(f"{path}: neither an OCI layout nor a docker-archive")
        except (KeyError, TypeError) as e:
            raise ArchiveError(f"{path}: malformed archive: {e!r}") from e
        finally:
            src.close()

    found = await asyncio.to_thread(read)
    images = [await store.register(digest, names, mt) for digest, names, mt in found]
    return images
