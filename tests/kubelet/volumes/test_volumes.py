"""The VolumeManager against a real API server: files, modes, layout, errors, updates, tokens, claims and
teardown."""

from __future__ import annotations

import asyncio
import base64
import os
import stat
from pathlib import Path
from typing import Any

import pytest

from pyk8s.kubelet.volumes import VolumeError, mounts
from tests.kubelet.volumes.conftest import (
    CONFIGMAPS,
    PVCS,
    PVS,
    SECRETS,
    Env,
    exists,
    is_dir,
    make_pod,
    read,
    visible,
)
from tests.support.apiserver import PODS


def _b64(s: str) -> str:
    return base64.b64encode(s.encode()).decode()


async def _configmap(env: Env, name: str, data: dict[str, str]) -> None:
    await env.client.create(CONFIGMAPS, {"metadata": {"name": name, "namespace": "default"}, "data": data})


async def test_configmap_keys_items_modes_and_updates(env: Env) -> None:
    await _configmap(env, "cfg", {"a.conf": "A", "b.conf": "B"})
    pod = await make_pod(env, "p1", [
        {"name": "all", "configMap": {"name": "cfg"}},
        {"name": "some", "configMap": {"name": "cfg", "defaultMode": 0o600,
                                       "items": [{"key": "b.conf", "path": "sub/b"},
                                                 {"key": "a.conf", "path": "a", "mode": 0o444}]}},
    ], containers=[{"name": "c", "image": "busybox",
                    "volumeMounts": [{"name": "all", "mountPath": "/etc/all"},
                                     {"name": "some", "mountPath": "/etc/some", "readOnly": False}]}])
    vols = await env.volumes.setup(pod)
    all_dir, some_dir = Path(vols.host_path("all")), Path(vols.host_path("some"))
    assert all_dir.parts[-2:] == ("kubernetes.io~configmap", "all")
    assert read(all_dir / "a.conf") == "A" and read(all_dir / "b.conf") == "B"
    assert os.readlink(all_dir / "a.conf") == "..data/a.conf"
    assert stat.S_IMODE(os.stat(all_dir / "a.conf").st_mode) == 0o644
    assert read(some_dir / "sub" / "b") == "B"
    assert stat.S_IMODE(os.stat(some_dir / "sub" / "b").st_mode) == 0o600
    assert stat.S_IMODE(os.stat(some_dir / "a").st_mode) == 0o444
    assert not (some_dir / "b.conf").exists()
    ms = vols.mounts_for(pod["spec"]["containers"][0])
    # configMap volumes are mounted read-only whatever the volumeMount says, as Kubernetes does.
    assert [(m.host_path, m.container_path, m.read_only, m.propagation) for m in ms] == [
        (str(all_dir), "/etc/all", True, "private"), (str(some_dir), "/etc/some", True, "private")]

    cm = await env.client.get(CONFIGMAPS, "cfg", "default")
    cm["data"] = {"a.conf": "A2", "c.conf": "C"}
    await env.client.update(CONFIGMAPS, cm)
    await env.volumes.refresh()
    assert read(all_dir / "a.conf") == "A2" and read(all_dir / "c.conf") == "C"
    assert not exists(all_dir / "b.conf")
    # an item whose key went away keeps the last content (Kubernetes logs and keeps the volume)
    assert read(some_dir / "sub" / "b") == "B"


