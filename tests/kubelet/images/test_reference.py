import pytest

from pyk8s.kubelet.images.reference import InvalidReference, normalize, parse, registry_host

D = "sha256:" + "a" * 64


@pytest.mark.parametrize(("ref", "want"), [
    ("busybox", "docker.io/library/busybox:latest"),
    ("busybox:latest", "docker.io/library/busybox:latest"),
    ("docker.io/library/busybox:latest", "docker.io/library/busybox:latest"),
    ("index.docker.io/library/busybox", "docker.io/library/busybox:latest"),
    ("library/busybox:1.36", "docker.io/library/busybox:1.36"),
    ("someone/app", "docker.io/someone/app:latest"),
    ("127.0.0.1:5000/app", "127.0.0.1:5000/app:latest"),
    ("localhost/app:v1", "localhost/app:v1"),
    ("quay.io/org/sub/app:v1", "quay.io/org/sub/app:v1"),
    (f"busybox@{D}", f"docker.io/library/busybox@{D}"),
    (f"busybox:1.36@{D}", f"docker.io/library/busybox:1.36@{D}"),
])
def test_normalize_as_docker_does(ref: str, want: str) -> None:
    assert normalize(ref) == want


def test_parts() -> None:
    r = parse("127.0.0.1:5000/team/app:v2")
    assert (r.registry, r.repository, r.tag, r.reference) == ("127.0.0.1:5000", "team/app", "v2", "v2")
    assert parse(f"app@{D}").reference == D


@pytest.mark.parametrize("bad", ["", "Busybox", "busybox:", "a@sha256:short", "a//b", "busybox:-x"])
def test_invalid(bad: str) -> None:
    with pytest.raises(InvalidReference):
        parse(bad)


def test_registry_host_of_credentials() -> None:
    assert registry_host("https://index.docker.io/v1/") == "docker.io"
    assert registry_host("127.0.0.1:5000") == "127.0.0.1:5000"
    assert registry_host("http://reg.example:443/path") == "reg.example:443"
