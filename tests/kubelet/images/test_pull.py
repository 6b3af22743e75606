"""Pulls over the OCI distribution API from Debian's docker-registry on loopback, pushed to with skopeo."""
# ruff: noqa: ASYNC240 - tests read a few small files inline

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from pyk8s.kubelet.cri import ImagePullError, RegistryAuth
from pyk8s.kubelet.images import ImageStore

from .conftest import Layout, Registry, TokenServer, free_port
from .test_import import two_images


def layout_ref(lay: Layout, name: str) -> str:
    return f"oci:{lay.path}:{name}"


async def test_pull_from_loopback_registry(store: ImageStore, registry: Registry, tmp_path: Path) -> None:
    lay = two_images(tmp_path / "layout")
    registry.push(layout_ref(lay, "example.com/app2:v1"), "team/app2:v1")
    ref = f"{registry.host}/team/app2:v1"
    image = await store.pull_image(ref)
    imported = await ImageStore(tmp_path / "other").import_archive(lay.path)
    assert image.id == imported[1].id  # the config digest survives the round trip
    assert image.repo_tags == (ref,)
    assert image.repo_digests[0].startswith(f"{registry.host}/team/app2@sha256:")
    assert image.config.cmd == ("/app2",)
    top = Path(store.layer_dirs(image.id)[1])
    assert (top / "app2").read_bytes() == b"two"
    assert (top / "keep/new").read_bytes() == b"new"
    assert await store.image_status(ref) == image
    assert await store.image_status(image.repo_digests[0]) == image


async def test_pull_by_digest_and_multiarch_index(store: ImageStore, registry: Registry,
                                                  tmp_path: Path) -> None:
    lay = Layout(tmp_path / "layout")
    amd, amd_cfg = lay.manifest([[("which", b"amd64")]], arch="amd64")
    arm, _ = lay.manifest([[("which", b"arm64")]], arch="arm64")
    index = lay.multiarch([arm, amd])
    lay.tag(index, "multi")
    registry.push(layout_ref(lay, "multi"), "team/multi:v1")
    image = await store.pull_image(f"{registry.host}/team/multi:v1")
    assert image.id == amd_cfg
    assert Path(store.layer_dirs(image.id)[0], "which").read_bytes() == b"amd64"
    assert registry.requests("/arm") == 0 and registry.requests(f"/blobs/{arm['digest']}") == 0

    by_digest = await ImageStore(tmp_path / "s2").pull_image(f"{registry.host}/team/multi@{amd['digest']}")
    assert by_digest.id == amd_cfg and by_digest.repo_tags == ()
    assert by_digest.repo_digests == (f"{registry.host}/team/multi@{amd['digest']}",)


async def test_concurrent_pulls_share_the_work(store: ImageStore, registry: Registry, tmp_path: Path) -> None:
    lay = two_images(tmp_path / "layout")
    registry.push(layout_ref(lay, "example.com/app1:v1"), "team/app1:latest")
    before = registry.requests("/v2/team/app1/")
    a, b, c = await asyncio.gather(store.pull_image(f"{registry.host}/team/app1"),
                                   store.pull_image(f"{registry.host}/team/app1:latest"),
                                   store.pull_image(f"{registry.host}/team/app1"))
    assert a == b == c
    # One manifest, one config and two layers fetched once, whatever the spelling of the reference.
    assert registry.requests("/v2/team/app1/manifests/latest") == 1
    assert registry.requests("/v2/team/app1/") - before == 4
    # Pulled again: the manifest is checked, nothing else fetched.
    assert await store.pull_image(f"{registry.host}/team/app1") == a
    assert registry.requests("/v2/team/app1/") - before == 5


async def test_missing_image_reports_the_registry_reason(store: ImageStore, registry: Registry,
                                                          tmp_path: Path) -> None:
    lay = two_images(tmp_path / "layout")
    registry.push(layout_ref(lay, "example.com/app1:v1"), "team/app1:v1")
    with pytest.raises(ImagePullError) as e:
        await store.pull_image(f"{registry.host}/team/app1:nope")
    assert e.value.reason == "ErrImagePull"
    assert "manifest unknown" in str(e.value) and f"{registry.host}/team/app1:nope" in str(e.value)
    with pytest.raises(ImagePullError, match=r"name unknown|manifest unknown"):
        await store.pull_image(f"{registry.host}/team/never:v1")
    assert await store.list_images() == []


async def test_unreachable_registry(store: ImageStore) -> None:
    with pytest.raises(ImagePullError, match="failed to do request") as e:
        await store.pull_image(f"127.0.0.1:{free_port()}/team/app:v1")
    assert e.value.reason == "ErrImagePull"


async def test_invalid_name(store: ImageStore) -> None:
    with pytest.raises(ImagePullError) as e:
        await store.pull_image("Not/Valid")
    assert e.value.reason == "InvalidImageName"