async def test_missing_sources_fail_mount_unless_optional(env: Env) -> None:
    pod = await make_pod(env, "p2", [{"name": "cfg", "configMap": {"name": "nope"}}])
    with pytest.raises(VolumeError) as e:
        await env.volumes.setup(pod)
    assert e.value.reason == "FailedMount"
    assert e.value.message == 'MountVolume.SetUp failed for volume "cfg" : configmap "nope" not found'

    pod = await make_pod(env, "p3", [{"name": "s", "secret": {"secretName": "nope"}}])
    with pytest.raises(VolumeError, match='volume "s" : secret "nope" not found'):
        await env.volumes.setup(pod)

    await _configmap(env, "partial", {"a": "1"})
    pod = await make_pod(env, "p4", [{"name": "k", "configMap": {"name": "partial",
                                                                 "items": [{"key": "zz", "path": "zz"}]}}])
    with pytest.raises(VolumeError, match="configmap references non-existent config key: zz"):
        await env.volumes.setup(pod)

    pod = await make_pod(env, "p5", [
        {"name": "o1", "configMap": {"name": "nope", "optional": True}},
        {"name": "o2", "secret": {"secretName": "nope", "optional": True}},
    ])
    vols = await env.volumes.setup(pod)
    assert sorted(os.listdir(vols.host_path("o1"))) == [".." + os.readlink(
        Path(vols.host_path("o1")) / "..data")[2:], "..data"]


async def test_secret_on_tmpfs_with_fsgroup(env: Env) -> None:
    await env.client.create(SECRETS, {"metadata": {"name": "s", "namespace": "default"},
                                      "data": {"password": _b64("hunter2")}})
    pod = await make_pod(env, "p6", [
        {"name": "s", "secret": {"secretName": "s", "defaultMode": 0o400}},
        {"name": "scratch", "emptyDir": {}},
    ], securityContext={"fsGroup": 2000})
    vols = await env.volumes.setup(pod)
    sdir = vols.host_path("s")
    assert mounts.is_mount_point(sdir)  # secrets never touch the node's disk
    st = os.stat(os.path.join(sdir, "password"))
    assert read(sdir, "password") == "hunter2"
    # fsGroup: group-owned, and group-readable (0400 | 0440)
    assert st.st_gid == 2000 and stat.S_IMODE(st.st_mode) == 0o440
    published = os.readlink(os.path.join(sdir, "..data"))
    await env.volumes.refresh()
    assert os.readlink(os.path.join(sdir, "..data")) == published  # fsGroup's bits are not a change
    scratch = os.stat(vols.host_path("scratch"))
    assert scratch.st_gid == 2000 and stat.S_IMODE(scratch.st_mode) == 0o2777


async def test_empty_dir_disk_and_memory(env: Env) -> None:
    pod = await make_pod(env, "p7", [
        {"name": "disk", "emptyDir": {}},
        {"name": "mem", "emptyDir": {"medium": "Memory", "sizeLimit": "16Mi"}},
    ], containers=[{"name": "c", "image": "busybox", "volumeMounts": [
        {"name": "disk", "mountPath": "/d", "mountPropagation": "HostToContainer"},
        {"name": "mem", "mountPath": "/m"}]}])
    vols = await env.volumes.setup(pod)
    disk, mem = vols.host_path("disk"), vols.host_path("mem")
    assert stat.S_IMODE(os.stat(disk).st_mode) == 0o777 and not mounts.is_mount_point(disk)
    assert mounts.is_mount_point(mem)
    fs = os.statvfs(mem)
    assert fs.f_blocks * fs.f_frsize == 16 * 1024 * 1024
    ms = vols.mounts_for(pod["spec"]["containers"][0])
    assert [(m.container_path, m.read_only, m.propagation) for m in ms] == [
        ("/d", False, "rslave"), ("/m", False, "private")]
    again = await env.volumes.setup(pod)  # idempotent: no second tmpfs on top
    assert again.host_path("mem") == mem
    assert len(mounts.mounts_under(mem)) == 1

    await env.volumes.teardown(pod["metadata"]["uid"])
    assert not exists(env.volumes.pod_dir(pod["metadata"]["uid"]))
    assert mounts.mounts_under(str(env.root)) == []
    await env.volumes.teardown(pod["metadata"]["uid"])  # idempotent


