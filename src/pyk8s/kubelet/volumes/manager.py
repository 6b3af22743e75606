"""The kubelet's volume manager: a pod's volumes prepared on the node before its containers start, kept
fresh while it runs, and removed with it.

Layout under `root_dir`, as the kubelet's (so a restarted kubelet finds everything by walking it):

    pods/<uid>/volumes/kubernetes.io~<plugin>/<volume>          emptyDir, configMap, secret, …
    pods/<uid>/volume-subpaths/<volume>/<container>/<index>     subPath bind mounts

hostPath and persistentVolumeClaim (hostPath or local PersistentVolumes) use the host's path itself.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import shutil
import stat
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pyk8s.api import catalog
from pyk8s.api.errors import StatusError
from pyk8s.api.quantity import parse_quantity
from pyk8s.client.client import Client
from pyk8s.kubelet import cri
from pyk8s.kubelet.volumes import atomic_writer, hostpath, mounts, subpath
from pyk8s.kubelet.volumes.errors import VolumeError
from pyk8s.kubelet.volumes.payloads import (
    DEFAULT_MODE,
    Payload,
    SourceError,
    Token,
    configmap_payload,
    downward_payload,
    field_value,
    projected_payload,
    request_token,
    secret_payload,
)

__all__ = ["PodVolumes", "VolumeManager"]

log = logging.getLogger(__name__)

Obj = dict[str, Any]

_PLUGIN_DIRS = {
    "emptyDir": "kubernetes.io~empty-dir",
    "configMap": "kubernetes.io~configmap",
    "secret": "kubernetes.io~secret",
    "downwardAPI": "kubernetes.io~downward-api",
    "projected": "kubernetes.io~projected",
}
# Volumes whose content the kubelet writes from the API; Kubernetes mounts them read-only, always.
_API_KINDS = ("configMap", "secret", "downwardAPI", "projected")
# Kept in memory only (tmpfs), as Kubernetes does: secrets and tokens never touch the node's disk.
_TMPFS_KINDS = ("secret", "projected")
_PROPAGATION = {None: "private", "None": "private", "HostToContainer": "rslave", "Bidirectional": "rshared"}
_EXPR = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)")

_RW_MASK, _RO_MASK, _EXEC_MASK = 0o660, 0o440, 0o110


PVCS = catalog.require("", "PersistentVolumeClaim")
PVS = catalog.require("", "PersistentVolume")
PODS = catalog.require("", "Pod")


def _kind(volume: Obj) -> str:
    return next((k for k in volume if k != "name"), "")


def _set_ownership(path: str, fs_group: int | None, read_only: bool) -> None:
    """Kubernetes' SetVolumeOwnership: group fsGroup, group access, setgid directories; symlinks skipped."""
    if fs_group is None:
        return
    mask = _RO_MASK if read_only else _RW_MASK

    def fix(p: str) -> None:
        st = os.lstat(p)
        if stat.S_ISLNK(st.st_mode):
            return
        os.lchown(p, -1, fs_group)
        extra = mask | (stat.S_ISGID | _EXEC_MASK if stat.S_ISDIR(st.st_mode) else 0)
        os.chmod(p, stat.S_IMODE(st.st_mode) | extra)

    fix(path)
    for root, dirs, files in os.walk(path):
        for name in dirs + files:
            fix(os.path.join(root, name))


def _make_volume_dir(kind: str, source: Obj, path: str, fs_group: int | None) -> None:
    """The volume's directory; tmpfs for memory-backed emptyDirs, secrets and projections."""
    fresh = not os.path.isdir(path)
    os.makedirs(path, mode=0o750, exist_ok=True)
    memory = kind in _TMPFS_KINDS or (kind == "emptyDir" and source.get("medium") == "Memory")
    if memory and (fresh or not mounts.is_mount_point(path)):  # a new directory has no mount yet
        options = "mode=0777" if kind == "emptyDir" else "mode=0755"
        if kind == "emptyDir" and source.get("sizeLimit"):
            options += f",size={int(parse_quantity(source['sizeLimit']))}"
        mounts.mount("tmpfs", path, "tmpfs", mounts.MS_NOSUID | mounts.MS_NODEV, options)
    if kind == "emptyDir" and fresh:
        os.chmod(path, 0o777)
        _set_ownership(path, fs_group, read_only=False)


