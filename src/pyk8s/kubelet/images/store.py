"""The node's content-addressed image store, laid out as an OCI image layout.

    <root>/oci-layout, index.json          tags: descriptors named by `org.opencontainers.image.ref.name`
    <root>/blobs/sha256/<hex>              manifests, indexes, configs, layer blobs; each stored once
    <root>/layers/sha256/<diff_id hex>/    each layer extracted once: an overlayfs lowerdir
    <root>/tmp/                            work in progress, renamed into place when verified

Every write lands by an atomic rename, so readers never see half a blob or half a layer and two
processes (the kubelet and `pyk8s images import`) can share the store; index.json is rewritten under an
flock. Within one process, concurrent work on one blob, layer or pull is shared through `once`.
Removing an image drops its tags; blobs and layers stay (a running container may use them).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import os
import shutil
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import IO, Any, TypeVar

import orjson

from pyk8s.kubelet.cri import Image, ImageConfig, ImagePullError, RegistryAuth
from pyk8s.kubelet.images import oci, reference
from pyk8s.kubelet.images.layers import LayerError, extract_layer

T = TypeVar("T")


class ImageNotFound(LookupError):
    pass


class DigestMismatch(ValueError):
    pass


class BlobWriter:
    """Streams one blob into the store, hashing as it goes; `commit` verifies and renames it into place."""

    def __init__(self, store: ImageStore, expected: str | None) -> None:
        self._store = store
        self._expected = expected
        fd, self._tmp = tempfile.mkstemp(dir=store.root / "tmp", prefix="blob-")
        self._file = os.fdopen(fd, "wb")
        self._hash = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> None:
        self._hash.update(data)
        self._file.write(data)
        self.size += len(data)

    def commit(self) -> str:
        self._file.close()
        digest = "sha256:" + self._hash.hexdigest()
        if self._expected and digest != self._expected:
            os.unlink(self._tmp)
            raise DigestMismatch(f"content digest {digest} does not match {self._expected}")
        final = self._store.blob_path(digest)
        os.chmod(self._tmp, 0o644)
        os.replace(self._tmp, final)
        return digest

    def abort(self) -> None:
        self._file.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._tmp)


class ImageStore:
    """Implements `pyk8s.kubelet.cri.ImageService` over a local OCI layout; see the module docstring."""

    def __init__(self, root: str | os.PathLike[str], registries_file: str | os.PathLike[str] | None = None):
        self.root = Path(root)
        self.registries_file = Path(registries_file) if registries_file else None
        for sub in ("blobs/sha256", "layers/sha256", "tmp"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        layout = self.root / "oci-layout"
        if not layout.exists():
            self._atomic_write(layout, b'{"imageLayoutVersion":"1.0.0"}')
        self._sweep_tmp()
        self._inflight: dict[str, asyncio.Future[Any]] = {}
        self._index_cache: tuple[tuple[int, int, int], list[dict[str, Any]]] | None = None
        self._json_cache: dict[str, dict[str, Any]] = {}
        # The images of one index version (its entries list): every pod start looks its image up.
        self._images_cache: tuple[list[dict[str, Any]], list[Image]] | None = None

    def _sweep_tmp(self, age: float = 3600.0) -> None:
        """Remove work a crashed process left behind; anything that young may still be in use."""
        cutoff = time.time() - age
        with os.scandir(self.root / "tmp") as entries:
            for e in entries:
                with contextlib.suppress(OSError):
                    if e.stat(follow_symlinks=False).st_mtime < cutoff:
                        if e.is_dir(follow_symlinks=False):
                            shutil.rmtree(e.path, ignore_errors=True)
                        else:
                            os.unlink(e.path)

    @classmethod
    def for_data_dir(cls, data_dir: str | os.PathLike[str]) -> ImageStore:
        """The store of a node whose data dir is `data_dir` (`<data-dir>/agent/images`)."""
        agent = Path(data_dir) / "agent"
        return cls(agent / "images", agent / "registries.yaml")

    # -- blobs -------------------------------------------------------------------------------------------

    def blob_path(self, digest: str) -> Path:
        algo, _, hexpart = digest.partition(":")
        if algo != "sha256" or len(hexpart) != 64 or not all(c in "0123456789abcdef" for c in hexpart):
            raise DigestMismatch(f"unsupported digest {digest!r}")
        return self.root / "blobs" / "sha256" / hexpart

    def has_blob(self, digest: str) -> bool:
        return self.blob_path(digest).exists()

    def blob_writer(self, expected: str | None = None) -> BlobWriter:
        return BlobWriter(self, expected)

    def ingest(self, src: IO[bytes], expected: str | None = None) -> str:
        """Copy a stream into the store (blocking); return its digest, checked against `expected`."""
        if expected and self.has_blob(expected):
            return expected
        w = self.blob_writer(expected)
        try:
            while chunk := src.read(1 << 20):
                w.write(chunk)
            return w.commit()
        except BaseException:
            w.abort()
            raise

    def write_blob(self, data: bytes, expected: str | None = None) -> str:
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        if expected and digest != expected:
            raise DigestMismatch(f"content digest {digest} does not match {expected}")
        if not self.has_blob(digest):
            self._atomic_write(self.blob_path(digest), data)
        return digest

    def read_json(self, digest: str) -> dict[str, Any]:
        """A manifest, index or config blob; immutable, so cached."""
        doc = self._json_cache.get(digest)
        if doc is None:
            try:
                doc = orjson.loads(self.blob_path(digest).read_bytes())
            except FileNotFoundError:
                raise ImageNotFound(f"blob {digest} is not in the store") from None
            if not isinstance(doc, dict):
                raise ImageNotFound(f"blob {digest} is not a JSON object")
            self._json_cache[digest] = doc
        return doc

    # -- layers ------------------------------------------------------------------------------------------

    def layer_path(self, diff_id: str) -> Path:
        return self.root / "layers" / "sha256" / diff_id.partition(":")[2]

    def _extract(self, blob_digest: str, diff_id: str) -> None:
        final = self.layer_path(diff_id)
        if final.exists():
            return
        work = tempfile.mkdtemp(dir=self.root / "tmp", prefix="layer-")
        try:
            extract_layer(str(self.blob_path(blob_digest)), work, diff_id)
            os.chmod(work, 0o755)
            try:
                os.rename(work, final)
            except OSError:
                if not final.exists():  # another process finished first: theirs is as good as ours
                    raise
        finally:
            if os.path.exists(work):
                shutil.rmtree(work, ignore_errors=True)

    async def ensure_layer(self, blob_digest: str, diff_id: str) -> None:
        if self.layer_path(diff_id).exists():
            return
        await self.once(f"layer:{diff_id}", lambda: asyncio.to_thread(self._extract, blob_digest, diff_id))

    # -- sharing work within the process -----------------------------------------------------------------

    async def once(self, key: str, work: Callable[[], Awaitable[T]]) -> T:
        """Run `work` once for every caller that asks for `key` while it runs; all get its result."""
        fut = self._inflight.get(key)
        if fut is not None:
            result: T = await asyncio.shield(fut)
            return result
        fut = asyncio.get_running_loop().create_future()
        self._inflight[key] = fut
        try:
            value = await work()
        except BaseException as e:
            fut.set_exception(e)
            fut.exception()  # retrieved: no "never retrieved" warning when nobody else waited
            raise
        else:
            fut.set_result(value)
            return value
        finally:
            del self._inflight[key]

    # -- the index (tags) --------------------------------------------------------------------------------

    def _atomic_write(self, path: Path, data: bytes) -> None:
        fd, tmp = tempfile.mkstemp(dir=self.root / "tmp", prefix="w-")
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        with open(self.root / "lock", "a+b") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)

    def _entries(self) -> list[dict[str, Any]]:
        path = os.path.join(self.root, "index.json")  # os.path: pathlib's joins cost more than the stat
        try:
            st = os.stat(path)
        except FileNotFoundError:
            return []
        version = (st.st_ino, st.st_mtime_ns, st.st_size)  # every write is a new file: a new inode
        if self._index_cache and self._index_cache[0] == version:
            return self._index_cache[1]
        with open(path, "rb") as f:
            doc = orjson.loads(f.read())
        entries = [d for d in doc.get("manifests") or [] if isinstance(d, dict)]
        self._index_cache = (version, entries)
        return entries

    def _update_index(self, change: Callable[[list[dict[str, Any]]], list[dict[str, Any]]]) -> None:
        with self._locked():
            self._index_cache = None
            entries = change(list(self._entries()))
            doc = {"schemaVersion": 2, "mediaType": oci.OCI_INDEX, "manifests": entries}
            self._atomic_write(self.root / "index.json", orjson.dumps(doc, option=orjson.OPT_INDENT_2))
            self._index_cache = None

    def _tag(self, descriptor: dict[str, Any], names: list[str]) -> None:
        def change(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
            keys = ("mediaType", "digest", "size")
            base: dict[str, Any] = {k: descriptor[k] for k in keys if k in descriptor}
            if names:
                entries = [e for e in entries if _name(e) not in names]
                entries += [{**base, "annotations": {oci.REF_NAME: n}} for n in names]
            elif not any(e["digest"] == base["digest"] for e in entries):
                entries.append(base)  # untagged: listed by its id until tagged or removed
            return entries

        self._update_index(change)

    # -- resolving images --------------------------------------------------------------------------------

    def resolve(self, digest: str) -> tuple[str, dict[str, Any]]:
        """The platform manifest a top-level digest stands for: (manifest digest, manifest)."""
        doc = self.read_json(digest)
        for _ in range(4):  # an index may name an index; stop nesting somewhere
            if oci.media_type(doc) not in oci.INDEX_TYPES:
                return digest, doc
            chosen = oci.choose_platform(doc)
            if chosen is None:
                raise ImageNotFound(f"no linux/{oci.host_arch()} image in index {digest}")
            digest = chosen["digest"]
            doc = self.read_json(digest)
        raise ImageNotFound(f"index {digest} nests too deep")

    def config_of(self, top_digest: str) -> tuple[str, dict[str, Any], dict[str, Any]]:
        """(config digest, config, manifest) for a top-level digest."""
        _, manifest = self.resolve(top_digest)
        cfg_digest = manifest["config"]["digest"]
        return cfg_digest, self.read_json(cfg_digest), manifest

    async def register(self, top_digest: str, names: list[str], media_type: str = "") -> Image:
        """Make an image whose blobs are all present usable: extract its layers, then tag it."""
        doc = self.read_json(top_digest)
        cfg_digest, config, manifest = self.config_of(top_digest)
        blobs = [layer["digest"] for layer in manifest.get("layers") or []]
        diff_ids = list((config.get("rootfs") or {}).get("diff_ids") or [])
        if len(blobs) != len(diff_ids):
            raise LayerError(f"image {top_digest} has {len(blobs)} layers but {len(diff_ids)} diff_ids")
        await asyncio.gather(*(self.ensure_layer(b, d) for b, d in zip(blobs, diff_ids, strict=True)))
        descriptor = {"mediaType": media_type or oci.media_type(doc, oci.OCI_MANIFEST), "digest": top_digest,
                      "size": self.blob_path(top_digest).stat().st_size}
        normalized = [reference.normalize(n) for n in names]
        await asyncio.to_thread(self._tag, descriptor, normalized)
        image = self._find(lambda i: i.id == cfg_digest)
        assert image is not None
        return image

    def _images(self) -> list[Image]:
        entries = self._entries()
        if self._images_cache is not None and self._images_cache[0] is entries:
            return list(self._images_cache[1])
        images = self._build_images(entries)
        self._images_cache = (entries, images)
        return list(images)

    def _build_images(self, entries: list[dict[str, Any]]) -> list[Image]:
        by_config: dict[str, tuple[list[str], list[str], int, ImageConfig]] = {}
        for e in entries:
            try:
                cfg_digest, config, manifest = self.config_of(e["digest"])
            except (ImageNotFound, KeyError, TypeError):
                continue
            if cfg_digest not in by_config:
                size = int(manifest["config"].get("size", 0)) + sum(
                    int(layer.get("size", 0)) for layer in manifest.get("layers") or [])
                by_config[cfg_digest] = ([], [], size, _image_config(config))
            tags, digests, _, _ = by_config[cfg_digest]
            name = _name(e)
            if name:
                ref = reference.parse(name)
                if ref.tag:  # a pull by digest alone tags nothing: crictl shows <none>
                    tags.append(name)
                d = f"{ref.name}@{e['digest']}"
                if d not in digests:
                    digests.append(d)
        return [Image(id=k, repo_tags=tuple(v[0]), repo_digests=tuple(v[1]), size=v[2], config=v[3])
                for k, v in by_config.items()]

    def _find(self, match: Callable[[Image], bool]) -> Image | None:
        return next((i for i in self._images() if match(i)), None)

    # -- ImageService ------------------------------------------------------------------------------------

    async def image_status(self, ref: str) -> Image | None:
        if ref.startswith("sha256:"):
            return self._find(lambda i: i.id == ref)
        try:
            r = reference.parse(ref)
        except reference.InvalidReference:
            return None
        if r.digest:
            wanted = f"{r.name}@{r.digest}"
            return self._find(lambda i: wanted in i.repo_digests)
        name = str(r)
        return self._find(lambda i: name in i.repo_tags)

    async def list_images(self) -> list[Image]:
        return self._images()

    async def remove_image(self, ref: str) -> None:
        """By id: every tag of the image; by name@digest: that repository's tags of it; by tag: that tag."""
        image = await self.image_status(ref)
        if image is None:
            return
        if ref.startswith("sha256:"):
            def doomed(e: dict[str, Any]) -> bool:
                return self._config_digest(e) == image.id
        elif "@" in ref:
            r = reference.parse(ref)

            def doomed(e: dict[str, Any]) -> bool:
                return e["digest"] == r.digest and (not _name(e) or reference.parse(_name(e)).name == r.name)
        else:
            name = reference.normalize(ref)

            def doomed(e: dict[str, Any]) -> bool:
                return _name(e) == name

        await asyncio.to_thread(self._update_index, lambda entries: [e for e in entries if not doomed(e)])

    def _config_digest(self, entry: dict[str, Any]) -> str:
        try:
            return self.config_of(entry["digest"])[0]
        except (ImageNotFound, KeyError):
            return ""

    def layer_dirs(self, image_id: str) -> list[str]:
        config = self.read_json(image_id)
        dirs = [str(self.layer_path(d)) for d in (config.get("rootfs") or {}).get("diff_ids") or []]
        missing = [d for d in dirs if not os.path.isdir(d)]
        if missing:
            raise ImageNotFound(f"image {image_id} has layers that are not extracted: {missing}")
        return dirs

    async def pull_image(self, ref: str, auth: list[RegistryAuth] | None = None) -> Image:
        from pyk8s.kubelet.images.pull import pull

        try:
            name = reference.normalize(ref)
        except reference.InvalidReference as e:
            raise ImagePullError(str(e), reason="InvalidImageName") from None
        return await self.once(f"pull:{name}", lambda: pull(self, name, auth or []))

    async def import_archive(self, path: str | os.PathLike[str]) -> list[Image]:
        """Import every image of an OCI layout (directory or tar) or a docker-archive tar."""
        from pyk8s.kubelet.images.archive import import_archive

        return await import_archive(self, Path(path))


def _name(entry: dict[str, Any]) -> str:
    return str((entry.get("annotations") or {}).get(oci.REF_NAME, ""))


def _image_config(config: dict[str, Any]) -> ImageConfig:
    c = config.get("config") or {}
    return ImageConfig(
        entrypoint=tuple(c.get("Entrypoint") or ()),
        cmd=tuple(c.get("Cmd") or ()),
        env=tuple(c.get("Env") or ()),
        working_dir=c.get("WorkingDir") or "",
        user=c.get("User") or "",
    )
