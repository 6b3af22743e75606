from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest

from tests.support.cluster import Cluster, start_cluster


@pytest.fixture(scope="session")
def cluster() -> Iterator[Cluster]:
    """One real server for the e2e session; tests work in namespaces of their own."""
    c = start_cluster()
    try:
        yield c
    finally:
        code = c.stop()
        shutil.rmtree(c.data_dir, ignore_errors=True)
        assert code == 0, "pyk8s server did not stop cleanly on SIGTERM:\n" + "".join(c.output[-40:])


@pytest.fixture
def namespace(cluster: Cluster, request: pytest.FixtureRequest) -> Iterator[str]:
    name = "e2e-" + request.node.name.replace("_", "-").lower()[:50].strip("-")
    cluster.kubectl("create", "namespace", name)
    yield name
    cluster.kubectl("delete", "namespace", name, "--wait=false", check=False)