def _follows_metadata(pod: Obj) -> bool:
    """Whether a downward-API file of the pod shows labels or annotations (which may change)."""
    for volume in (pod.get("spec") or {}).get("volumes") or []:
        sources = [volume.get("downwardAPI") or {}]
        sources += [s.get("downwardAPI") or {} for s in (volume.get("projected") or {}).get("sources") or []]
        for source in sources:
            for item in source.get("items") or []:
                path = (item.get("fieldRef") or {}).get("fieldPath", "")
                if path.startswith(("metadata.labels", "metadata.annotations")):
                    return True
    return False


def _remove_pod_dir(directory: str) -> None:
    for point in mounts.mounts_under(directory):
        try:
            mounts.unmount(point)
        except OSError as e:
            log.warning("unmounting %s: %s", point, e)
    left = mounts.mounts_under(directory)
    if left:
        # Never delete through a mount: a subPath bind leads into a volume's (or the host's) files.
        raise OSError(f"mounts still present under the pod's directory: {', '.join(left)}")
    shutil.rmtree(directory, ignore_errors=True)


@dataclass
class _Volume:
    name: str
    kind: str
    path: str  # on the host
    read_only: bool = False  # forced: API volumes, read-only claims


@dataclass
class _PodState:
    pod: Obj
    volumes: dict[str, _Volume] = field(default_factory=dict)
    tokens: dict[tuple[str, int], Token] = field(default_factory=dict)


class PodVolumes:
    """A pod's prepared volumes; `mounts_for` turns a container's volumeMounts into runtime mounts."""

    def __init__(self, pod: Obj, pod_dir: str, volumes: dict[str, _Volume]) -> None:
        self._pod = pod
        self._pod_dir = pod_dir
        self._volumes = volumes

    def host_path(self, volume: str) -> str:
        """Where the volume named `volume` lives on the node."""
        return self._volumes[volume].path

    def mounts_for(self, container: Obj) -> list[cri.Mount]:
        """Every volumeMount of `container`; subPath and subPathExpr are bind-mounted safely first.
        Raises VolumeError(CreateContainerConfigError) when a subPath cannot be prepared."""
        out: list[cri.Mount] = []
        cname = container.get("name", "")
        for index, vm in enumerate(container.get("volumeMounts") or []):
            name = vm.get("name", "")
            vol = self._volumes.get(name)
            if vol is None:
                raise VolumeError("CreateContainerConfigError",
                                  f'cannot find volume "{name}" to mount into container "{cname}"')
            source = vol.path
            sub = vm.get("subPath") or ""
            if vm.get("subPathExpr"):
                sub = self._expand(vm["subPathExpr"], container)
            if sub:
                target = os.path.join(self._pod_dir, "volume-subpaths", name, cname, str(index))
                try:
                    source = subpath.prepare(vol.path, sub, target)
                except (OSError, ValueError) as e:
                    log.warning("subPath %s of volume %s: %s", sub, name, e)
                    raise VolumeError(
                        "CreateContainerConfigError",
                        f'failed to prepare subPath for volumeMount "{name}" of container "{cname}"',
                    ) from e
            out.append(cri.Mount(
                host_path=source,
                container_path=vm.get("mountPath", ""),
                read_only=bool(vm.get("readOnly")) or vol.read_only,
                propagation=_PROPAGATION.get(vm.get("mountPropagation"), "private"),
            ))
        return out

    def _expand(self, expr: str, container: Obj) -> str:
        """subPathExpr: `$(VAR)` from the container's env (values and downward-API fieldRefs)."""
        env: dict[str, str] = {}
        for e in container.get("env") or []:
            if "value" in e:
                env[e["name"]] = str(e["value"])
            elif ((e.get("valueFrom") or {}).get("fieldRef") or {}).get("fieldPath"):
                try:
                    env[e["name"]] = field_value(self._pod, e["valueFrom"]["fieldRef"]["fieldPath"])
                except SourceError:
                    pass
        expanded = _EXPR.sub(lambda m: env.get(m.group(1), m.group(0)), expr.replace("$$", "\0"))
        return expanded.replace("\0", "$")


