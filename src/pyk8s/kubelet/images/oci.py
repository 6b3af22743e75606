"""OCI and Docker media types, and choosing a platform from an index."""

from __future__ import annotations

import platform
from typing import Any

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_LAYER_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"

INDEX_TYPES = (OCI_INDEX, DOCKER_LIST)
MANIFEST_TYPES = (OCI_MANIFEST, DOCKER_MANIFEST)
REF_NAME = "org.opencontainers.image.ref.name"
CONTAINERD_NAME = "io.containerd.image.name"

_GOARCH = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64", "armv7l": "arm",
           "ppc64le": "ppc64le", "s390x": "s390x", "riscv64": "riscv64"}


def host_arch() -> str:
    m = platform.machine().lower()
    return _GOARCH.get(m, m)


def media_type(doc: dict[str, Any], fallback: str = "") -> str:
    """A manifest's own mediaType; OCI makes it optional, so tell an index by its `manifests`."""
    mt = doc.get("mediaType")
    if isinstance(mt, str) and mt:
        return mt
    if "manifests" in doc:
        return OCI_INDEX
    if "layers" in doc:
        return OCI_MANIFEST
    return fallback


def choose_platform(index: dict[str, Any]) -> dict[str, Any] | None:
    """The descriptor for linux/<host arch> in an index, or None. Attestation manifests
    (platform unknown/unknown) never match."""
    arch = host_arch()
    for d in index.get("manifests") or []:
        p = d.get("platform") or {}
        if p.get("os") == "linux" and p.get("architecture") == arch:
            return dict(d)
    return None
