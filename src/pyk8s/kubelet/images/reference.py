"""Image references normalised as docker does:
`busybox` ≡ `busybox:latest` ≡ `docker.io/library/busybox:latest`."""

from __future__ import annotations

import re
from dataclasses import dataclass

DOCKER_HUB = "docker.io"
# The grammar of distribution/reference, cut to what we check: lowercase path components, a tag, a digest.
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_PATH_RE = re.compile(rf"^{_COMPONENT}(?:/{_COMPONENT})*$")
_TAG_RE = re.compile(r"^[\w][\w.-]{0,127}$")
_DIGEST_RE = re.compile(r"^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[0-9a-fA-F]{32,}$")


class InvalidReference(ValueError):
    pass


@dataclass(frozen=True)
class Reference:
    registry: str  # docker.io, 127.0.0.1:5000, …
    repository: str  # library/busybox
    tag: str = ""  # "" when the reference names a digest only
    digest: str = ""

    @property
    def name(self) -> str:
        """registry/repository: docker.io/library/busybox."""
        return f"{self.registry}/{self.repository}"

    @property
    def reference(self) -> str:
        """What the distribution API takes after /manifests/: the digest if any, else the tag."""
        return self.digest or self.tag

    def __str__(self) -> str:
        s = self.name
        if self.tag:
            s += f":{self.tag}"
        if self.digest:
            s += f"@{self.digest}"
        return s


def parse(ref: str) -> Reference:
    """Parse and normalise: a missing registry is docker.io, a single-component Hub name gets `library/`,
    a missing tag (and digest) is `latest`."""
    s = ref.strip()
    if not s:
        raise InvalidReference("empty image reference")
    digest = ""
    if "@" in s:
        s, digest = s.split("@", 1)
        if not _DIGEST_RE.match(digest):
            raise InvalidReference(f"invalid digest in reference {ref!r}")
    tag = ""
    slash = s.rfind("/")
    colon = s.rfind(":")
    if colon > slash:
        s, tag = s[:colon], s[colon + 1 :]
        if not _TAG_RE.match(tag):
            raise InvalidReference(f"invalid tag in reference {ref!r}")
    first, _, rest = s.partition("/")
    # The first component is a registry host when it looks like one (docker's rule).
    if rest and ("." in first or ":" in first or first == "localhost"):
        registry, path = first, rest
    else:
        registry, path = DOCKER_HUB, s
    if registry in ("index.docker.io", "registry-1.docker.io"):
        registry = DOCKER_HUB
    if registry == DOCKER_HUB and "/" not in path:
        path = f"library/{path}"
    if not _PATH_RE.match(path):
        raise InvalidReference(f"invalid reference format: repository name must be lowercase: {ref!r}")
    if not tag and not digest:
        tag = "latest"
    return Reference(registry, path, tag, digest)


def normalize(ref: str) -> str:
    return str(parse(ref))


def registry_host(server: str) -> str:
    """The registry a credential's `server` names: `https://index.docker.io/v1/` → docker.io."""
    s = server.strip()
    for prefix in ("https://", "http://"):
        if s.startswith(prefix):
            s = s[len(prefix) :]
    s = s.split("/", 1)[0]
    return DOCKER_HUB if s in ("index.docker.io", "registry-1.docker.io", "docker.io") else s