class VolumeManager:
    """Volumes of the pods of one node. `clock` is for tests of token refresh."""

    def __init__(self, client: Client, root_dir: str, *, clock: Callable[[], float] = time.time,
                 parallel_setups: int = 4) -> None:
        """`parallel_setups`: pods whose volumes are read from the API at once (in arrival order)."""
        self.client = client
        self.root_dir = root_dir
        self._clock = clock
        # A burst of pods asking for their tokens and configMaps all at once opens a connection (a TLS
        # handshake on both sides) per request and gets every pod's answers at about the same time; a
        # few pods at a time reuse a few connections and the first pods are ready first.
        self._setup_slots = asyncio.Semaphore(parallel_setups)
        self._pods: dict[str, _PodState] = {}
        # One pod's setup, refresh and teardown never interleave (a refresh must not write a secret into
        # a directory whose tmpfs teardown just unmounted).
        self._locks: dict[str, asyncio.Lock] = {}

    def _lock(self, pod_uid: str) -> asyncio.Lock:
        lock = self._locks.get(pod_uid)
        if lock is None:
            lock = self._locks[pod_uid] = asyncio.Lock()
        return lock

    def pod_dir(self, pod_uid: str) -> str:
        return os.path.join(self.root_dir, "pods", pod_uid)

    def pod_uids_on_disk(self) -> list[str]:
        """Pods that have a directory here: what a restarted kubelet must adopt or tear down."""
        try:
            return sorted(os.listdir(os.path.join(self.root_dir, "pods")))
        except FileNotFoundError:
            return []

    async def setup(self, pod: Obj) -> PodVolumes:
        """Prepare every volume of `pod` (again, for a pod already set up: content is refreshed).
        Raises VolumeError(FailedMount, 'MountVolume.SetUp failed for volume "x" : …')."""
        uid = (pod.get("metadata") or {}).get("uid", "")
        if not uid:
            raise VolumeError("FailedMount", "pod has no uid")
        async with self._lock(uid):
            state = self._pods.get(uid) or _PodState(pod)
            state.pod = pod
            volumes = (pod.get("spec") or {}).get("volumes") or []
            async with self._setup_slots:
                results = await asyncio.gather(*(self._setup_one(state, v) for v in volumes),
                                               return_exceptions=True)
            for result in results:
                if isinstance(result, BaseException):
                    raise result
            self._pods[uid] = state
            return PodVolumes(pod, self.pod_dir(uid), state.volumes)

    async def _setup_one(self, state: _PodState, volume: Obj) -> None:
        name = volume.get("name", "")
        try:
            state.volumes[name] = await self._prepare(state, volume)
        except VolumeError:
            raise
        except (SourceError, ValueError, OSError, StatusError) as e:
            message = e.message if isinstance(e, StatusError) else str(e)
            message = f'MountVolume.SetUp failed for volume "{name}" : {message}'
            raise VolumeError("FailedMount", message) from e

    async def _prepare(self, state: _PodState, volume: Obj) -> _Volume:
        pod = state.pod
        uid = pod["metadata"]["uid"]
        name, kind = volume.get("name", ""), _kind(volume)
        source = volume.get(kind) or {}
        fs_group = ((pod.get("spec") or {}).get("securityContext") or {}).get("fsGroup")
        if kind == "hostPath":
            path = source.get("path", "")
            hostpath.check_type(path, source.get("type") or "")
            return _Volume(name, kind, path)
        if kind == "persistentVolumeClaim":
            return await self._claim(pod, name, source)
        if kind not in _PLUGIN_DIRS:
            raise VolumeError("FailedMount", f'failed to get Plugin from volumeSpec for volume "{name}" '
                              f"err=no volume plugin matched")
        path = os.path.join(self.pod_dir(uid), "volumes", _PLUGIN_DIRS[kind], name)
        # New directories on a busy disk can take milliseconds each (four per pod): not on the event loop.
        await asyncio.to_thread(_make_volume_dir, kind, source, path, fs_group)
        if kind == "emptyDir":
            return _Volume(name, kind, path)
        await self._publish(state, kind, source, path, fs_group)
        return _Volume(name, kind, path, read_only=True)

    async def _payload(self, state: _PodState, kind: str, source: Obj) -> Payload:
        pod = state.pod
        namespace = pod["metadata"].get("namespace", "")
        mode = source.get("defaultMode")
        mode = DEFAULT_MODE if mode is None else mode
        if kind == "configMap":
            return await configmap_payload(self.client, namespace, source, mode)
        if kind == "secret":
            return await secret_payload(self.client, namespace, source, mode, "secretName")
        if kind == "downwardAPI":
            return await downward_payload(self.client, pod, source.get("items") or [], mode)

        async def token(p: Obj, audience: str, expiration: int) -> Token:
            key = (audience, expiration)
            now = self._clock()
            cached = state.tokens.get(key)
            if cached is None or cached.due(now):
                cached = state.tokens[key] = await request_token(self.client, p, audience, expiration, now)
            return cached

        return await projected_payload(self.client, pod, source, token)

    async def _publish(self, state: _PodState, kind: str, source: Obj, path: str,
                       fs_group: int | None) -> None:
        payload = await self._payload(state, kind, source)
        changed = atomic_writer.write(
            path, payload, set_perms=lambda d: _set_ownership(d, fs_group, read_only=True),
            mode_mask=0 if fs_group is None else _RO_MASK,
        )
        if changed:
            _set_ownership(path, fs_group, read_only=True)

    async def _claim(self, pod: Obj, name: str, source: Obj) -> _Volume:
        namespace = pod["metadata"].get("namespace", "")
        claim_name = source.get("claimName", "")
        try:
            pvc = await self.client.get(PVCS, claim_name, namespace)
        except StatusError as e:
            if e.code == 404:
                raise VolumeError("FailedMount",
                                  f'persistentvolumeclaim "{claim_name}" not found') from e
            raise
        phase = (pvc.get("status") or {}).get("phase", "")
        pv_name = (pvc.get("spec") or {}).get("volumeName", "")
        if phase != "Bound" or not pv_name:
            raise VolumeError("FailedMount", f"PVC {namespace}/{claim_name} has non-bound phase "
                              f'("{phase}") or empty pvc.Spec.VolumeName ("{pv_name}")')
        pv = await self.client.get(PVS, pv_name)
        spec = pv.get("spec") or {}
        read_only = bool(source.get("readOnly"))
        if spec.get("hostPath"):
            hostpath.check_type(spec["hostPath"].get("path", ""), spec["hostPath"].get("type") or "")
            return _Volume(name, "persistentVolumeClaim", spec["hostPath"]["path"], read_only)
        if spec.get("local"):
            path = spec["local"].get("path", "")
            hostpath.check_exists(path)
            return _Volume(name, "persistentVolumeClaim", path, read_only)
        raise ValueError(f'persistent volume "{pv_name}" is neither hostPath nor local: '
                         "no volume plugin matched")

    async def refresh(self) -> None:
        """Rewrite the API-backed volumes of every pod set up here: configMap and secret changes, and
        projected tokens past 80 % of their life, reach running containers (atomically)."""
        await asyncio.gather(*(self._refresh_pod(uid, state) for uid, state in list(self._pods.items())))

    async def _refresh_pod(self, uid: str, state: _PodState) -> None:
        async with self._lock(uid):
            if self._pods.get(uid) is not state:
                return  # torn down meanwhile
            if _follows_metadata(state.pod):
                await self._reread_pod(state)
            fs_group = ((state.pod.get("spec") or {}).get("securityContext") or {}).get("fsGroup")
            for volume in (state.pod.get("spec") or {}).get("volumes") or []:
                kind = _kind(volume)
                vol = state.volumes.get(volume.get("name", ""))
                if kind not in _API_KINDS or vol is None:
                    continue
                try:
                    await self._publish(state, kind, volume.get(kind) or {}, vol.path, fs_group)
                except (SourceError, OSError, StatusError, ValueError) as e:
                    # Kubernetes keeps the last content when a source disappears or cannot be read.
                    log.warning("refreshing volume %s of pod %s: %s", vol.name, uid, e)

    async def _reread_pod(self, state: _PodState) -> None:
        """Labels and annotations in downward-API files follow the pod, as Kubernetes updates them."""
        meta = state.pod.get("metadata") or {}
        try:
            fresh = await self.client.get(PODS, meta.get("name", ""), meta.get("namespace", ""))
        except StatusError as e:
            log.warning("re-reading pod %s: %s", meta.get("name"), e.message)
            return
        if (fresh.get("metadata") or {}).get("uid") == meta.get("uid"):
            state.pod = fresh

    async def teardown(self, pod_uid: str) -> None:
        """Unmount and remove everything of the pod (idempotent; works for pods of an earlier run)."""
        async with self._lock(pod_uid):
            self._pods.pop(pod_uid, None)
            _remove_pod_dir(self.pod_dir(pod_uid))
        self._locks.pop(pod_uid, None)