async def test_teardown_after_kubelet_restart(env: Env) -> None:
    """A new VolumeManager (a restarted kubelet) finds the pod's mounts on disk and removes them."""
    pod = await make_pod(env, "p8", [{"name": "mem", "emptyDir": {"medium": "Memory"}},
                                     {"name": "tok", "projected": {"sources": []}}])
    await env.volumes.setup(pod)
    uid = pod["metadata"]["uid"]
    assert len(mounts.mounts_under(env.volumes.pod_dir(uid))) == 2
    from pyk8s.kubelet.volumes import VolumeManager
    fresh = VolumeManager(env.client, str(env.root))
    assert fresh.pod_uids_on_disk() == [uid]
    await fresh.teardown(uid)
    assert mounts.mounts_under(str(env.root)) == [] and fresh.pod_uids_on_disk() == []


async def test_downward_api(env: Env) -> None:
    pod = await make_pod(env, "p9", [{"name": "info", "downwardAPI": {"items": [
        {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}},
        {"path": "name", "fieldRef": {"fieldPath": "metadata.name"}},
        {"path": "app", "fieldRef": {"fieldPath": "metadata.labels['app']"}},
        {"path": "mem", "resourceFieldRef": {"containerName": "c", "resource": "limits.memory",
                                             "divisor": "1Mi"}},
        {"path": "cpu", "resourceFieldRef": {"containerName": "c", "resource": "requests.cpu",
                                             "divisor": "1m"}, "mode": 0o400},
    ]}}], containers=[{"name": "c", "image": "busybox",
                       "resources": {"limits": {"memory": "64Mi"}, "requests": {"cpu": "250m"}}}])
    vols = await env.volumes.setup(pod)
    d = Path(vols.host_path("info"))
    assert read(d / "labels") == 'app="p9"'
    assert read(d / "name") == "p9" and read(d / "app") == "p9"
    assert read(d / "mem") == "64" and read(d / "cpu") == "250"
    assert stat.S_IMODE(os.stat(d / "cpu").st_mode) == 0o400

    await env.client.patch(PODS, "p9", {"metadata": {"labels": {"tier": "web"}}}, namespace="default")
    await env.volumes.refresh()  # labels in downward-API files follow the pod
    assert read(d / "labels") == 'app="p9"\ntier="web"'