async def test_basic_auth_from_pull_secret_and_registries_yaml(
        store: ImageStore, auth_registry: Registry, tmp_path: Path) -> None:
    lay = two_images(tmp_path / "layout")
    auth_registry.push(layout_ref(lay, "example.com/app1:v1"), "private/app1:v1", creds="alice:s3cret")
    ref = f"{auth_registry.host}/private/app1:v1"
    with pytest.raises(ImagePullError, match="unauthorized") as e:
        await store.pull_image(ref)
    assert e.value.reason == "ErrImagePull"
    with pytest.raises(ImagePullError, match="unauthorized"):
        wrong = RegistryAuth(server=auth_registry.host, username="alice", password="no")
        await store.pull_image(ref, [wrong])
    # imagePullSecrets: a dockerconfigjson entry with `auth`, keyed by a URL
    import base64

    secret = RegistryAuth(server=f"http://{auth_registry.host}/v1/",
                          auth=base64.b64encode(b"alice:s3cret").decode())
    image = await store.pull_image(ref, [secret])
    assert image.repo_tags == (ref,)

    other = ImageStore(tmp_path / "o" / "images", tmp_path / "o" / "registries.yaml")
    assert other.registries_file is not None
    other.registries_file.write_text(json.dumps(
        {"configs": {auth_registry.host: {"auth": {"username": "alice", "password": "s3cret"}}}}))
    assert (await other.pull_image(ref)).id == image.id


async def test_mirror_from_registries_yaml(tmp_path: Path, registry: Registry) -> None:
    """docker.io names pulled through a loopback mirror: never reaching Docker Hub."""
    lay = two_images(tmp_path / "layout")
    registry.push(layout_ref(lay, "example.com/app1:v1"), "library/mirrored:v1")
    store = ImageStore.for_data_dir(tmp_path / "node")
    assert store.registries_file is not None
    store.registries_file.write_text(f"mirrors:\n  docker.io:\n    endpoint:\n      - http://{registry.host}\n")
    image = await store.pull_image("mirrored:v1")
    assert image.repo_tags == ("docker.io/library/mirrored:v1",)
    assert await store.image_status("docker.io/library/mirrored:v1") == image
    assert registry.requests("/v2/library/mirrored/manifests/v1") == 1


async def test_bearer_token_auth(store: ImageStore, token_registry: tuple[Registry, TokenServer],
                                 tmp_path: Path) -> None:
    registry, tokens = token_registry
    lay = two_images(tmp_path / "layout")
    registry.push(layout_ref(lay, "example.com/app1:v1"), "private/app1:v1", creds="alice:s3cret")
    ref = f"{registry.host}/private/app1:v1"
    # Anonymous: the token service answers, but the token grants nothing; the registry's word is shown.
    with pytest.raises(ImagePullError, match="unauthorized") as e:
        await store.pull_image(ref)
    assert e.value.reason == "ErrImagePull"
    alice = RegistryAuth(server=registry.host, username="alice", password="s3cret")
    image = await store.pull_image(ref, [alice])
    assert image.repo_tags == (ref,)
    assert ("repository:private/app1:pull", "alice") in tokens.requests
    # A pull secret holding an identity token (docker login with OAuth): traded for an access token.
    other = ImageStore(tmp_path / "other")
    token = RegistryAuth(server=registry.host, identity_token="refresh-alice")
    assert (await other.pull_image(ref, [token])).id == image.id
    with pytest.raises(ImagePullError, match="unauthorized"):
        await ImageStore(tmp_path / "third").pull_image(ref, [RegistryAuth(server=registry.host,
                                                                           identity_token="stolen")])


async def test_https_registry_with_ca_file(tmp_path: Path, tls_registry: tuple[Registry, Path]) -> None:
    registry, ca = tls_registry
    lay = two_images(tmp_path / "layout")
    registry.push(layout_ref(lay, "example.com/app1:v1"), "team/app1:v1")
    ref = f"{registry.host}/team/app1:v1"
    store = ImageStore.for_data_dir(tmp_path / "node")
    with pytest.raises(ImagePullError, match="certificate verify failed"):
        await store.pull_image(ref)  # an unknown CA is refused
    assert store.registries_file is not None
    store.registries_file.write_text(json.dumps({"configs": {registry.host: {"tls": {"ca_file": str(ca)}}}}))
    image = await store.pull_image(ref)
    assert image.repo_tags == (ref,)
    assert registry.requests("/v2/team/app1/manifests/v1") == 1  # only the trusted attempt got through


async def test_mirror_down_falls_back_to_the_registry(tmp_path: Path, registry: Registry) -> None:
    lay = two_images(tmp_path / "layout")
    registry.push(layout_ref(lay, "example.com/app1:v1"), "team/app1:v1")
    store = ImageStore.for_data_dir(tmp_path / "node")
    dead = f"127.0.0.1:{free_port()}"
    assert store.registries_file is not None
    store.registries_file.write_text(json.dumps({"mirrors": {registry.host: {"endpoint": [f"http://{dead}"]}}}))
    image = await store.pull_image(f"{registry.host}/team/app1:v1")
    assert image.repo_tags == (f"{registry.host}/team/app1:v1",)
    with pytest.raises(ImagePullError) as e:
        await store.pull_image(f"{registry.host}/team/app1:nope")
    assert f"{dead}: failed to do request" in str(e.value)
    assert f"{registry.host}: manifest unknown" in str(e.value)