async def test_projected_service_account_token_and_root_ca(env: Env) -> None:
    """The kube-api-access volume Kubernetes' ServiceAccount admission adds: a bound token the API server
    accepts, refreshed after 80 % of its life, the cluster CA and the namespace."""
    await _configmap(env, "kube-root-ca.crt", {"ca.crt": "-----BEGIN CERTIFICATE-----\n"})
    pod = await make_pod(env, "p10", [{"name": "kube-api-access-abcde", "projected": {
        "defaultMode": 420,
        "sources": [
            {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
            {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
            {"downwardAPI": {"items": [{
                "path": "namespace", "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}},
        ]}}], serviceAccountName="default")
    vols = await env.volumes.setup(pod)
    d = Path(vols.host_path("kube-api-access-abcde"))
    assert mounts.is_mount_point(str(d))
    assert visible(d) == ["ca.crt", "namespace", "token"]
    assert read(d / "namespace") == "default"
    assert read(d / "ca.crt").startswith("-----BEGIN CERTIFICATE-----")
    token = read(d / "token")
    user, _ = await env.tokens.verify(token)
    assert user.name == "system:serviceaccount:default:default"
    assert tuple(user.extra.get("authentication.kubernetes.io/pod-name") or ()) == ("p10",)

    assert env.token_requests() == 1
    await env.volumes.refresh()
    assert env.token_requests() == 1 and read(d / "token") == token  # young token: kept
    env.now[0] += 3607 * 0.8 + 1
    await env.volumes.refresh()
    assert env.token_requests() == 2  # past 80 % of its life: a new TokenRequest
    await env.tokens.verify(read(d / "token"))
    await env.volumes.refresh()
    assert env.token_requests() == 2


async def test_token_request_for_missing_service_account_fails_mount(env: Env) -> None:
    pod = await make_pod(env, "p11", [{"name": "t", "projected": {"sources": [
        {"serviceAccountToken": {"path": "token", "audience": "vault"}}]}}], serviceAccountName="default")
    pod["spec"]["serviceAccountName"] = "ghost"
    with pytest.raises(VolumeError) as e:
        await env.volumes.setup(pod)
    assert e.value.reason == "FailedMount" and 'serviceaccounts "ghost" not found' in e.value.message


async def test_host_path_volume(env: Env, tmp_path: Path) -> None:
    pod = await make_pod(env, "p12", [
        {"name": "h", "hostPath": {"path": str(tmp_path / "made"), "type": "DirectoryOrCreate"}},
        {"name": "bad", "hostPath": {"path": str(tmp_path / "absent"), "type": "Directory"}},
    ])
    with pytest.raises(VolumeError) as e:
        await env.volumes.setup(pod)
    assert e.value.message == (f'MountVolume.SetUp failed for volume "bad" : hostPath type check failed: '
                               f'{tmp_path / "absent"} is not a directory')
    assert is_dir(tmp_path / "made")
    pod["spec"]["volumes"].pop()
    vols = await env.volumes.setup(pod)
    assert vols.host_path("h") == str(tmp_path / "made")


async def test_persistent_volume_claims(env: Env, tmp_path: Path) -> None:
    store = tmp_path / "pv"
    store.mkdir()
    await env.client.create(PVS, {"metadata": {"name": "pv1"}, "spec": {
        "capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"],
        "hostPath": {"path": str(store)}, "storageClassName": "manual"}})
    await env.client.create(PVCS, {"metadata": {"name": "claim", "namespace": "default"}, "spec": {
        "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}},
        "storageClassName": "manual"}})
    pod = await make_pod(env, "p13", [{"name": "data", "persistentVolumeClaim": {"claimName": "claim"}}],
                         containers=[{"name": "c", "image": "busybox",
                                      "volumeMounts": [{"name": "data", "mountPath": "/data"}]}])
    with pytest.raises(VolumeError, match=r'PVC default/claim has non-bound phase \("Pending"\)'):
        await env.volumes.setup(pod)

    # Bind both sides, as the PV controller does.
    claim = await env.client.get(PVCS, "claim", "default")
    claim["spec"]["volumeName"] = "pv1"
    claim = await env.client.update(PVCS, claim)
    claim["status"] = {"phase": "Bound", "accessModes": ["ReadWriteOnce"], "capacity": {"storage": "1Gi"}}
    await env.client.update_status(PVCS, claim)
    vols = await env.volumes.setup(pod)
    assert vols.host_path("data") == str(store)
    [m] = vols.mounts_for(pod["spec"]["containers"][0])
    assert (m.host_path, m.container_path, m.read_only) == (str(store), "/data", False)

    pod = await make_pod(env, "p14", [{"name": "x", "persistentVolumeClaim": {"claimName": "none"}}])
    with pytest.raises(VolumeError, match='persistentvolumeclaim "none" not found'):
        await env.volumes.setup(pod)


async def test_unsupported_volume_kind(env: Env) -> None:
    pod = await make_pod(env, "p15", [{"name": "n", "nfs": {"server": "example.invalid", "path": "/"}}])
    with pytest.raises(VolumeError, match="no volume plugin matched"):
        await env.volumes.setup(pod)


async def test_token_file_private_to_the_pods_user(env: Env) -> None:
    """With a common runAsUser and an fsGroup, the token is 0600 owned by that user, then group-readable
    through fsGroup (0640), as the kubelet writes it."""
    pod = await make_pod(env, "p16", [{"name": "t", "projected": {"sources": [
        {"serviceAccountToken": {"path": "token"}},
        {"downwardAPI": {"items": [{"path": "name", "fieldRef": {"fieldPath": "metadata.name"}}]}}]}}],
        serviceAccountName="default", securityContext={"runAsUser": 1234, "fsGroup": 5678})
    vols = await env.volumes.setup(pod)
    token = os.stat(os.path.join(vols.host_path("t"), "token"))
    assert (token.st_uid, token.st_gid, stat.S_IMODE(token.st_mode)) == (1234, 5678, 0o640)
    name = os.stat(os.path.join(vols.host_path("t"), "name"))
    assert (name.st_uid, name.st_gid, stat.S_IMODE(name.st_mode)) == (0, 5678, 0o644)


async def test_teardown_through_a_symlinked_root(env: Env, tmp_path: Path) -> None:
    """The kubelet's directory reached through a symlink: mounts are still found (by their real path)
    and removed before anything is deleted."""
    from pyk8s.kubelet.volumes import VolumeManager
    env.root.mkdir(exist_ok=True)
    os.symlink(env.root, tmp_path / "alias", target_is_directory=True)
    via_link = VolumeManager(env.client, str(tmp_path / "alias"))
    pod = await make_pod(env, "p17", [{"name": "mem", "emptyDir": {"medium": "Memory"}}])
    await via_link.setup(pod)
    assert len(mounts.mounts_under(via_link.pod_dir(pod["metadata"]["uid"]))) == 1
    await via_link.teardown(pod["metadata"]["uid"])
    assert mounts.mounts_under(str(env.root)) == []


async def test_a_burst_of_pods_goes_a_few_at_a_time(env: Env) -> None:
    """Pods set up at once ask the API for no more than `parallel_setups` pods at a time (a few
    connections, the first pods first); every pod still gets its own token and the CA."""
    await _configmap(env, "kube-root-ca.crt", {"ca.crt": "-----BEGIN CERTIFICATE-----\n"})
    source = {"sources": [{"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
                          {"configMap": {"name": "kube-root-ca.crt",
                                         "items": [{"key": "ca.crt", "path": "ca.crt"}]}}]}
    pods = [await make_pod(env, f"burst{i}", [{"name": "api", "projected": source}],
                           serviceAccountName="default") for i in range(12)]
    create_subresource = env.client.create_subresource
    in_flight = peak = 0

    async def counted(*args: Any, **kwargs: Any) -> Any:  # the real call, with TokenRequests counted
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        try:
            return await create_subresource(*args, **kwargs)
        finally:
            in_flight -= 1

    env.client.create_subresource = counted  # type: ignore[method-assign]
    results = await asyncio.gather(*(env.volumes.setup(p) for p in pods))
    tokens = set()
    for vols in results:
        d = Path(vols.host_path("api"))
        assert read(d / "ca.crt").startswith("-----BEGIN CERTIFICATE-----")
        tokens.add(read(d / "token"))
    assert len(tokens) == 12 and env.token_requests() == 12
    assert 1 <= peak <= 4  # the default parallel_setups


async def test_concurrent_reads_of_one_object_share_a_request(env: Env) -> None:
    """Reads of one configMap that overlap (a burst of pods mounting kube-root-ca.crt) are one GET; a
    read after they ended asks again."""
    from pyk8s.kubelet.volumes.payloads import configmap_payload

    await _configmap(env, "shared", {"k": "v1"})

    def gets() -> int:
        return sum(1 for e in env.audit if e.get("verb") == "get"
                   and (e.get("objectRef") or {}).get("resource") == "configmaps")

    before = gets()
    payloads = await asyncio.gather(*(configmap_payload(env.client, "default", {"name": "shared"}, 0o644)
                                      for _ in range(8)))
    assert gets() - before == 1
    assert all(p["k"].data == b"v1" for p in payloads)
    await env.client.patch(CONFIGMAPS, "shared", {"data": {"k": "v2"}}, "merge", "default")
    again = await configmap_payload(env.client, "default", {"name": "shared"}, 0o644)
    assert again["k"].data == b"v2" and gets() - before == 2
